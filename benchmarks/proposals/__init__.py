"""Changes measured by the bench for files outside benchmarks/, written to be moved there."""
