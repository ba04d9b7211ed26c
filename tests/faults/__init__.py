"""Faults injected into the processes of a real stack."""
