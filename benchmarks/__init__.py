"""`make bench`: the trainer and the stack measured side by side; see benchmarks/RESULTS.md."""
