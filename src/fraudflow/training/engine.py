"""Fitting one split: the training engine interface and the local engine.

A training engine turns ``FitOptions`` into ``fit_split(start) -> (model, test set)``: it fits the
model on the training part of the split starting ``start`` and returns it with the split's test
set. Engines are registered in ``fraudflow.engines`` ("training"): ``local`` is here (DuckDB
sets, XGBoost in this process), ``spark`` in ``fraudflow.distributed.train``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import pyarrow as pa

from fraudflow.features.definitions import FeatureSet
from fraudflow.lake import Lake
from fraudflow.training import model
from fraudflow.training.evaluation import load_split


@dataclass(frozen=True)
class FitOptions:
    """What to fit: XGBoost with ``params`` on the model ``inputs`` among the lake's ``feature_set``."""

    lake: Lake
    feature_set: FeatureSet  # the lake's registered set
    inputs: list[str]
    params: dict[str, Any]
    seed: int = 0
    spark_master: str | None = None  # where the spark engine runs (None: its default); local ignores it


#: ``fit_split(start) -> (model, test set)`` of the split starting ``start``
SplitFitter = Callable[[dt.date], tuple[model.Model, pa.Table]]


class TrainingEngine(Protocol):
    """A training engine: ``engine(options) -> fit_split``."""

    def __call__(self, options: FitOptions) -> SplitFitter: ...


def local_fitter(options: FitOptions) -> SplitFitter:
    """The local engine: the split's sets by DuckDB, XGBoost in this process."""

    def fit_split(start: dt.date) -> tuple[model.Model, pa.Table]:
        split = load_split(options.lake, start)
        fitted = model.fit(split.train, options.inputs, options.feature_set.version, options.params, seed=options.seed)
        return fitted, split.test

    return fit_split
