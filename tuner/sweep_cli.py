"""`tuner sweep ...`: create, watch, list and cancel sweeps."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tuner.client import TunerClient
from tuner.core import states
from tuner.core.hyperparameters import describe
from tuner.output import to_json
from tuner.sweep_spec import SpecError, parse
from tuner.v1 import sweep_pb2


class SweepCommandError(Exception):
    """A one-line reason to stop with a non-zero exit."""


def sweep_state(sweep: sweep_pb2.Sweep) -> str:
    return states.sweep_name(sweep.state)


def summary(sweep: sweep_pb2.Sweep) -> str:
    pruned = sum(t.pruned for t in sweep.trials)
    line = (
        f"{sweep.id}  {sweep_state(sweep):<9}  {sweep.spec.name or '(unnamed)'}  "
        f"{len(sweep.trials)}/{sweep.spec.max_trials} trials, {pruned} pruned"
    )
    if sweep.best_trial:
        best = sweep.trials[sweep.best_trial - 1]
        line += (
            f"  best #{best.number}: {best.test_accuracy:.4f} ({describe(best.hyperparameters)})"
        )
    return line


def trial_line(trial: sweep_pb2.Trial) -> str:
    notes = " pruned" if trial.pruned else " reused" if trial.reused else ""
    return (
        f"  #{trial.number:<3} {states.name(trial.state):<9} {trial.test_accuracy:.4f}  "
        f"epochs {trial.epochs_done}/{trial.hyperparameters.epochs}  "
        f"{describe(trial.hyperparameters)}{notes}"
    )


def show(sweep: sweep_pb2.Sweep, as_json: bool) -> None:
    if as_json:
        print(to_json(sweep))
        return
    print(summary(sweep))
    for trial in sweep.trials:
        print(trial_line(trial))


async def follow(client: TunerClient, sweep: sweep_pb2.Sweep, quiet: bool) -> sweep_pb2.Sweep:
    """Prints a line each time a trial ends, until the sweep does."""
    ended = 0
    async for update in client.watch_sweep(sweep.id):
        sweep = update
        now_ended = sum(t.state not in states.ACTIVE for t in sweep.trials)
        if not quiet and now_ended != ended:
            ended = now_ended
            print(summary(sweep), file=sys.stderr)
    return sweep


async def create(client: TunerClient, args: argparse.Namespace) -> int:
    try:
        spec = parse(Path(args.spec).read_text())
    except OSError as error:
        raise SweepCommandError(f"cannot read {args.spec}: {error.strerror}") from None
    except SpecError as error:
        raise SweepCommandError(f"{args.spec}: {error}") from None
    sweep = await client.create_sweep(spec)
    if args.wait:
        sweep = await follow(client, sweep, quiet=args.json)
    show(sweep, args.json)
    return 0


async def watch(client: TunerClient, args: argparse.Namespace) -> int:
    show(await follow(client, await client.get_sweep(args.sweep_id), args.json), args.json)
    return 0


async def list_sweeps(client: TunerClient, args: argparse.Namespace) -> int:
    sweeps = await client.list_sweeps(args.limit)
    if args.json:
        print(to_json(sweep_pb2.ListSweepsResponse(sweeps=sweeps)))
    for sweep in [] if args.json else sweeps:
        print(summary(sweep))
    return 0


async def cancel(client: TunerClient, args: argparse.Namespace) -> int:
    print(summary(await client.cancel_sweep(args.sweep_id)))
    return 0


COMMANDS = {"create": create, "watch": watch, "list": list_sweeps, "cancel": cancel}


def add_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    parents: list[argparse.ArgumentParser],
) -> None:
    sweep = commands.add_parser("sweep", help="search a space of hyperparameters")
    actions = sweep.add_subparsers(dest="sweep_command", required=True, metavar="ACTION")
    p = actions.add_parser("create", parents=parents, help="start a sweep from a YAML spec")
    p.add_argument("spec", help="the spec file (see tuner/sweep_spec.py or the README)")
    p.add_argument("--wait", action="store_true", help="follow it until it ends")
    p = actions.add_parser("watch", parents=parents, help="follow a sweep until it ends")
    p.add_argument("sweep_id")
    p = actions.add_parser("list", parents=parents, help="your sweeps, newest first")
    p.add_argument("--limit", type=int, default=20, help="at most this many (1..100)")
    p = actions.add_parser("cancel", parents=parents[:1], help="stop a sweep and its trials")
    p.add_argument("sweep_id")
