"""`tuner up`: the embedded stack on one machine, until Ctrl-C."""

from __future__ import annotations

import argparse
import os
import queue
import signal
import sys
from pathlib import Path

from tuner.stack import Stack


def default_state_dir() -> Path:
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "tuner"


def tell(notice: str) -> None:
    print(f"tuner: {notice}", file=sys.stderr, flush=True)


def up(args: argparse.Namespace) -> int:
    if args.trainers < 0:
        print("tuner up: --trainers must be 0 or more", file=sys.stderr)
        return 2
    state_dir = Path(args.state_dir) if args.state_dir else default_state_dir()
    stack = Stack(state_dir)
    # Metrics stay off here: the scheduler and every trainer would want the one port.
    stack.env.pop("TUNER_METRICS_PORT", None)
    # Ctrl-C is handled below, between steps; the children run in their own sessions.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        print(f"tuner: starting the stack in {state_dir}", file=sys.stderr)
        if not os.environ.get("TUNER_NATS_URL"):
            stack.start_nats()
        if not os.environ.get("TUNER_MONGO_URI"):
            stack.start_mongo()
        address = stack.start_scheduler(args.port)
        threads = max(1, (os.cpu_count() or 1) // args.trainers) if args.trainers > 1 else 0
        for index in range(1, args.trainers + 1):
            stack.start_trainer(index, threads)
        # From here on a child that exits is started again, and each restart is told:
        # on stderr, or in the dashboard's status line (stderr would garble its screen).
        notices: queue.SimpleQueue[str] = queue.SimpleQueue()
        stack.supervise(tell if args.no_tui else notices.put)
        if args.no_tui:
            print(
                f"tuner: scheduler on {address}, {args.trainers} trainer(s), logs in "
                f"{state_dir / 'logs'}\n"
                f"  submit:  tuner submit --server {address} --epochs 1 --lr 0.001 "
                "--batch-size 64 --model mlp --wait\n"
                "  stop:    Ctrl-C",
                file=sys.stderr,
            )
            signal.pause()
            return 0
        from tui.app import run_tui

        return run_tui(address, args.user, notices=notices)
    except KeyboardInterrupt:
        return 0
    except (RuntimeError, TimeoutError, FileNotFoundError) as error:
        print(f"tuner up: {error} (logs in {state_dir / 'logs'})", file=sys.stderr)
        return 1
    finally:
        print("tuner: stopping", file=sys.stderr)
        stack.stop()
