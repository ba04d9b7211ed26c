"""`tuner up`: the embedded stack on one machine, until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import grpc

from tuner.client import TunerClient
from tuner.stack import Stack

# A trainer imports torch and loads its data first: seconds, a minute on a busy machine.
READY_TIMEOUT_SECONDS = 120.0
# Answers that may come while the scheduler restarts; any other is a reason to stop.
PASSING = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


def default_state_dir() -> Path:
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "tuner"


def tell(notice: str) -> None:
    print(f"tuner: {notice}", file=sys.stderr, flush=True)


async def wait_until_ready(
    client: TunerClient,
    names: Sequence[str],
    log_path: Callable[[str], Path],
    given_up: Callable[[], list[str]] = list,
    timeout: float = READY_TIMEOUT_SECONDS,
    every: float = 0.2,
) -> None:
    """Until the scheduler lists each of `names` as ready (warmed up).

    A trainer that exits meanwhile is the supervisor's to restart; one it gave up on, or
    `timeout` seconds without all, raise, naming the trainers and their logs.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            listed = {t.name: t for t in await asyncio.wait_for(client.list_trainers(), 5)}
        except grpc.aio.AioRpcError as error:
            if error.code() not in PASSING:
                raise RuntimeError(
                    f"the scheduler does not list the trainers: {error.code().name}: "
                    f"{error.details()}"
                ) from error
            listed = {}
        except TimeoutError:  # a stalled scheduler: asked again until the deadline
            listed = {}
        waiting = [name for name in names if name not in listed or not listed[name].ready]
        if not waiting:
            return
        crashed = [name for name in waiting if name in given_up()]
        if crashed:
            raise RuntimeError(f"{_named(crashed, log_path)} kept crashing before it was ready")
        if time.monotonic() >= deadline:
            raise TimeoutError(f"not ready after {timeout:g} s: {_named(waiting, log_path)}")
        await asyncio.sleep(every)


def _named(names: Sequence[str], log_path: Callable[[str], Path]) -> str:
    return ", ".join(f"{name} (log {log_path(name)})" for name in names)


def up(args: argparse.Namespace) -> int:
    if args.trainers < 0:
        print("tuner up: --trainers must be 0 or more", file=sys.stderr)
        return 2
    if not args.web and (args.web_host or args.web_port):
        print("tuner up: --web-host and --web-port go with --web", file=sys.stderr)
        return 2
    if args.web:
        from tui.web import listening_refused
        from tuner.cli import WEB_HOST, WEB_PORT

        web_host, web_port = args.web_host or WEB_HOST, args.web_port or WEB_PORT
        refused = listening_refused(web_host, web_port)
        if refused:  # before the stack, which would start only to stop again
            print(f"tuner up --web: {refused}", file=sys.stderr)
            return 1
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
        started = time.monotonic()
        threads = max(1, (os.cpu_count() or 1) // args.trainers) if args.trainers > 1 else 0
        names = [f"trainer-{index}" for index in range(1, args.trainers + 1)]
        for index in range(1, args.trainers + 1):
            stack.start_trainer(index, threads)
        # From here on a child that exits is started again, and each restart is told: on
        # stderr, or once the dashboard is open in its status line (stderr would garble it).
        notices: queue.SimpleQueue[str] = queue.SimpleQueue()
        dashboard = threading.Event()
        stack.supervise(lambda notice: notices.put(notice) if dashboard.is_set() else tell(notice))
        ca_file = stack.env.get("TUNER_TLS_CA_FILE", "")
        token = os.environ.get("TUNER_TOKEN", "")  # where TUNER_TOKENS puts it in token mode
        if names:
            tell(f"waiting for {len(names)} trainer(s) to warm up")
            asyncio.run(_wait(address, args.user, token, ca_file, names, stack))
        took = f" ready in {time.monotonic() - started:.1f} s" if names else ""
        tell(f"ready: scheduler on {address}, {len(names)} trainer(s){took}")
        if args.no_tui:
            print(
                f"  logs in {state_dir / 'logs'}\n"
                f"  submit:  tuner submit --server {address} --epochs 1 --lr 0.001 "
                "--batch-size 64 --model mlp --wait\n"
                "  stop:    Ctrl-C",
                file=sys.stderr,
            )
            signal.pause()
            return 0
        if args.web:
            from tui.web import WebSettings, serve_web

            web = WebSettings(address, args.user, token, ca_file, web_host, web_port)
            return serve_web(web, prog="tuner up --web")
        from tui.app import run_tui

        dashboard.set()
        return run_tui(address, args.user, token, ca_file, notices=notices)
    except KeyboardInterrupt:
        return 0
    except (RuntimeError, TimeoutError, FileNotFoundError) as error:
        print(f"tuner up: {error} (logs in {state_dir / 'logs'})", file=sys.stderr)
        return 1
    finally:
        print("tuner: stopping", file=sys.stderr)
        stack.stop()


async def _wait(
    address: str, user: str, token: str, ca_file: str, names: list[str], stack: Stack
) -> None:
    async with TunerClient(address, user, token, ca_file) as client:
        await wait_until_ready(client, names, stack.log_path, stack.given_up)
