"""The deployment files and images, and a multi-host cluster of network namespaces."""
