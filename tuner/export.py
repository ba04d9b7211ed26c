"""Writes a set of jobs to one file: CSV, JSON lines, or an optuna study (a journal file).

The file appears whole or not at all: it is written beside its path and renamed into place.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

from google.protobuf import json_format

from tuner.client import TunerClient
from tuner.core.hyperparameters import named
from tuner.v1 import analysis_pb2, job_pb2

FORMATS = ("csv", "jsonl", "optuna")
COLUMNS = (
    "job_id",
    "trial_number",
    "epochs",
    "learning_rate",
    "batch_size",
    "dataset",
    "model",
    "optimizer",
    "seed",
    "test_accuracy",
    "test_loss",
    "training_seconds",
    "owner",
)
# Jobs fetched at once: each is one GetJob, with its history.
CONCURRENCY = 16
STUDY_NAME = "tuner"


class ExportError(Exception):
    """A one-line reason the export stopped; no file was left."""


def params(hp: job_pb2.Hyperparameters) -> dict[str, Any]:
    return dict(named(hp))


async def export(
    client: TunerClient, request: analysis_pb2.AnalyzeRequest, fmt: str, path: str
) -> int:
    """Writes the set `request` selects to `path` in `fmt`; returns how many jobs."""
    target = Path(path)
    try:
        fd, temporary = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"
        )
        os.close(fd)
        os.chmod(temporary, 0o644)  # mkstemp's 0600 would be the export's
    except OSError as error:
        raise ExportError(f"cannot write {path}: {error.strerror}") from None
    try:
        analysis = await client.analyze(request)
        jobs = await _jobs(client, [p.job_id for p in analysis.points])
        numbers = [p.trial_number for p in analysis.points]
        name = f"{STUDY_NAME}-sweep-{request.sweep_id}" if request.sweep_id else STUDY_NAME
        WRITERS[fmt](temporary, list(zip(numbers, jobs, strict=True)), name)
        os.replace(temporary, target)
    except OSError as error:
        raise ExportError(f"cannot write {path}: {error.strerror}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    return len(jobs)


async def _jobs(client: TunerClient, ids: list[str]) -> list[job_pb2.Job]:
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(job_id: str) -> job_pb2.Job:
        async with gate:
            return await client.get(job_id)

    return list(await asyncio.gather(*(one(i) for i in ids)))


def write_csv(path: str, jobs: list[tuple[int, job_pb2.Job]], _: str) -> None:
    with open(path, "w", newline="") as out:
        writer = csv.DictWriter(out, COLUMNS)
        writer.writeheader()
        for number, job in jobs:
            writer.writerow(
                {
                    "job_id": job.id,
                    "trial_number": number,
                    **params(job.hyperparameters),
                    "test_accuracy": job.result.test_accuracy,
                    "test_loss": job.result.test_loss,
                    "training_seconds": job.result.training_duration.ToNanoseconds() / 1e9,
                    "owner": job.owner,
                }
            )


def write_jsonl(path: str, jobs: list[tuple[int, job_pb2.Job]], _: str) -> None:
    with open(path, "w") as out:
        for number, job in jobs:
            doc = json_format.MessageToDict(job, preserving_proto_field_name=True)
            out.write(json.dumps({"trial_number": number, "job": doc}) + "\n")


def write_optuna(path: str, jobs: list[tuple[int, job_pb2.Job]], name: str) -> None:
    """One study, maximizing: each job a trial (params with their distributions over the
    set, test accuracy the value, each epoch's accuracy an intermediate value)."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    rows = [params(job.hyperparameters) for _, job in jobs]
    distributions = space(rows)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        storage = JournalStorage(JournalFileBackend(path))
        study = optuna.create_study(study_name=name, storage=storage, direction="maximize")
        study.add_trials(
            optuna.trial.create_trial(
                params=row,
                distributions=distributions,
                value=job.result.test_accuracy,
                intermediate_values={m.epoch: m.test_accuracy for m in job.history},
                user_attrs={"job_id": job.id, "trial_number": number, "owner": job.owner},
            )
            for (number, job), row in zip(jobs, rows, strict=True)
        )


def space(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Each hyperparameter's distribution over the values the set holds."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    out: dict[str, Any] = {}
    for field in COLUMNS[2:9]:
        seen = {row[field] for row in rows}
        if not seen:
            continue
        if field == "learning_rate":
            out[field] = FloatDistribution(min(seen), max(seen), log=True)
        elif field in ("epochs", "batch_size"):
            out[field] = IntDistribution(min(seen), max(seen), log=field == "batch_size")
        else:
            out[field] = CategoricalDistribution(sorted(seen, key=str))
    return out


WRITERS = {"csv": write_csv, "jsonl": write_jsonl, "optuna": write_optuna}
