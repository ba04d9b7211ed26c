"""`tuner trainers` and `tuner status`: who trains, and whether the stack can do its work."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any

import grpc
from google.protobuf import json_format

from tuner import trainer_view
from tuner.client import TunerClient
from tuner.core import states
from tuner.output import to_json
from tuner.v1 import trainer_pb2, tuner_service_pb2

COLUMNS = ("name", "device", "state", "job", "progress", "done", "last seen")


def trainer_rows(
    trainers: list[trainer_pb2.TrainerStatus], now: datetime | None = None
) -> list[tuple[str, ...]]:
    now = now or datetime.now(UTC)
    return [
        (
            t.name,
            t.device,
            trainer_view.state(t),
            trainer_view.job(t),
            trainer_view.progress(t),
            str(t.jobs_done),
            trainer_view.last_seen(t, now),
        )
        for t in trainers
    ]


def table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(COLUMNS[i]), *(len(r[i]) for r in rows)) for i in range(len(COLUMNS))]
    lines = [COLUMNS, *rows]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in lines
    )


async def trainers(client: TunerClient, args: argparse.Namespace) -> int:
    found = await client.list_trainers()
    if args.json:
        print(to_json(tuner_service_pb2.ListTrainersResponse(trainers=found)))
    elif not found:
        print("no trainer is connected: start one (python -m trainer, or tuner up --trainers N)")
    else:
        print(table(trainer_rows(found)))
    return 0


def jobs_line(response: tuner_service_pb2.GetStatusResponse) -> str:
    parts = [
        f"{c.count}{'+' if c.at_least else ''} {states.name(c.state).lower()}"
        for c in response.jobs
    ]
    return ", ".join(parts) or "not counted (the database does not answer)"


def queue_line(response: tuner_service_pb2.GetStatusResponse) -> str:
    if not response.HasField("jobs_stream"):
        return "not known (JetStream does not answer)"
    t, s = response.trainers_consumer, response.scheduler_consumer
    return (
        f"{response.jobs_stream.name} {response.jobs_stream.messages} messages; "
        f"consumer {t.name}: {t.pending} pending, {t.ack_pending} being trained, "
        f"{t.redelivered} redelivered; consumer {s.name} of {s.stream}: {s.pending} pending"
    )


def text(address: str, health: str, response: tuner_service_pb2.GetStatusResponse) -> str:
    lines = [
        f"{'scheduler':<10}  {'ok' if health == 'SERVING' else 'DOWN':<4}  {health} at {address}"
    ]
    for part in response.components:
        mark = "ok" if part.reachable else "DOWN"
        lines.append(f"{part.name:<10}  {mark:<4}  {part.detail}")
    names = ", ".join(f"{t.name} {trainer_view.state(t)}" for t in response.trainers)
    count = len(response.trainers)
    lines.append(
        f"{'trainers':<10}  {'ok' if count else 'none':<4}  {count}"
        + (f" ({names})" if names else "")
    )
    lines.append(f"{'queue':<10}  {'':<4}  {queue_line(response)}")
    lines.append(f"{'jobs':<10}  {'':<4}  {jobs_line(response)}")
    return "\n".join(lines)


def as_json(address: str, health: str, detail: str, response: Any) -> str:
    found: dict[str, Any] = {"scheduler": {"address": address, "health": health}}
    if detail:
        found["scheduler"]["detail"] = detail
    ok = health == "SERVING" and response is not None
    if response is not None:
        found.update(
            json_format.MessageToDict(
                response,
                preserving_proto_field_name=True,
                always_print_fields_with_no_presence=True,
            )
        )
        ok = ok and all(c.reachable for c in response.components)
    found["ok"] = ok
    return json.dumps(found, indent=2)


async def status(client: TunerClient, args: argparse.Namespace) -> int:
    """0 when the scheduler serves and reaches everything; 1 when anything is down."""
    try:
        health = await client.health()
    except grpc.aio.AioRpcError as error:
        detail = str(error.details() or error.code().name)
        if args.json:
            print(as_json(client.server, "UNREACHABLE", detail, None))
        else:
            print(f"{'scheduler':<10}  DOWN  unreachable at {client.server}: {detail}")
        return 1
    try:
        response = await client.status()
    except grpc.aio.AioRpcError as error:
        detail = f"GetStatus: {error.code().name}: {error.details()}"
        if args.json:
            print(as_json(client.server, health, detail, None))
        else:
            print(f"{'scheduler':<10}  DOWN  {health} at {client.server}, {detail}")
        return 1
    print(
        as_json(client.server, health, "", response)
        if args.json
        else text(client.server, health, response)
    )
    up = health == "SERVING" and all(c.reachable for c in response.components)
    return 0 if up else 1


COMMANDS = {"trainers": trainers, "status": status}


def add_parsers(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    commands.add_parser("trainers", parents=parents, help="the trainers the scheduler hears from")
    commands.add_parser(
        "status",
        parents=parents,
        help="scheduler, database, NATS, queue, trainers and jobs; exits 1 when one is down",
    )
