"""`tuner analyze`, `tuner compare` and `tuner export`: what a set of finished jobs says."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping

from google.protobuf import json_format

from tuner import export
from tuner.client import TunerClient
from tuner.core import states
from tuner.core.hyperparameters import DATASETS, MODELS, OPTIMIZERS, describe, name_of
from tuner.output import to_json
from tuner.v1 import analysis_pb2, job_pb2

# Points the table shows, best first (--json has them all).
SHOWN_POINTS = 10
BAR = 30
ENUMS: dict[str, Mapping[str, int]] = {
    "dataset": DATASETS,
    "model": MODELS,
    "optimizer": OPTIMIZERS,
}
RANGES = (("epochs", int), ("learning_rate", float), ("batch_size", int))


class AnalyzeCommandError(Exception):
    """A one-line reason to stop with a non-zero exit."""


def add_filters(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "the set",
        "a sweep's SUCCEEDED trials, or the SUCCEEDED jobs of every user that match "
        "all the filters given (none: all, at most the latest 10,000)",
    )
    group.add_argument("--sweep", metavar="ID", help="a sweep's trials (no filters with it)")
    group.add_argument("--dataset", choices=DATASETS)
    group.add_argument("--model", choices=MODELS)
    group.add_argument("--optimizer", choices=OPTIMIZERS)
    for field, kind in RANGES:
        flag = field.replace("_", "-")
        for bound in ("min", "max"):
            group.add_argument(f"--{bound}-{flag}", dest=f"{bound}_{field}", type=kind)


def request(args: argparse.Namespace) -> analysis_pb2.AnalyzeRequest:
    spec = analysis_pb2.JobFilter()
    given = False
    for field, names in ENUMS.items():
        if (value := getattr(args, field)) is not None:
            setattr(spec, field, names[value])
            given = True
    for field, _ in RANGES:
        for bound in ("min", "max"):
            if (value := getattr(args, f"{bound}_{field}")) is not None:
                setattr(getattr(spec, field), bound, value)
                given = True
    if args.sweep:
        if given:
            raise AnalyzeCommandError("--sweep cannot be combined with filters")
        return analysis_pb2.AnalyzeRequest(sweep_id=args.sweep)
    return analysis_pb2.AnalyzeRequest(filter=spec)


def value_text(hp: job_pb2.Hyperparameters, field: str) -> str:
    value = getattr(hp, field)
    names = ENUMS.get(field)
    return name_of(names, value) if names else f"{value:g}"


def print_analysis(response: analysis_pb2.AnalyzeResponse) -> None:
    if response.note:
        print(response.note)
    if not response.count:
        return
    best = next(p for p in response.points if p.job_id == response.best_job_id)
    print(
        f"{response.count} jobs; best {best.job_id} accuracy {best.test_accuracy:.4f} "
        f"({describe(best.hyperparameters)})"
    )
    print("\nimportance for test accuracy (PED-ANOVA):")
    for imp in response.importances:
        if imp.defined:
            print(f"  {imp.name:<14} {imp.value:6.3f}  {'#' * round(imp.value * BAR)}")
        else:
            print(f"  {imp.name:<14} {'-':>6}  {imp.reason}")
    ranked = sorted(response.points, key=lambda p: (-p.test_accuracy, p.trial_number))
    print(f"\nthe best {min(SHOWN_POINTS, len(ranked))} (--json for all {len(ranked)}):")
    for p in ranked[:SHOWN_POINTS]:
        hp = describe(p.hyperparameters)
        print(f"  #{p.trial_number:<5} {p.job_id}  {p.test_accuracy:.4f}  {hp}")


async def analyze(client: TunerClient, args: argparse.Namespace) -> int:
    response = await client.analyze(request(args))
    if args.json:
        print(to_json(response))
    else:
        print_analysis(response)
    return 0


HYPERPARAMETERS = ("epochs", "learning_rate", "batch_size", "dataset", "model", "optimizer", "seed")


def compare_table(jobs: list[job_pb2.Job]) -> list[str]:
    """Hyperparameters side by side, then each epoch's train loss, test loss and accuracy."""
    width = 26
    lines = [f"{'':<14}" + "".join(f"{j.id[:12]:<{width}}" for j in jobs)]
    lines.append(f"{'state':<14}" + "".join(f"{states.name(j.state):<{width}}" for j in jobs))
    for field in HYPERPARAMETERS:
        lines.append(
            f"{field:<14}"
            + "".join(f"{value_text(j.hyperparameters, field):<{width}}" for j in jobs)
        )
    lines.append(
        f"{'result':<14}"
        + "".join(
            f"{f'{j.result.test_accuracy:.4f}' if j.HasField('result') else '-':<{width}}"
            for j in jobs
        )
    )
    lines.append("")
    lines.append(f"{'epoch':<14}" + f"{'train / test loss  acc':<{width}}" * len(jobs))
    by_epoch = [{m.epoch: m for m in j.history} for j in jobs]
    for epoch in sorted({e for epochs in by_epoch for e in epochs}):
        cells = []
        for epochs in by_epoch:
            m = epochs.get(epoch)
            text = f"{m.train_loss:.4f} / {m.test_loss:.4f}  {m.test_accuracy:.4f}" if m else "-"
            cells.append(f"{text:<{width}}")
        lines.append(f"{epoch:<14}" + "".join(cells))
    return [line.rstrip() for line in lines]


async def compare(client: TunerClient, args: argparse.Namespace) -> int:
    if not 2 <= len(args.job_ids) <= 4 or len(set(args.job_ids)) != len(args.job_ids):
        raise AnalyzeCommandError("compare takes 2 to 4 different job ids")
    jobs = [await client.get(job_id) for job_id in args.job_ids]
    if args.json:
        docs = [json_format.MessageToDict(j, preserving_proto_field_name=True) for j in jobs]
        print(json.dumps({"jobs": docs}, indent=2))
    else:
        print("\n".join(compare_table(jobs)))
    return 0


async def export_set(client: TunerClient, args: argparse.Namespace) -> int:
    try:
        count = await export.export(client, request(args), args.format, args.output)
    except export.ExportError as error:
        raise AnalyzeCommandError(str(error)) from None
    print(f"exported {count} jobs to {args.output} ({args.format})")
    return 0


COMMANDS = {
    "analyze": analyze,
    "compare": compare,
    "export": export_set,
}


def add_parsers(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    parents: list[argparse.ArgumentParser],
) -> None:
    """`parents`: the client options, then --json."""
    p = commands.add_parser(
        "analyze", parents=parents, help="hyperparameter importances and the best job of a set"
    )
    add_filters(p)
    p = commands.add_parser(
        "compare", parents=parents, help="2 to 4 jobs side by side, epoch by epoch"
    )
    p.add_argument("job_ids", nargs="+", metavar="JOB_ID")
    p = commands.add_parser(
        "export",
        parents=parents[:1],
        help="write a set of jobs to a file: csv, jsonl or an optuna study",
        epilog="optuna: a JournalStorage file (JournalFileBackend); open it with "
        "`optuna-dashboard PATH` or optuna.load_study(study_name=None, "
        "storage=JournalStorage(JournalFileBackend(PATH)))",
    )
    p.add_argument("--format", choices=export.FORMATS, required=True)
    p.add_argument("-o", "--output", metavar="PATH", required=True)
    add_filters(p)
