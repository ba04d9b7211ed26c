"""Unit tests of tui/ that need no app."""
