"""`make bench`: run the rows, print their tables, write JSON, append to RESULTS.md."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shlex
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from benchmarks import (
    analysis,
    checkpoints,
    control,
    fanout_alone,
    history,
    levers,
    overhead,
    scaleout,
    sweeps,
    trainer_vs_classic,
    writes,
)
from benchmarks.cluster import BenchStack
from benchmarks.common import (
    OUT,
    RESULTS,
    Json,
    Section,
    commit,
    data_root,
    load_average,
    machine,
)

ROWS = (1, 2, 3, 4, 6, 7, 8, 9, 10)  # row 5 is the GPU's


def cases(quick: bool) -> list[tuple[str, str]]:
    """Row 1's runs: a classic CNN epoch takes minutes here, so --quick keeps one CNN pair."""
    if quick:
        return [("mnist", "cnn"), ("mnist", "mlp"), ("fashion-mnist", "mlp")]
    return [("mnist", "cnn"), ("mnist", "mlp"), ("fashion-mnist", "cnn"), ("fashion-mnist", "mlp")]


def attempt(title: str, run: Callable[[], Section | list[Section]]) -> list[Section]:
    """A row that fails becomes a note in the results; the rows after it still run."""
    try:
        made = run()
        sections = made if isinstance(made, list) else [made]
    except Exception as error:
        traceback.print_exc()
        message = " ".join(f"{type(error).__name__}: {error}".split())
        sections = [Section(title, ["error"], [[message]])]
    for section in sections:
        print(section.text(), "\n", flush=True)
    return sections


def stack_rows(
    rows: set[int], watchers: list[int], per_watcher: bool, made_per_watcher: bool, state: Path
) -> list[Section]:
    """Rows 2-4 on real processes; row 3a on a stack of its own without a trainer."""
    root = data_root()
    sections: list[Section] = []
    if 3 in rows:
        bench = control.submit_stack(state / "submit", root)
        try:
            sections += attempt("Row 3a", lambda: asyncio.run(control.submit_latency(bench)))
            sections += attempt("Row 3e", lambda: asyncio.run(fanout_alone.run(bench, watchers)))
        finally:
            bench.stop()
    if rows & {2, 3, 4}:
        bench = BenchStack.start(state / "jobs", root, trainers=1)
        try:
            if 2 in rows:
                sections += attempt("Row 2", lambda: asyncio.run(overhead.run(bench)))
            if 3 in rows:
                title = "Row 3b: trainer->watcher latency and fan-out (a consumer per job run)"
                fan_out = control.watch_latency_and_fan_out
                sections += attempt(
                    title, lambda: asyncio.run(fan_out(bench, watchers, title, 3_000))
                )
            if 4 in rows:
                sections += attempt("Row 4", lambda: asyncio.run(scaleout.run(bench)))
        finally:
            bench.stop()
    baselines = [
        # The hub as it is, each event's response made and serialized for every watcher.
        (made_per_watcher, "scheduler_made_per_watcher", 9_000,
         "Row 3d: the same with each response made per watcher (before Encoded)"),
        # The same fan-out as the scheduler did it before scheduler/fanout.py.
        (per_watcher, "scheduler_per_watcher", 6_000,
         "Row 3c: the same with a consumer per watcher (the scheduler before its hub)"),
    ]  # fmt: skip
    for wanted, module, seed, title in baselines if 3 in rows else []:
        if wanted:
            sections += baseline_fan_out(state / module, root, module, watchers, title, seed)
    return sections


def baseline_fan_out(
    state: Path, root: Path, module: str, watchers: list[int], title: str, seed: int
) -> list[Section]:
    """Row 3's fan-out through a baseline scheduler (benchmarks.baselines.MODULE)."""
    scheduler = f"benchmarks.baselines.{module}"
    bench = BenchStack.start(state, root, trainers=1, scheduler=scheduler)
    try:
        counts = [n for n in watchers if n > 1] or watchers
        fan_out = control.watch_latency_and_fan_out
        return attempt(title, lambda: asyncio.run(fan_out(bench, counts, title, seed)))
    finally:
        bench.stop()


def row_order(section: Section) -> tuple[bool, int, str]:
    """Row 1, 2, 3a, 3b, ..., 10, then the sections that are not rows."""
    number = re.match(r"Row (\d+)", section.title)
    return (number is None, int(number[1]) if number else 0, section.title)


