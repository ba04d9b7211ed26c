"""The AnalysisService gRPC handler: the set of jobs asked for, analysed in a thread."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import grpc

from scheduler.importance import analysis
from scheduler.validation import valid_id
from store.analysis import Selection, matching, trial_jobs
from store.jobs import JobStore
from store.sweeps import SweepStore
from tuner.core.hyperparameters import DATASETS, MODELS, OPTIMIZERS, name_of
from tuner.v1 import analysis_pb2, analysis_pb2_grpc

if TYPE_CHECKING:
    Context = grpc.aio.ServicerContext[Any, Any]
else:
    Context = grpc.aio.ServicerContext

ENUMS: dict[str, Mapping[str, int]] = {
    "dataset": DATASETS,
    "model": MODELS,
    "optimizer": OPTIMIZERS,
}
RANGES = ("epochs", "learning_rate", "batch_size")


class AnalysisService(analysis_pb2_grpc.AnalysisServiceServicer):
    def __init__(self, store: JobStore, sweeps: SweepStore) -> None:
        self._store = store
        self._sweeps = sweeps

    async def Analyze(
        self, request: analysis_pb2.AnalyzeRequest, context: Context
    ) -> analysis_pb2.AnalyzeResponse:
        truncated = False
        if request.WhichOneof("selection") == "sweep_id":
            sweep_id = await valid_id(request.sweep_id, "sweep_id", context)
            sweep = await self._sweeps.get(sweep_id)
            if sweep is None:
                await context.abort(
                    grpc.StatusCode.NOT_FOUND, f"sweep_id: no sweep {sweep_id} exists"
                )
                raise AssertionError("unreachable")
            numbered = await trial_jobs(self._store, sweep)
            empty = "the sweep has no SUCCEEDED trial"
        else:
            query = await _query(request.filter, context)
            docs, truncated = await matching(self._store, query)
            numbered = list(enumerate(docs, 1))
            empty = "no SUCCEEDED job matches the filter"
        # PED-ANOVA over thousands of trials is CPU work: the loop stays free for other calls.
        response = await asyncio.to_thread(analysis, numbered)
        response.truncated = truncated
        if not numbered:
            response.note = empty
        elif truncated:
            response.note = f"more jobs match: the set is the latest {len(numbered)} to end"
        return response


async def _query(spec: analysis_pb2.JobFilter, context: Context) -> Selection:
    """The jobs a filter selects; INVALID_ARGUMENT for a bound that cannot be."""
    equal: dict[str, str] = {}
    for field, names in ENUMS.items():
        value = getattr(spec, field)
        if value == 0:
            continue
        if value not in names.values():
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"filter.{field}: must be one of {', '.join(names)}, got enum value {value}",
            )
        equal[field] = name_of(names, value)
    ranges: dict[str, tuple[float | None, float | None]] = {}
    for field in RANGES:
        bounds: analysis_pb2.Range = getattr(spec, field)
        low = bounds.min if bounds.HasField("min") else None
        high = bounds.max if bounds.HasField("max") else None
        if any(b is not None and not math.isfinite(b) for b in (low, high)):
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"filter.{field}: bounds must be finite"
            )
        if low is not None and high is not None and low > high:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"filter.{field}: min {low} is above max {high}"
            )
        ranges[field] = (low, high)
    return Selection(equal, ranges)
