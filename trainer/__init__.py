"""The trainer service: pulls jobs from JetStream and trains them with PyTorch."""
