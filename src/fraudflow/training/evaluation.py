"""Prequential evaluation (spec/EVALUATION.md): settings fitted and judged fold by fold, chosen on validation.

The splits, the fold starts and the handbook's figures are the protocol's (``training.protocol``);
here each fold's model is fitted, its test set scored and judged, and the results summarised as
mean and standard deviation over the folds.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import json
import os
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from fraudflow import schema
from fraudflow.errors import CoverageError
from fraudflow.features import registry
from fraudflow.lake import Lake
from fraudflow.training import metrics
from fraudflow.training.ceiling import observable_card_precision, observable_in_lake
from fraudflow.training.datasets import training_set
from fraudflow.training.metrics import Performance
from fraudflow.training.model import HANDBOOK_PARAMS, Model, data_fingerprint, fit_arrays, inputs
from fraudflow.training.protocol import HANDBOOK_GRID, K, Kind, Plan, fold_starts, split_days

#: what a selection can maximise: a field of ``Performance``
Metric = Literal["auc_roc", "average_precision", "card_precision"]


@dataclass(frozen=True)
class Split:
    """The training and test sets of the split starting ``start``, and with ``ceiling`` which test
    transactions are observable frauds (``training.ceiling``)."""

    start: dt.date
    train: pa.Table
    test: pa.Table
    observable: np.ndarray | None = None


def load_split(lake: Lake, start: dt.date, ceiling: bool = False) -> Split:
    """The split's sets; ``CoverageError`` when a part has no transactions (days missing from the lake).
    ``ceiling``: also the test set's observable frauds (from the lake's transactions before it)."""
    test = _part(lake, start, "test")
    return Split(start, _part(lake, start, "train"), test, observable_in_lake(lake, test) if ceiling else None)


def _part(lake: Lake, start: dt.date, kind: Kind) -> pa.Table:
    table = training_set(lake, start, kind=kind)
    if table.num_rows == 0:
        first, last = split_days(start, kind)
        raise CoverageError(f"the lake has no transactions {first} .. {last}, the {kind} days of the split of {start}")
    return table


@dataclass(frozen=True)
class ScoredFold:
    """A fold's test set and the scores its model gave it."""

    start: dt.date
    test: pa.Table
    scores: np.ndarray
    observable: np.ndarray | None = None  # the observable frauds (``training.ceiling``), if judged

    def performance(self, k: int = K) -> Performance:
        test = self.test
        days, customers = test[schema.PARTITION_COLUMN].to_numpy(), test[schema.CUSTOMER_ID].to_numpy()
        judged = metrics.performance(days, customers, test[schema.TX_FRAUD].to_numpy(), self.scores, k)
        if self.observable is None:
            return judged
        return dataclasses.replace(
            judged, card_precision_observable=observable_card_precision(days, customers, self.observable, k)
        )


def score_split(model: Model, split: Split, k: int = K) -> Performance:
    """``model`` judged on the split's test set."""
    return ScoredFold(split.start, split.test, model.predict(split.test), split.observable).performance(k)


def grid(space: Mapping[str, list[Any]]) -> list[dict[str, Any]]:
    keys = sorted(space)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*(space[k] for k in keys))]


@dataclass(frozen=True)
class Estimate:
    """A metric over the folds: its mean and (population) standard deviation."""

    mean: float
    std: float

    @classmethod
    def of(cls, values: list[float]) -> Estimate:
        return cls(float(np.mean(values)), float(np.std(values)))


@dataclass(frozen=True)
class Summary:
    """Each metric over the folds as mean and standard deviation: a row of a results table."""

    auc_roc: Estimate
    average_precision: Estimate
    card_precision: Estimate
    card_precision_bound: Estimate
    k: int = K
    #: CP@k of the oracle knowing only what was observable, when every fold judged it
    card_precision_observable: Estimate | None = None

    @classmethod
    def of(cls, folds: Iterable[Performance]) -> Summary:
        folds = list(folds)
        observable = [f.card_precision_observable for f in folds]
        return cls(
            Estimate.of([f.auc_roc for f in folds]),
            Estimate.of([f.average_precision for f in folds]),
            Estimate.of([f.card_precision for f in folds]),
            Estimate.of([f.card_precision_bound for f in folds]),
            folds[0].k,
            None if np.isnan(observable).any() else Estimate.of(observable),
        )

    @property
    def observable_share(self) -> float | None:
        """The model's CP@k as a share of the observable oracle's (mean over mean), if judged."""
        ceiling = self.card_precision_observable
        return None if ceiling is None or ceiling.mean == 0 else self.card_precision.mean / ceiling.mean

    def headline(self) -> tuple[Estimate, Estimate, Estimate]:
        """AUC ROC, average precision and CP@k: the handbook's three, in its tables' order (``PUBLISHED``)."""
        return self.auc_roc, self.average_precision, self.card_precision

    def named(self) -> dict[str, Estimate]:
        """The four estimates under their names in metrics files (``metrics.metric_names``)."""
        values = (self.auc_roc, self.average_precision, self.card_precision, self.card_precision_bound)
        return dict(zip(metrics.metric_names(self.k), values, strict=True))

    def to_json(self) -> dict[str, float]:
        """Means under the metrics' names, standard deviations under ``<name>_std``."""
        named = self.named()
        return {**{n: e.mean for n, e in named.items()}, **{f"{n}_std": e.std for n, e in named.items()}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any], k: int = K) -> Summary:
        """Read back what ``to_json`` wrote (a model's ``metrics.json``)."""
        auc, ap, cp, bound = (Estimate(data[n], data[f"{n}_std"]) for n in metrics.metric_names(k))
        return cls(auc, ap, cp, bound, k)


