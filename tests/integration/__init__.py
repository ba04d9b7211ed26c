"""A whole stack driven over gRPC: real nats-server, SecantusDB, scheduler and trainers."""
