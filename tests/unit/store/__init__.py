"""Unit tests of store/, against a real SecantusDB."""
