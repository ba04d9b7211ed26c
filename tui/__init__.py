"""The Textual dashboard: a pure gRPC client of the scheduler (never imports torch)."""
