"""Train, save and judge fraudflow's model: the steps the CLI, the pipeline and notebooks share."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from fraudflow import engines, schema
from fraudflow.features import build_features, registry
from fraudflow.features.definitions import FRAUDFLOW, HANDBOOK, FeatureSet
from fraudflow.lake import Lake, open_lake
from fraudflow.training import metrics, model
from fraudflow.training.engine import FitOptions, TrainingEngine
from fraudflow.training.evaluation import FoldResults, ScoredFold, Selection, select
from fraudflow.training.protocol import (
    HANDBOOK_GRID,
    PUBLISHED_BEST_CP,
    SINGLE_SPLIT_START,
    TEST_START,
    VALIDATION_START,
    split_days,
)

#: fraudflow's model configuration (docs/MODEL.md): exact trees with XGBoost 1.x's base score (as
#: the handbook), the search space its parameters are chosen from on the validation folds, the
#: smaller space the one-minute pipeline searches, and the parameters that search chose.
FRAUDFLOW_BASE: dict[str, Any] = {"tree_method": "exact", "base_score": 0.5}
FRAUDFLOW_SPACE: dict[str, list[Any]] = {"max_depth": [3, 6], "n_estimators": [50, 100], "learning_rate": [0.1, 0.3]}
PIPELINE_SPACE: dict[str, list[Any]] = {"max_depth": [3, 6], "n_estimators": [100], "learning_rate": [0.1]}
FRAUDFLOW_PARAMS: dict[str, Any] = {**FRAUDFLOW_BASE, "max_depth": 3, "n_estimators": 100, "learning_rate": 0.1}

#: the share of transactions alerted in a model's ``alert_budget_1pct`` figures
ALERT_BUDGET = 0.01

#: a progress message: the step about to run
Step = Callable[[str], None]


def model_inputs(feature_set: FeatureSet) -> list[str]:
    """fraudflow's inputs when the lake has them all, else every feature of the lake's set."""
    return FRAUDFLOW.names if set(FRAUDFLOW.names) <= set(feature_set.names) else feature_set.names


def ensure_features(lake: Lake, wanted: FeatureSet = FRAUDFLOW, say: Step | None = None) -> None:
    """Make sure the lake's features include ``wanted``'s; recompute them (a superset) if not."""
    feature_set = registry.registered(lake)
    if feature_set is not None and set(wanted.names) <= set(feature_set.names):
        return
    if say:
        say(f"computing feature set {wanted.name!r} ({len(wanted.names)} features) in {lake.url}")
    build_features(lake, wanted, rebuild=feature_set is not None)


@dataclass(frozen=True)
class TrainedModel:
    """A model saved in the lake, its test folds judged (each by its own model), and their scores."""

    model_id: str
    results: FoldResults
    alert_budget: metrics.AlertBudget  # over every test fold together
    folds: list[ScoredFold]

    def metrics_json(self) -> dict[str, Any]:
        """What the model's ``metrics.json`` holds."""
        budget = self.alert_budget
        return {
            **self.results.summary.to_json(),
            "alert_budget_1pct": {
                "threshold": budget.threshold,
                "precision": budget.precision,
                "recall": budget.recall,
                "alerts": budget.alerts,
            },
            "folds": self.results.folds_json(),
        }


