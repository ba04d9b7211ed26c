"""Data sets, loaded once through torchvision and kept as normalized tensors on the device."""

from __future__ import annotations

import gzip
import logging
import os
import shutil
import tempfile
import threading
import time
import urllib.error
from dataclasses import dataclass
from pathlib import Path

import torch
from torchvision import datasets
from torchvision.datasets.utils import check_integrity

from tuner.v1 import job_pb2

# Debian's dataset-fashion-mnist package; its .gz files differ byte-wise from the ones
# torchvision checks (same images, recompressed), so they are extracted here, never downloaded.
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

log = logging.getLogger(__name__)


class DatasetMissing(Exception):
    """The data set is not on disk and could not be downloaded."""


@dataclass(frozen=True)
class Split:
    images: torch.Tensor  # float32 (N, 1, 28, 28), normalized with the train split's mean/std
    labels: torch.Tensor  # int64 (N,)

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass(frozen=True)
class Dataset:
    train: Split
    test: Split
    # What the images were normalized with, (x - mean) / std: a final model applies it itself.
    mean: float = 0.0
    std: float = 1.0


@dataclass(frozen=True)
class _Source:
    name: str
    kind: type[datasets.MNIST]
    elsewhere: tuple[Path, ...]  # other folders that may hold the original .gz files
    verify: bool  # check the .gz files against torchvision's md5 table

    @property
    def archives(self) -> list[tuple[str, str]]:
        return [(name, md5) for name, md5 in self.kind.resources]


_SOURCES: dict[int, _Source] = {
    job_pb2.DATASET_MNIST: _Source("mnist", datasets.MNIST, (), verify=True),
    job_pb2.DATASET_FASHION_MNIST: _Source(
        "fashion-mnist", datasets.FashionMNIST, (DEBIAN_FASHION_MNIST,), verify=False
    ),
}


def _extracted(name: str) -> str:
    return name.removesuffix(".gz")


def _has_extracted(source: _Source, raw: Path) -> bool:
    return all((raw / _extracted(name)).is_file() for name, _ in source.archives)


def _archive_folder(source: _Source, raw: Path) -> Path | None:
    """The first folder holding all four .gz files (verified where the checksums apply)."""
    for folder in (raw, *source.elsewhere):
        if all(
            check_integrity(folder / name, md5 if source.verify else None)
            for name, md5 in source.archives
        ):
            return folder
    return None


def _extract(source: _Source, folder: Path, raw: Path) -> None:
    """Decompress the missing files into raw/, each through a temp file and an atomic rename.

    Other trainer processes may share the data folder, so a reader never sees half a file.
    """
    raw.mkdir(parents=True, exist_ok=True)
    for name, _ in source.archives:
        target = raw / _extracted(name)
        if target.is_file():
            continue
        fd, temp = tempfile.mkstemp(dir=raw, prefix=f".{target.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out, gzip.open(folder / name, "rb") as archive:
                shutil.copyfileobj(archive, out, 1 << 20)
            os.chmod(temp, 0o644)  # mkstemp makes it private; other trainers may run as others
            os.replace(temp, target)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise


def _missing(source: _Source, raw: Path, why: object) -> DatasetMissing:
    files = ", ".join(name for name, _ in source.archives)
    where = " or ".join(str(p) for p in source.elsewhere)
    hint = f" (or in {where})" if where else ""
    reason = " ".join(str(why).split())
    return DatasetMissing(
        f"{source.name} not found: put {files} in {raw}{hint} (download failed: {reason})"
    )


def _normalized(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    return images.unsqueeze(1).sub_(mean).div_(std).contiguous()


def load(dataset: int, root: Path, device: torch.device) -> Dataset:
    """Load a job_pb2 Dataset value from root (torchvision's layout) onto the device.

    Extracts the original .gz files found in ROOT/<Class>/raw/ (or a known system folder)
    without the network; only when there are none does it try torchvision's download.
    """
    source = _SOURCES.get(dataset)
    if source is None:
        raise ValueError(f"unknown dataset enum value {dataset}")
    raw = root / source.kind.__name__ / "raw"
    if not _has_extracted(source, raw):
        folder = _archive_folder(source, raw)
        if folder is not None:
            _extract(source, folder, raw)
        else:
            try:
                source.kind(root, train=True, download=True)
            except (RuntimeError, OSError, urllib.error.URLError) as error:
                raise _missing(source, raw, error) from error
    train = source.kind(root, train=True, download=False)
    test = source.kind(root, train=False, download=False)
    train_images = train.data.to(device).float().div_(255)
    test_images = test.data.to(device).float().div_(255)
    mean, std = train_images.mean(), train_images.std()
    return Dataset(
        train=Split(_normalized(train_images, mean, std), train.targets.to(device)),
        test=Split(_normalized(test_images, mean, std), test.targets.to(device)),
        mean=mean.item(),
        std=std.item(),
    )


class DataCache:
    """Data sets loaded at most once per process, keyed by (dataset, device)."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._lock = threading.Lock()
        self._loaded: dict[tuple[int, torch.device], Dataset] = {}

    def holds(self, dataset: int, device: torch.device) -> bool:
        """Whether the data set is loaded onto the device already."""
        with self._lock:
            return (dataset, device) in self._loaded

    def get(self, dataset: int, device: torch.device) -> Dataset:
        with self._lock:
            key = (dataset, device)
            if key not in self._loaded:
                started = time.perf_counter()
                self._loaded[key] = load(dataset, self._root, device)
                took = time.perf_counter() - started
                log.info("%s loaded onto %s in %.2f s", _SOURCES[dataset].name, device, took)
            return self._loaded[key]
