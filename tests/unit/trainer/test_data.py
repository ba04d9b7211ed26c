"""Loading MNIST and Fashion-MNIST as normalized tensors; failing clearly when they are missing."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from tests.support.stack import MNIST_FILES
from trainer import data
from tuner.v1 import job_pb2

ARCHIVES = MNIST_FILES
CPU = torch.device("cpu")


def snapshot(folder: Path) -> list[tuple[str, int, int]]:
    return sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir())


@pytest.fixture
def mnist_root(tmp_path: Path, data_dir: Path) -> Path:
    """A fresh root whose MNIST/raw/ holds only links to the original .gz files."""
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ARCHIVES:
        (raw / name).symlink_to((data_dir / "MNIST" / "raw" / name).resolve())
    return tmp_path


@pytest.fixture
def short_socket_timeout() -> Iterator[None]:
    """A download attempt must fail, not hang, where there is no network."""
    before = socket.getdefaulttimeout()
    socket.setdefaulttimeout(5)
    try:
        yield
    finally:
        socket.setdefaulttimeout(before)


def check(dataset: data.Dataset, train: int, test: int) -> None:
    for split, count in ((dataset.train, train), (dataset.test, test)):
        assert split.images.shape == (count, 1, 28, 28)
        assert split.images.dtype == torch.float32
        assert split.images.is_contiguous()
        assert split.labels.shape == (count,)
        assert split.labels.dtype == torch.int64
        assert torch.unique(split.labels).tolist() == list(range(10))
    assert abs(dataset.train.images.mean().item()) < 1e-3
    assert abs(dataset.train.images.std().item() - 1) < 1e-3
    # The test split uses the train split's statistics, so it is only close to standard.
    assert abs(dataset.test.images.mean().item()) < 0.05


def test_mnist_loads_from_the_original_archives(mnist_root: Path) -> None:
    source = (mnist_root / "MNIST" / "raw" / ARCHIVES[0]).resolve().parent
    before = snapshot(source)

    dataset = data.load(job_pb2.DATASET_MNIST, mnist_root, CPU)

    check(dataset, 60_000, 10_000)
    raw = mnist_root / "MNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted(
        [*ARCHIVES, *(name.removesuffix(".gz") for name in ARCHIVES)]
    )
    assert snapshot(source) == before


def test_fashion_mnist_loads_from_the_debian_package(tmp_path: Path) -> None:
    if not data.DEBIAN_FASHION_MNIST.is_dir():
        pytest.skip(f"{data.DEBIAN_FASHION_MNIST} is absent: install dataset-fashion-mnist")
    before = snapshot(data.DEBIAN_FASHION_MNIST)

    dataset = data.load(job_pb2.DATASET_FASHION_MNIST, tmp_path, CPU)

    check(dataset, 60_000, 10_000)
    raw = tmp_path / "FashionMNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted(n.removesuffix(".gz") for n in ARCHIVES)
    assert snapshot(data.DEBIAN_FASHION_MNIST) == before


@pytest.mark.usefixtures("short_socket_timeout")
def test_a_missing_dataset_names_the_folder_and_files(tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(data.DatasetMissing) as raised:
        data.load(job_pb2.DATASET_MNIST, tmp_path, CPU)

    message = str(raised.value)
    assert message.startswith("mnist not found: put ")
    assert str(tmp_path / "MNIST" / "raw") in message
    for name in ARCHIVES:
        assert name in message
    assert time.monotonic() - started < 30


@pytest.mark.usefixtures("short_socket_timeout")
def test_archives_that_fail_the_checksum_are_not_used(tmp_path: Path) -> None:
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ARCHIVES:
        (raw / name).write_bytes(b"not the original")

    with pytest.raises(data.DatasetMissing):
        data.load(job_pb2.DATASET_MNIST, tmp_path, CPU)
    assert sorted(p.name for p in raw.iterdir()) == sorted(ARCHIVES)


def test_the_cache_loads_each_dataset_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, Path, torch.device]] = []

    def fake_load(dataset: int, root: Path, device: torch.device) -> data.Dataset:
        calls.append((dataset, root, device))
        time.sleep(0.05)  # long enough for the other threads to pile up on the lock
        split = data.Split(torch.zeros(1, 1, 28, 28), torch.zeros(1, dtype=torch.int64))
        return data.Dataset(split, split)

    monkeypatch.setattr(data, "load", fake_load)
    cache = data.DataCache(tmp_path)
    got: list[data.Dataset] = []
    threads = [
        threading.Thread(target=lambda: got.append(cache.get(job_pb2.DATASET_MNIST, CPU)))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    fashion = cache.get(job_pb2.DATASET_FASHION_MNIST, CPU)

    assert len(got) == 4
    assert all(dataset is got[0] for dataset in got)
    assert fashion is not got[0]
    assert calls == [
        (job_pb2.DATASET_MNIST, tmp_path, CPU),
        (job_pb2.DATASET_FASHION_MNIST, tmp_path, CPU),
    ]
