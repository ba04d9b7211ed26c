"""Sweeps: the SweepService handlers, the driver, search strategies, pruning, announcements."""
