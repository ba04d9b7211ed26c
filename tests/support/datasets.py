"""Small slices of the real data sets, to keep a test quick."""

from __future__ import annotations

from trainer import data


def head(dataset: data.Dataset, train: int, test: int) -> data.Dataset:
    """The first samples of each split."""
    return data.Dataset(
        data.Split(dataset.train.images[:train], dataset.train.labels[:train]),
        data.Split(dataset.test.images[:test], dataset.test.labels[:test]),
        mean=dataset.mean,
        std=dataset.std,
    )