@dataclass(frozen=True)
class FoldResults:
    """One parameter setting judged fold by fold: each fold's performance by the day its split starts."""

    params: dict[str, Any]
    folds: dict[dt.date, Performance]

    @property
    def summary(self) -> Summary:
        return Summary.of(self.folds.values())

    def folds_json(self) -> list[dict[str, Any]]:
        return [{"start": start.isoformat(), **p.to_json()} for start, p in self.folds.items()]


def prequential(
    splits: list[Split],
    settings: list[dict[str, Any]],
    features: list[str],
    version: str,
    seed: int = 0,
    workers: int | None = None,
) -> list[FoldResults]:
    """Fit and score every setting on every fold, in parallel (one XGBoost thread per fit).

    Settings that differ only in ``n_estimators`` share one fit, of the most trees, each scored by
    its first ``n_estimators`` trees (boosting adds trees one after the other, so those are the fit
    of that many). Each fold's input matrices are read once, for all its fits.
    """
    shared: dict[str, list[dict[str, Any]]] = {}
    for params in settings:
        shared.setdefault(_but_trees(params), []).append(params)
    matrices = {split.start: (inputs(split.train, features), inputs(split.test, features)) for split in splits}
    fingerprints = {split.start: data_fingerprint(split.train) for split in splits}

    def run(job: tuple[list[dict[str, Any]], Split]) -> list[Performance]:
        group, split = job
        trees = [_trees(p) for p in group]
        x, x_test = matrices[split.start]
        y = split.train[schema.TX_FRAUD].to_numpy()
        params = {**group[0], "n_estimators": max(trees)}
        model = fit_arrays(x, y, features, version, params, seed, 1, fingerprints[split.start])
        x_test = model.standardize(x_test)
        return [
            ScoredFold(split.start, split.test, model.predict_matrix(x_test, n), split.observable).performance()
            for n in trees
        ]

    jobs = [(group, split) for group in shared.values() for split in splits]
    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        scored = dict(zip(((_but_trees(g[0]), s.start) for g, s in jobs), pool.map(run, jobs), strict=True))
    results = []
    for params in settings:
        key = _but_trees(params)
        at = shared[key].index(params)
        results.append(FoldResults(params, {split.start: scored[key, split.start][at] for split in splits}))
    return results


def _trees(params: dict[str, Any]) -> int:
    return int({**HANDBOOK_PARAMS, **params}["n_estimators"])


def _but_trees(params: dict[str, Any]) -> str:
    """The settings' key for sharing a fit: every parameter but the number of trees."""
    return json.dumps({k: v for k, v in {**HANDBOOK_PARAMS, **params}.items() if k != "n_estimators"}, sort_keys=True)


@dataclass(frozen=True)
class Selection:
    """Parameters chosen on the validation folds by ``metric``, and how they do on the test folds."""

    metric: Metric
    validation: FoldResults  # the chosen setting on the validation folds
    test: FoldResults  # the chosen setting on the test folds
    grid: list[FoldResults]  # every setting on the validation folds

    @property
    def params(self) -> dict[str, Any]:
        return self.test.params


def select(
    lake: Lake,
    plan: Plan,
    space: Mapping[str, list[Any]] | None = None,
    *,
    base: dict[str, Any] | None = None,
    metric: Metric = "average_precision",
    seed: int = 0,
    features: list[str] | None = None,
) -> Selection:
    """Choose parameters on ``plan``'s validation folds by ``metric``; report them on its judged splits.

    ``features`` are the model inputs (default: every feature of the lake's set).
    """
    feature_set = registry.required(lake)
    settings = [{**(base or {}), **p} for p in grid(space or HANDBOOK_GRID)]
    folds = [(d, False) for d in fold_starts(plan.validation)] + [(d, True) for d in plan.judged]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:  # DuckDB's queries run in parallel
        loaded = list(pool.map(lambda fold: load_split(lake, *fold), folds))
    validation, tested = loaded[: -len(plan.judged)], loaded[-len(plan.judged) :]
    names = features or feature_set.names
    scored = prequential(validation, settings, names, feature_set.version, seed)
    best = max(scored, key=lambda r: getattr(r.summary, metric).mean)
    (test,) = prequential(tested, [best.params], names, feature_set.version, seed)
    return Selection(metric, best, test, scored)
