"""The main job: generate -> features -> tune -> train -> evaluate -> report, on embedded defaults."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fraudflow.features import FRAUDFLOW, build_features
from fraudflow.lake import Lake
from fraudflow.simulate import WorldParams, generate
from fraudflow.training import workflow

Step = Callable[[str], None]


@dataclass
class PipelineResult:
    model_id: str
    metrics: dict[str, Any]
    params: dict[str, Any]
    report: str
    seconds: dict[str, float] = field(default_factory=dict)


def run_pipeline(
    out: str | os.PathLike[str], params: WorldParams | None = None, *, tune: bool = True, step: Step | None = None
) -> PipelineResult:
    """Run every stage on ``out`` and return the chosen model's test-fold metrics."""
    lake = Lake(out)
    say = step or (lambda message: None)
    seconds: dict[str, float] = {}

    def timed(name: str, fn: Callable[[], Any]) -> Any:
        say(name)
        t0 = time.perf_counter()
        value = fn()
        seconds[name] = time.perf_counter() - t0
        return value

    timed("generate", lambda: generate(lake, params or WorldParams()))
    timed("features", lambda: build_features(lake, FRAUDFLOW))
    chosen = workflow.FRAUDFLOW_PARAMS
    if tune:
        selection = timed("tune", lambda: workflow.tune(lake, workflow.PIPELINE_SPACE))
        chosen = {**workflow.FRAUDFLOW_BASE, **selection["params"]}
    starts = workflow.test_fold_starts()
    selected_on = "validation folds" if tune else "fixed"
    model_id, metrics, folds = timed(
        "train + evaluate",
        lambda: workflow.train(lake, starts[0], chosen, test_starts=starts, extra={"selected_on": selected_on}),
    )
    path = timed("report", lambda: workflow.write_report(lake, model_id, folds))
    return PipelineResult(model_id, metrics, chosen, path, seconds)
