"""tuner: hyperparameter tuning for PyTorch models on MNIST-style data."""
