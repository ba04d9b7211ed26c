"""Stored job documents, as the scheduler writes them, for store and scheduler tests."""

from __future__ import annotations

from store.documents import Document, new_job
from tests.support.hyperparameters import unfilled
from tuner.core.hyperparameters import canonical_key, job_id, normalized


def job_doc(seed: int, owner: str = "alice") -> Document:
    """A new QUEUED job of a one-epoch CNN (lr 0.1, batch 64) with this seed."""
    hp = normalized(unfilled(learning_rate=0.1, seed=seed))
    key = canonical_key(hp)
    return new_job(job_id(key), key, hp, owner)
