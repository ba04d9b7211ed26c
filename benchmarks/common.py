"""What the rows share: paths, the data folder, the machine, tables, percentiles, /proc."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "out"
RESULTS = REPO / "benchmarks" / "RESULTS.md"
MNIST_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
TICKS = os.sysconf("SC_CLK_TCK")

Json = dict[str, Any]


def mnist_source() -> Path:
    """The original MNIST files, as the tests find them (TUNER_TEST_MNIST or ../shared)."""
    return Path(os.environ.get("TUNER_TEST_MNIST") or REPO.parent / "shared" / "data" / "mnist")


def data_root() -> Path:
    """benchmarks/out/data, torchvision's layout, its MNIST linked to the read-only originals.

    Fashion-MNIST is found by trainer/data.py in the Debian package's folder.
    """
    source = mnist_source()
    missing = [name for name in MNIST_FILES if not (source / name).exists()]
    if missing:
        raise SystemExit(f"MNIST files missing in {source}: {', '.join(missing)}")
    raw = OUT / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name in MNIST_FILES:
        link = raw / name
        if not link.exists():
            link.unlink(missing_ok=True)
            link.symlink_to(source / name)
    return OUT / "data"


def load_average() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, check=False
        ).stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return f"{head}+dirty" if git("status", "--porcelain") else head


def machine() -> Json:
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "torch": metadata.version("torch"),
        "python": platform.python_version(),
    }


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def ratio(b: float, a: float) -> str:
    return f"{b / a:.2f}x" if a else "n/a"


@dataclass
class Section:
    """One row of the issue: a table for people, the raw numbers for JSON."""

    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data: Json = field(default_factory=dict)

    def text(self) -> str:
        widths = [
            max(len(str(cells[i])) for cells in [self.columns, *self.rows])
            for i in range(len(self.columns))
        ]
        lines = [
            self.title,
            "  ".join(c.ljust(w) for c, w in zip(self.columns, widths, strict=True)),
        ]
        lines += [
            "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in self.rows
        ]
        lines += [f"  - {note}" for note in self.notes]
        return "\n".join(lines)

    def markdown(self) -> str:
        lines = [f"**{self.title}**", "", "| " + " | ".join(self.columns) + " |"]
        lines.append("|" + "---|" * len(self.columns))
        lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in self.rows]
        if self.notes:
            lines.append("")
            lines += [f"- {note}" for note in self.notes]
        return "\n".join(lines)


@dataclass
class ProcessSample:
    """CPU seconds (user + system) and memory of a process, read from /proc."""

    cpu_seconds: float
    rss_mib: float
    peak_rss_mib: float

    @classmethod
    def of(cls, pid: int) -> ProcessSample:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime
        status = dict(
            line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        )

        def mib(key: str) -> float:
            return int(status[key].split()[0]) / 1024

        return cls(cpu, mib("VmRSS"), mib("VmHWM"))


def run_worker(module: str, args: list[str], env: dict[str, str] | None = None) -> Json:
    """Run `python -m module args` and return the JSON object it prints last."""
    process = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if process.returncode != 0:
        raise RuntimeError(f"{module} {' '.join(args)} failed:\n{process.stderr[-3000:]}")
    result: Json = json.loads(process.stdout.strip().splitlines()[-1])
    return result


def now() -> float:
    return time.perf_counter()