def train(
    data: str | os.PathLike[str] | Lake,
    start: dt.date = SINGLE_SPLIT_START,
    params: dict[str, Any] | None = None,
    test_starts: list[dt.date] | None = None,
    extra: dict[str, Any] | None = None,
    seed: int = 0,
    engine: str = "local",
    spark_master: str | None = None,
) -> TrainedModel:
    """Fit on the split starting ``start``, score the test folds ``test_starts``, save model and metrics.

    Each test fold gets its own model (trained on its own window, as the protocol requires); the
    model saved is the one of ``start``. ``engine="spark"`` builds the sets with Spark SQL and
    fits XGBoost's Spark estimator. ``data``: the lake, or its URL or path.
    """
    lake = open_lake(data)
    feature_set = registry.required(lake)
    options = FitOptions(
        lake, feature_set, model_inputs(feature_set), {**FRAUDFLOW_PARAMS, **(params or {})}, seed, spark_master
    )
    fitter: TrainingEngine = engines.resolve("training", engine)
    fit_split = fitter(options)
    test_starts = test_starts or [start]
    folds: list[ScoredFold] = []
    saved = None
    for fold_start in test_starts:
        fitted, test = fit_split(fold_start)
        folds.append(ScoredFold(fold_start, test, fitted.predict(test)))
        if fold_start == start:
            saved = fitted
    if saved is None:
        saved = fit_split(start)[0]
    first, last = split_days(start, "train")
    model_id = model.new_model_id()
    model.save(
        saved,
        lake,
        model_id,
        {
            **(extra or {}),
            "feature_set": feature_set.name,
            "train_start": first.isoformat(),
            "train_end": last.isoformat(),
            "test_starts": [d.isoformat() for d in test_starts],
        },
    )
    budget = metrics.at_alert_budget(
        np.concatenate([f.test[schema.TX_FRAUD].to_numpy() for f in folds]),
        np.concatenate([f.scores for f in folds]),
        ALERT_BUDGET,
    )
    trained = TrainedModel(
        model_id, FoldResults(options.params, {f.start: f.performance() for f in folds}), budget, folds
    )
    model.save_metrics(lake, model_id, trained.metrics_json())
    return trained


def tune(
    lake: Lake,
    space: dict[str, list[Any]] | None = None,
    validation_start: dt.date = VALIDATION_START,
    test_start: dt.date = TEST_START,
    seed: int = 0,
) -> Selection:
    """fraudflow's configuration: parameters chosen on the validation folds (never the test folds)."""
    return select(
        lake,
        space or FRAUDFLOW_SPACE,
        base=FRAUDFLOW_BASE,
        validation_start=validation_start,
        test_start=test_start,
        seed=seed,
        features=model_inputs(registry.required(lake)),
    )


def handbook_grid(lake: Lake, seed: int = 0) -> Selection:
    """The handbook's selection reproduced: its grid on its 15 features, exact trees, its base score."""
    base = {k: model.HANDBOOK_PARAMS[k] for k in ("tree_method", "base_score")}
    return select(lake, HANDBOOK_GRID, base=base, features=HANDBOOK.names, seed=seed)


@dataclass(frozen=True)
class Evaluation:
    """fraudflow's configuration judged by the handbook's protocol, beside the handbook's grid reproduced."""

    fraudflow: Selection
    handbook: Selection | None  # None: not reproduced

    @property
    def gap_closed(self) -> float:
        """The share of the CP@100 gap between the handbook's best and the perfect ranking that fraudflow closes."""
        test = self.fraudflow.test.summary
        return (test.card_precision.mean - PUBLISHED_BEST_CP) / (test.card_precision_bound.mean - PUBLISHED_BEST_CP)

    def to_json(self) -> dict[str, Any]:
        """fraudflow's test-fold means (sd under ``std``), parameters, gap closed, folds, and the reproduction."""
        summary = self.fraudflow.test.summary
        test = summary.named()
        headline = metrics.metric_names(summary.k)[:3]
        result: dict[str, Any] = {name: e.mean for name, e in test.items()}
        result.update(
            {
                "params": self.fraudflow.params,
                "std": {name: test[name].std for name in headline},
                "cp_gap_closed": self.gap_closed,
                "folds": self.fraudflow.test.folds_json(),
            }
        )
        if self.handbook is not None:
            reproduced = self.handbook.test.summary.named()
            result["handbook_grid_reproduction"] = {
                **{name: reproduced[name].mean for name in headline},
                "params": self.handbook.params,
            }
        return result


def evaluate(data: str | os.PathLike[str] | Lake, *, reproduce: bool = True, step: Step | None = None) -> Evaluation:
    """Judge fraudflow's configuration (and with ``reproduce`` the handbook's grid) on the test folds."""
    lake = open_lake(data)
    say = step or (lambda message: None)
    say("fraudflow: choosing on validation folds, reporting on test folds")
    ours = tune(lake)
    if not reproduce:
        return Evaluation(ours, None)
    say("handbook grid, validation-selected (exact trees)")
    return Evaluation(ours, handbook_grid(lake))
