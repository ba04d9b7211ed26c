"""The `tuner` command line: a gRPC client of the scheduler, plus `tuner up` for the stack."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import grpc

from tuner import analyze_cli, model_cli, status_cli, sweep_cli, trainer_view
from tuner.client import TunerClient
from tuner.core import states
from tuner.core.hyperparameters import (
    DATASETS,
    MODELS,
    OPTIMIZERS,
    canonical_key,
    describe,
    job_id,
    normalized,
)
from tuner.core.retry import Backoff
from tuner.models import ModelError
from tuner.output import to_json
from tuner.v1 import job_pb2, tuner_service_pb2

DEFAULT_SERVER = "127.0.0.1:50051"


def default_user() -> str:
    return os.environ.get("TUNER_USER") or getpass.getuser()


class CommandError(Exception):
    """A one-line reason to stop with a non-zero exit."""


def add_hyperparameters(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("hyperparameters")
    group.add_argument("--epochs", type=int, required=True, help="1..100")
    group.add_argument(
        "--lr",
        "--learning-rate",
        dest="lr",
        type=float,
        required=True,
        help="learning rate, in (0, 10]",
    )
    group.add_argument("--batch-size", type=int, required=True, help="1..8192")
    group.add_argument("--dataset", choices=DATASETS, default="mnist", help="default: mnist")
    group.add_argument("--model", choices=MODELS, default="cnn", help="default: cnn")
    group.add_argument("--optimizer", choices=OPTIMIZERS, default="adam", help="default: adam")
    group.add_argument("--seed", type=int, default=0, help="default: 0")


def hyperparameters(args: argparse.Namespace) -> job_pb2.Hyperparameters:
    return job_pb2.Hyperparameters(
        epochs=args.epochs,
        learning_rate=args.lr,
        batch_size=args.batch_size,
        dataset=DATASETS[args.dataset],
        model=MODELS[args.model],
        optimizer=OPTIMIZERS[args.optimizer],
        seed=args.seed,
    )


def summary(job: job_pb2.Job) -> str:
    line = f"{job.id}  {states.name(job.state):<9}  {describe(job.hyperparameters)}"
    if job.state == job_pb2.JOB_STATE_SUCCEEDED:
        seconds = job.result.training_duration.ToNanoseconds() / 1e9
        line += f"  accuracy {job.result.test_accuracy:.4f}  training {seconds:.1f} s"
    elif job.error:
        line += f"  ({job.error})"
    return line


def print_job(job: job_pb2.Job, as_json: bool) -> None:
    print(to_json(job) if as_json else summary(job))


def queued_status(job: job_pb2.Job, trainers: int | None) -> str:
    """The progress line's status: says so when a queued job waits for want of a trainer."""
    text = states.name(job.state)
    if trainer_view.waiting_for_trainer(job.state == job_pb2.JOB_STATE_QUEUED, trainers):
        text += f" · {trainer_view.WAITING}"
    return text


async def count_trainers(client: TunerClient) -> int | None:
    """None when the scheduler cannot say (an older one, or an outage)."""
    try:
        return len(await client.list_trainers())
    except grpc.aio.AioRpcError:
        return None


TRAINER_POLL_SECONDS = 2.0


@dataclass
class Followed:
    """What the progress line of a followed job shows besides its progress."""

    job: job_pb2.Job
    trainers: int | None  # connected trainers; None when not known


