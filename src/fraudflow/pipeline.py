"""The main job: generate -> features -> tune -> train -> evaluate -> report, on any world.

The days come from the protocol (``training.protocol``): by default the newest four test folds
whose labels are mature on the world's last day; the world is checked to hold them before a day
is generated.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from fraudflow.features import build_features
from fraudflow.lake import Lake, open_lake
from fraudflow.simulate import WorldParams, generate
from fraudflow.training import report, workflow
from fraudflow.training.evaluation import FoldResults
from fraudflow.training.protocol import Plan, Protocol
from fraudflow.training.workflow import Step

T = TypeVar("T")


@dataclass(frozen=True)
class PipelineResult:
    """The model the pipeline saved, its test folds judged, its report, and each step's seconds."""

    model_id: str
    results: FoldResults  # the test folds, with the parameters used
    report: str
    seconds: dict[str, float] = field(default_factory=dict)


def run_pipeline(
    out: str | os.PathLike[str] | Lake,
    params: WorldParams | None = None,
    *,
    tune: bool = True,
    protocol: Protocol = "lake",
    step: Step | None = None,
) -> PipelineResult:
    """Run every stage on ``out`` (the handbook's world unless ``params``); return the chosen model's results.

    ``CoverageError`` before anything is written when the world does not hold the days ``protocol``
    judges on (too few days, or not the handbook's).
    """
    params = params or WorldParams()
    last = params.start_date + dt.timedelta(days=params.nb_days - 1)
    plan = Plan.of(protocol, "folds", last, tune=tune)
    plan.check(params.start_date, last)
    lake = open_lake(out)
    say = step or (lambda message: None)
    seconds: dict[str, float] = {}

    def timed(name: str, fn: Callable[[], T]) -> T:
        say(name)
        t0 = time.perf_counter()
        value = fn()
        seconds[name] = time.perf_counter() - t0
        return value

    timed("generate", lambda: generate(lake, params))
    timed("features", lambda: build_features(lake, workflow.FRAUDFLOW_FEATURES))
    chosen = workflow.FRAUDFLOW_PARAMS
    if tune:
        chosen = timed("tune", lambda: workflow.tune(lake, plan, workflow.PIPELINE_SPACE)).params
    starts = list(plan.judged)
    extra = {"selected_on": "validation folds" if tune else "fixed"}
    trained = timed(
        "train + evaluate", lambda: workflow.train(lake, starts[0], chosen, test_starts=starts, extra=extra)
    )
    path = timed("report", lambda: report.write(lake, trained.model_id, trained.folds))
    return PipelineResult(trained.model_id, trained.results, path, seconds)
