"""The scheduler as it was, to measure changes against in the same run."""