def record(sections: list[Section], header: Json, args: argparse.Namespace) -> Path:
    stamp = datetime.now(UTC)
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"bench-{stamp:%Y%m%d-%H%M%S}.json"
    payload = {**header, "sections": {s.title: s.data for s in sections}}
    path.write_text(json.dumps(payload, indent=2, default=str))
    if args.no_record:
        return path
    m = header["machine"]
    lines = [
        "",
        f"## {stamp:%Y-%m-%d %H:%M} UTC · commit {header['commit']} · {m['cpu']}, "
        f"{m['cores']} cores, torch {m['torch']}",
        "",
        f"`{header['command']}` · {header['minutes']:.1f} min · load average before "
        f"{header['load_before']:.1f} · JSON: benchmarks/out/{path.name}",
        "",
    ]
    for section in sections:
        lines += [section.markdown(), ""]
    if args.rows & {1, 2}:
        lines += ["**Row 5 (GPU)**: not run: no CUDA device on this machine.", ""]
    with RESULTS.open("a") as out:
        out.write("\n".join(lines))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--rows",
        type=lambda s: {int(r) for r in s.split(",") if r},
        default=set(ROWS),
        help=f"comma-separated rows to run (default {','.join(map(str, ROWS))}; '' for none, "
        "with --levers)",
    )
    parser.add_argument("--quick", action="store_true", help="row 1: CNN on MNIST only")
    parser.add_argument(
        "--watchers",
        type=lambda s: [int(n) for n in s.split(",")],
        default=[1, 100, 1000],
        help="row 3: watcher counts for the fan-out (default 1,100,1000)",
    )
    parser.add_argument(
        "--levers",
        action="store_true",
        help="also measure each torch lever on its own (threads, channels_last, ...; ~5 min)",
    )
    parser.add_argument(
        "--passive",
        action="store_true",
        help="row 1: one more trainer CNN run with OMP_WAIT_POLICY=PASSIVE (~2 min)",
    )
    parser.add_argument(
        "--no-per-watcher",
        action="store_true",
        help="row 3: skip the fan-out through a consumer per watcher (the baseline, ~1 min)",
    )
    parser.add_argument(
        "--sweep-trials",
        type=int,
        default=sweeps.TRIALS,
        help=f"row 6: trials in the sweep (default {sweeps.TRIALS})",
    )
    parser.add_argument(
        "--no-made-per-watcher",
        action="store_true",
        help="row 3: skip the fan-out that makes each response per watcher (the baseline)",
    )
    parser.add_argument(
        "--history",
        type=int,
        default=history.HISTORY,
        help=f"row 9: jobs of one user stored for the long-history round (default "
        f"{history.HISTORY:,}; 1000000 takes ~25 min and ~5 GB of disk)",
    )
    parser.add_argument("--no-record", action="store_true", help="leave RESULTS.md as it is")
    args = parser.parse_args()
    # A TERM (from a timeout, say) unwinds like an error, so the stacks' processes stop too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    started = time.monotonic()
    header: Json = {
        "time": datetime.now(UTC).isoformat(),
        "commit": commit(),
        "machine": machine(),
        "load_before": load_average(),
        "command": " ".join(["python -m benchmarks", shlex.join(sys.argv[1:])]).strip(),
    }
    print(f"commit {header['commit']} on {header['machine']}\n", flush=True)
    sections: list[Section] = []
    if 1 in args.rows:
        row1 = trainer_vs_classic.run
        sections += attempt("Row 1", lambda: row1(cases(args.quick), args.passive))
    if args.levers:
        sections += attempt("Levers", levers.run)
    OUT.mkdir(parents=True, exist_ok=True)
    state = Path(tempfile.mkdtemp(prefix="state-", dir=OUT))
    sections += stack_rows(
        args.rows, args.watchers, not args.no_per_watcher, not args.no_made_per_watcher, state
    )
    if 6 in args.rows:
        sections += attempt("Row 6", lambda: sweeps.run(state / "sweeps", args.sweep_trials))
    if 7 in args.rows:
        sections += attempt("Row 7", lambda: checkpoints.run(state / "checkpoints"))
    if 8 in args.rows:
        sections += attempt("Row 8", lambda: analysis.run(state / "analysis"))
    if 9 in args.rows:
        sections += attempt("Row 9", lambda: history.row(state / "history", args.history))
    if 10 in args.rows:
        sections += attempt("Row 10", lambda: writes.run(state / "writes"))
    shutil.rmtree(state, ignore_errors=True)  # kept, with the services' logs, when a row fails
    header["minutes"] = (time.monotonic() - started) / 60
    sections.sort(key=row_order)
    path = record(sections, header, args)
    print("\n\n".join(s.text() for s in sections))
    print(f"\nJSON: {path}" + ("" if args.no_record else f"; appended to {RESULTS}"))


if __name__ == "__main__":
    main()
