"""Unit tests of trainer/, on the real MNIST files."""
