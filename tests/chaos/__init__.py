"""Chaos: random faults in a whole stack with two scheduler replicas."""
