"""The scheduler: the gRPC API, the only writer of job state."""
