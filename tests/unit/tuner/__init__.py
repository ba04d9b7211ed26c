"""Unit tests of tuner/: the shared kernel and the client side."""