async def follow(
    client: TunerClient, job: job_pb2.Job, quiet: bool, trainers: int | None = None
) -> job_pb2.Job:
    """Shows a progress bar until the job ends; resumes the watch if the connection drops.

    While the job is queued the trainers are counted every few seconds, so that a job
    waiting for want of a trainer says so.
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    last_sequence = 0
    backoff = Backoff(first=1.0, cap=5.0)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
    )
    seen = Followed(job, trainers)

    def show_state() -> None:
        bar.update(task, status=queued_status(seen.job, seen.trainers))

    async def recount() -> None:
        while True:
            if seen.job.state == job_pb2.JOB_STATE_QUEUED:
                seen.trainers = await count_trainers(client)
                show_state()
            await asyncio.sleep(TRAINER_POLL_SECONDS)

    with Progress(*columns, disable=quiet, transient=True) as bar:
        task = bar.add_task(job.id[:12], total=None, status=queued_status(job, trainers))
        counting = asyncio.create_task(recount())
        try:
            while True:
                try:
                    async for response in client.watch(job.id, last_sequence):
                        backoff.reset()
                        if response.WhichOneof("kind") == "job":
                            job = seen.job = response.job
                            show_state()
                            continue
                        event = response.event
                        last_sequence = event.sequence
                        kind = event.WhichOneof("kind")
                        if kind == "progress":
                            p = event.progress
                            status = f"epoch {p.epoch}/{p.total_epochs} loss {p.loss:.4f}"
                            bar.update(task, total=p.total_steps, completed=p.step, status=status)
                        elif kind == "state_changed":
                            job = seen.job = event.state_changed.job
                            show_state()
                    if job.state in states.TERMINAL:
                        return job
                except grpc.aio.AioRpcError as error:
                    if error.code() != grpc.StatusCode.UNAVAILABLE:
                        raise
                    await backoff.wait()
        finally:
            counting.cancel()


def shorter_job(hp: job_pb2.Hyperparameters, epochs: int) -> str:
    """The id of the job of the same configuration with `epochs` epochs."""
    shorter = job_pb2.Hyperparameters()
    shorter.CopyFrom(hp)
    shorter.epochs = epochs
    return job_id(canonical_key(normalized(shorter)))


async def submit(client: TunerClient, args: argparse.Namespace) -> int:
    response = await client.submit(hyperparameters(args))
    job = response.job
    if response.deduplicated:
        print(f"already submitted: {states.name(job.state)}", file=sys.stderr)
    if response.reused_epochs > 0:
        print(
            f"reuses {response.reused_epochs} epochs of job "
            f"{shorter_job(job.hyperparameters, response.reused_epochs)}",
            file=sys.stderr,
        )
    trainers = response.trainers_connected
    if job.state == job_pb2.JOB_STATE_QUEUED and trainers == 0:
        print(
            f"warning: no trainer is connected: job {job.id} is queued and waits until one "
            "starts (python -m trainer, or tuner up --trainers N)",
            file=sys.stderr,
        )
    if args.wait and job.state not in states.TERMINAL:
        job = await follow(client, job, quiet=args.json, trainers=trainers)
    print_job(job, args.json)
    if args.wait and job.state != job_pb2.JOB_STATE_SUCCEEDED:
        raise CommandError(f"job {job.id} {states.name(job.state)}: {job.error}")
    return 0


async def watch(client: TunerClient, args: argparse.Namespace) -> int:
    job = await client.get(args.job_id)
    job = await follow(client, job, quiet=args.json, trainers=await count_trainers(client))
    print_job(job, args.json)
    return 0 if job.state == job_pb2.JOB_STATE_SUCCEEDED else 1


async def jobs(client: TunerClient, args: argparse.Namespace) -> int:
    response = await client.list([states.value(s) for s in args.state], page_size=args.limit)
    if args.json:
        print(to_json(response))
    for job in [] if args.json else response.jobs:
        print(summary(job))
    return 0


async def leaderboard(client: TunerClient, args: argparse.Namespace) -> int:
    model = MODELS[args.model] if args.model else job_pb2.MODEL_UNSPECIFIED
    ranked: list[job_pb2.Job] = await client.leaderboard(args.limit, DATASETS[args.dataset], model)
    if args.json:
        print(to_json(tuner_service_pb2.GetLeaderboardResponse(jobs=ranked)))
        return 0
    board = f"{args.dataset}, {args.model} only" if args.model else args.dataset
    print(f"Leaderboard of {board}" + ("" if ranked else ": no job succeeded yet"))
    for rank, job in enumerate(ranked, 1):
        print(f"{rank:>3}. {summary(job)}  by {job.owner}")
    return 0


async def find(client: TunerClient, args: argparse.Namespace) -> int:
    print_job(await client.find(hyperparameters(args)), args.json)
    return 0


async def cancel(client: TunerClient, args: argparse.Namespace) -> int:
    print_job(await client.cancel(args.job_id), False)
    return 0


COMMANDS: dict[str, Any] = {
    "submit": submit,
    "watch": watch,
    "jobs": jobs,
    "leaderboard": leaderboard,
    "find": find,
    "cancel": cancel,
}


# The dashboard in a browser (tui.web, imported only when asked for: it loads aiohttp).
WEB_HOST = "127.0.0.1"
WEB_PORT = 8080


def port_number(text: str) -> int:
    port = int(text)
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text}: a port is 1..65535")
    return port


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="tuner",
        description="Tune hyperparameters of PyTorch models on MNIST-style data.",
    )
    client = argparse.ArgumentParser(add_help=False)
    client.add_argument(
        "--server",
        default=os.environ.get("TUNER_SERVER") or DEFAULT_SERVER,
        help="scheduler address (env TUNER_SERVER; default %(default)s)",
    )
    client.add_argument(
        "--user",
        default=default_user(),
        help="your user id (env TUNER_USER; default: your login name)",
    )
    client.add_argument(
        "--token",
        default=os.environ.get("TUNER_TOKEN", ""),
        help="bearer token, where the scheduler requires one (env TUNER_TOKEN)",
    )
    client.add_argument(
        "--tls-ca",
        default=os.environ.get("TUNER_TLS_CA_FILE", ""),
        help="CA certificate to reach a TLS scheduler (env TUNER_TLS_CA_FILE)",
    )
    json = argparse.ArgumentParser(add_help=False)
    json.add_argument("--json", action="store_true", help="print proto3 JSON")
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = commands.add_parser("up", help="start the whole stack on this machine")
    up.add_argument("--trainers", type=int, default=1, help="trainer processes (default 1)")
    shown = up.add_mutually_exclusive_group()
    shown.add_argument("--no-tui", action="store_true", help="run headless until Ctrl-C")
    shown.add_argument(
        "--web", action="store_true", help="serve the dashboard to browsers instead, until Ctrl-C"
    )
    up.add_argument("--web-host", help=f"with --web: the address to listen on (default {WEB_HOST})")
    up.add_argument(
        "--web-port",
        type=port_number,
        help=f"with --web: the port to listen on (default {WEB_PORT})",
    )
    up.add_argument("--state-dir", help="where NATS and the database keep their data")
    up.add_argument("--port", type=int, default=50051, help="scheduler port (default 50051)")
    up.add_argument("--user", default=default_user(), help="your user id in the dashboard")

    tui = commands.add_parser(
        "tui",
        parents=[client],
        help="open the dashboard",
        description="Open the dashboard in this terminal, or with --web serve it to browsers: "
        "each tab is a session of its own. Beyond loopback the scheduler must require tokens, "
        "and each tab asks for one.",
    )
    tui.add_argument(
        "--web",
        action="store_true",
        help="serve the dashboard as a web page (textual-serve) until Ctrl-C; it prints the URL",
    )
    tui.add_argument(
        "--host",
        help=f"with --web: the address to listen on (default {WEB_HOST}, this machine only); "
        "any other needs a scheduler with tokens (TUNER_TOKENS), and each tab logs in",
    )
    tui.add_argument(
        "--port", type=port_number, help=f"with --web: the port to listen on (default {WEB_PORT})"
    )

    p = commands.add_parser("submit", parents=[client, json], help="submit a training job")
    add_hyperparameters(p)
    p.add_argument("--wait", action="store_true", help="show progress until the job ends")
    p = commands.add_parser("watch", parents=[client, json], help="follow a job until it ends")
    p.add_argument("job_id")
    p = commands.add_parser("jobs", parents=[client, json], help="list your jobs, newest first")
    p.add_argument(
        "--state",
        action="append",
        default=[],
        choices=["queued", "running", "succeeded", "failed", "cancelled"],
        help="only jobs in this state (repeatable)",
    )
    p.add_argument("--limit", type=int, default=20, help="at most this many (1..100)")
    p = commands.add_parser("leaderboard", parents=[client, json], help="the best jobs")
    p.add_argument("--limit", type=int, default=10, help="1..50 (default 10)")
    p.add_argument(
        "--dataset", choices=DATASETS, default="mnist", help="whose ranking (default: mnist)"
    )
    p.add_argument("--model", choices=MODELS, help="only this model's jobs (default: every model)")
    p = commands.add_parser("find", parents=[client, json], help="find a job by hyperparameters")
    add_hyperparameters(p)
    p = commands.add_parser("cancel", parents=[client], help="cancel one of your jobs")
    p.add_argument("job_id")
    sweep_cli.add_parser(commands, [client, json])
    model_cli.add_parser(commands, [client])
    status_cli.add_parsers(commands, [client, json])
    analyze_cli.add_parsers(commands, [client, json])
    return root


async def run_client(args: argparse.Namespace) -> int:
    async with TunerClient(args.server, args.user, args.token, args.tls_ca) as client:
        if args.command == "sweep":
            command = sweep_cli.COMMANDS[args.sweep_command]
        elif args.command == "model":
            command = model_cli.COMMANDS[args.model_command]
        elif args.command in status_cli.COMMANDS:
            command = status_cli.COMMANDS[args.command]
        elif args.command in analyze_cli.COMMANDS:
            command = analyze_cli.COMMANDS[args.command]
        else:
            command = COMMANDS[args.command]
        result: int = await command(client, args)
        return result


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "up":
            from tuner.up import up

            return up(args)
        if args.command == "tui" and (args.web or args.host or args.port):
            if not args.web:
                print("tuner tui: --host and --port go with --web", file=sys.stderr)
                return 2
            from tui.web import WebSettings, serve_web

            host, port = args.host or WEB_HOST, args.port or WEB_PORT
            return serve_web(
                WebSettings(args.server, args.user, args.token, args.tls_ca, host, port)
            )
        if args.command == "tui":
            from tui.app import run_tui

            return run_tui(args.server, args.user, args.token, args.tls_ca)
        return asyncio.run(run_client(args))
    except grpc.aio.AioRpcError as error:
        if error.code() == grpc.StatusCode.UNAVAILABLE:
            print(
                f"tuner: cannot reach the scheduler at {args.server}: {error.details()}",
                file=sys.stderr,
            )
        else:
            print(f"tuner: {error.code().name}: {error.details()}", file=sys.stderr)
        return 1
    except (
        CommandError,
        sweep_cli.SweepCommandError,
        analyze_cli.AnalyzeCommandError,
        ModelError,
    ) as error:
        print(f"tuner: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
