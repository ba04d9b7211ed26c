"""The analysis of a set of stored jobs (scheduler/importance.py) at 1,000 and 10,000 jobs.

Not a row of `make bench` yet: `python -m benchmarks.analysis` prints the times.
"""

from __future__ import annotations

import random
import time

from scheduler.importance import analysis
from store.documents import Document

RATES = (0.0003, 0.001, 0.003, 0.01, 0.03, 0.1)


def jobs(count: int, seed: int = 0) -> list[tuple[int, Document]]:
    """`count` SUCCEEDED job documents as the store holds them, over 5 varied fields."""
    rng = random.Random(seed)
    out: list[tuple[int, Document]] = []
    for number in range(1, count + 1):
        lr = rng.choice(RATES)
        optimizer = rng.choice(("sgd", "adam", "adadelta"))
        hp = {
            "epochs": rng.randint(1, 10),
            "learning_rate": lr,
            "batch_size": rng.choice((64, 128, 256, 512)),
            "dataset": "mnist",
            "model": rng.choice(("cnn", "mlp")),
            "optimizer": optimizer,
            "seed": 0,
        }
        accuracy = 0.95 - abs(RATES.index(lr) - 3) * 0.02 + (optimizer == "adam") * 0.01
        result = {"test_accuracy": accuracy + rng.random() * 0.005}
        out.append((number, {"_id": f"{number:032x}", "hyperparameters": hp, "result": result}))
    return out


def analysis_seconds(count: int, repeats: int = 3) -> float:
    """The best of `repeats` analyses of `count` jobs, in seconds (the first import excluded)."""
    docs = jobs(count)
    analysis(docs[:10])  # imports optuna
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        analysis(docs)
        best = min(best, time.perf_counter() - start)
    return best


if __name__ == "__main__":
    for n in (1_000, 10_000):
        print(f"analysis of {n} jobs: {analysis_seconds(n):.3f} s")
