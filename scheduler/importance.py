"""An analysis of a set of SUCCEEDED jobs: PED-ANOVA importances, the best job, the points.

Pure and synchronous (optuna's evaluator is CPU work): the service runs it in a thread, and
the benchmarks call `analysis` directly.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from store.documents import Document, hyperparameters_from
from tuner.v1 import analysis_pb2

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial

# In Hyperparameters' field order; each is evaluated where the set holds more than one value.
HYPERPARAMETERS = ("epochs", "learning_rate", "batch_size", "dataset", "model", "optimizer", "seed")
# Ordered and on a log scale where it helps the estimator; the others are categories (a seed
# has no order that means anything).
INTEGERS = {"epochs": False, "batch_size": True}
FLOATS = {"learning_rate": True}
# Below this many jobs the top 10% PED-ANOVA compares holds nothing to compare.
MIN_JOBS = 4
ONE_VALUE = "one value in the set"


def too_few(count: int) -> str:
    return f"the set holds {count} jobs: importance needs at least {MIN_JOBS}"


def analysis(numbered: Sequence[tuple[int, Document]]) -> analysis_pb2.AnalyzeResponse:
    """The analysis of (trial number, job document) pairs, in trial-number order."""
    response = analysis_pb2.AnalyzeResponse(count=len(numbered))
    best: tuple[float, int, str] | None = None
    for number, doc in numbered:
        accuracy = float(doc["result"]["test_accuracy"])
        response.points.append(
            analysis_pb2.Point(
                job_id=doc["_id"],
                hyperparameters=hyperparameters_from(doc["hyperparameters"]),
                test_accuracy=accuracy,
                trial_number=number,
            )
        )
        if best is None or (accuracy, -number) > (best[0], -best[1]):
            best = (accuracy, number, doc["_id"])
    if best is not None:
        response.best_test_accuracy, _, response.best_job_id = best
    rows = [(doc["hyperparameters"], float(doc["result"]["test_accuracy"])) for _, doc in numbered]
    response.importances.extend(importances(rows))
    return response


def importances(rows: Sequence[tuple[Document, float]]) -> list[analysis_pb2.Importance]:
    """One Importance per hyperparameter for (hyperparameters document, accuracy) rows: the
    defined ones most important first, then the undefined ones with their reasons."""
    if len(rows) < MIN_JOBS:
        reason = too_few(len(rows))
        return [
            analysis_pb2.Importance(name=n, defined=False, reason=reason) for n in HYPERPARAMETERS
        ]
    values = {n: {hp[n] for hp, _ in rows} for n in HYPERPARAMETERS}
    varied = [n for n in HYPERPARAMETERS if len(values[n]) > 1]
    scores = _ped_anova(rows, {n: values[n] for n in varied}) if varied else {}
    total = sum(scores.values())
    defined = [
        analysis_pb2.Importance(name=n, value=scores[n] / total if total > 0 else 0.0, defined=True)
        for n in varied
    ]
    defined.sort(key=lambda i: -i.value)
    undefined = [
        analysis_pb2.Importance(name=n, defined=False, reason=ONE_VALUE)
        for n in HYPERPARAMETERS
        if n not in varied
    ]
    return defined + undefined


def _ped_anova(
    rows: Sequence[tuple[Document, float]], values: dict[str, set[Any]]
) -> dict[str, float]:
    """PED-ANOVA's raw importances of the varied hyperparameters, over an in-memory study."""
    import optuna
    from optuna.distributions import (
        BaseDistribution,
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )
    from optuna.trial import FrozenTrial, TrialState

    distributions: dict[str, BaseDistribution] = {}
    for n, seen in values.items():
        if n in INTEGERS:
            distributions[n] = IntDistribution(min(seen), max(seen), log=INTEGERS[n])
        elif n in FLOATS:
            distributions[n] = FloatDistribution(min(seen), max(seen), log=FLOATS[n])
        else:
            distributions[n] = CategoricalDistribution(sorted(seen, key=str))
    at = datetime.now(UTC)
    trials: list[FrozenTrial] = []
    for number, (hp, accuracy) in enumerate(rows):
        params = {n: hp[n] for n in values}
        trials.append(
            FrozenTrial(
                number=number,
                state=TrialState.COMPLETE,
                value=accuracy,
                datetime_start=at,
                datetime_complete=at,
                params=params,
                distributions=distributions,
                user_attrs={},
                system_attrs={},
                intermediate_values={},
                trial_id=number,
            )
        )
    with warnings.catch_warnings():
        # Small sets draw optuna's "may be inaccurate" warnings; the reasons say enough.
        warnings.simplefilter("ignore")
        evaluator = optuna.importance.PedAnovaImportanceEvaluator()
        scores = evaluator.evaluate(cast("optuna.Study", TrialSet(trials)), params=list(values))
    return {n: float(scores.get(n, 0.0)) for n in values}


class TrialSet:
    """What PED-ANOVA reads of a study: one maximized objective and its complete trials.

    A real in-memory study deep-copies each trial it is given: for 10,000 that is three times
    the evaluation. tests/unit/scheduler/test_analysis.py checks that both give the same."""

    def __init__(self, trials: list[FrozenTrial]) -> None:
        from optuna.study import StudyDirection

        self.directions = [StudyDirection.MAXIMIZE]
        self._trials = trials

    def _is_multi_objective(self) -> bool:
        return False

    def get_trials(self, deepcopy: bool = True, states: object = None) -> list[FrozenTrial]:
        return self._trials
