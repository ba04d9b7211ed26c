"""Unit tests of scheduler/."""
