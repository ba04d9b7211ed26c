"""The dashboard, with Pilot: offline with fixed state, and live against a real stack."""
