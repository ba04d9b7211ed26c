"""The gRPC metadata keys a client sends and the scheduler reads."""

# Who the caller says it is; only trusted when the scheduler has no tokens (loopback).
USER = "tuner-user"
AUTHORIZATION = "authorization"
# Sent back with every answer, and on every log line the call writes.
REQUEST_ID = "tuner-request-id"
