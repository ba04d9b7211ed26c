"""The shared kernel: what the services and the clients both build on, and nothing client-side."""
