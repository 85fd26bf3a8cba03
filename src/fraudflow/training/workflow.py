"""Train, save and judge fraudflow's model: the steps the CLI, the pipeline and notebooks share."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from fraudflow import engines, schema
from fraudflow.errors import FeatureError
from fraudflow.features import build_features, registry
from fraudflow.features.definitions import FRAUDFLOW, FRAUDFLOW4, HANDBOOK, FeatureSet
from fraudflow.lake import Lake, open_lake
from fraudflow.store import offline
from fraudflow.training import budget, metrics, model
from fraudflow.training.calendar import lake_days, lake_plan
from fraudflow.training.engine import FitOptions, TrainingEngine
from fraudflow.training.evaluation import FoldResults, ScoredFold, Selection, select
from fraudflow.training.protocol import (
    HANDBOOK_GRID,
    PUBLISHED_BEST_CP,
    K,
    Plan,
    Protocol,
    fold_starts,
    split_days,
)

#: fraudflow's model (docs/MODEL.md section 4): feature set fraudflow-4's 36 inputs (FRAUDFLOW's 16,
#: the customer's amount spikes and baseline, the terminal's known frauds, those the amount rules leave
#: unexplained and its fraud share since the first), histogram trees with 8,192 bins (exact within
#: noise here, several times faster) and XGBoost 1.x's base score (as the handbook); the search space
#: its parameters are chosen from on the validation folds (the pipeline's too: one fit per fold, scored
#: at 50 and 100 trees), and the parameters that search chose.
FRAUDFLOW_FEATURES = FRAUDFLOW4
FRAUDFLOW_BASE: dict[str, Any] = {"tree_method": "hist", "max_bin": 8192, "base_score": 0.5}
FRAUDFLOW_SPACE: dict[str, list[Any]] = {"max_depth": [3], "n_estimators": [50, 100], "learning_rate": [0.1]}
PIPELINE_SPACE = FRAUDFLOW_SPACE
FRAUDFLOW_PARAMS: dict[str, Any] = {**FRAUDFLOW_BASE, "max_depth": 3, "n_estimators": 100, "learning_rate": 0.1}
#: The model before issue 16 (docs/MODEL.md section 3), which ``evaluate`` judges beside fraudflow's:
#: FRAUDFLOW's 16 inputs (every later set holds them), exact trees and XGBoost 1.x's base score, the
#: grid its parameters were chosen from on the validation folds, and the parameters that search chose.
#: Lakes computed with FRAUDFLOW keep training on those inputs (``model_inputs``).
PREVIOUS_FEATURES = FRAUDFLOW
PREVIOUS_BASE: dict[str, Any] = {"tree_method": "exact", "base_score": 0.5}
PREVIOUS_SPACE: dict[str, list[Any]] = {"max_depth": [3, 6], "n_estimators": [50, 100], "learning_rate": [0.1, 0.3]}
PREVIOUS_PARAMS: dict[str, Any] = {**PREVIOUS_BASE, "max_depth": 3, "n_estimators": 100, "learning_rate": 0.1}

#: the share of transactions alerted in a model's ``alert_budget_1pct`` figures
ALERT_BUDGET = 0.01

#: a progress message: the step about to run
Step = Callable[[str], None]


def model_inputs(feature_set: FeatureSet) -> list[str]:
    """fraudflow's inputs when the lake has them all, else the previous model's (a lake computed with
    FRAUDFLOW before fraudflow-4 became the default), else every feature of the lake's set."""
    for wanted in (FRAUDFLOW_FEATURES, PREVIOUS_FEATURES):
        if set(wanted.names) <= set(feature_set.names):
            return wanted.names
    return feature_set.names


def ensure_features(lake: Lake, wanted: FeatureSet = FRAUDFLOW_FEATURES, say: Step | None = None) -> None:
    """Make sure the lake's features include ``wanted``'s on every day of its transactions: recompute
    them (a superset) when the lake's set lacks some, compute the days that have none yet."""
    say = say or (lambda message: None)
    feature_set = registry.registered(lake)
    if feature_set is None or not set(wanted.names) <= set(feature_set.names):
        say(f"computing feature set {wanted.name!r} ({len(wanted.names)} features) in {lake.url}")
        build_features(lake, wanted, rebuild=feature_set is not None)
        return
    missing = sorted(set(lake.partitions("transactions")) - set(lake.partitions(offline.TABLE)))
    if missing:
        say(f"computing the features of the {len(missing)} day(s) without them, from {missing[0]}")
        build_features(lake, feature_set, from_date=missing[0])


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
    start: dt.date | None = None,
    params: dict[str, Any] | None = None,
    test_starts: list[dt.date] | None = None,
    extra: dict[str, Any] | None = None,
    seed: int = 0,
    engine: str = "local",
    spark_master: str | None = None,
    protocol: Protocol = "lake",
    cards_per_day: float = budget.CARDS_PER_DAY,
) -> TrainedModel:
    """Fit on the split starting ``start``, score the test folds ``test_starts``, save model and metrics.

    ``start`` None: the split ``protocol`` judges alone (``lake``: the newest whose labels are
    mature). Each test fold gets its own model (trained on its own window, as the protocol
    requires); the model saved is the one of ``start``, its ``metrics.json`` written last (a
    model without one never finished: ``model.list_models``). ``engine="spark"`` builds the sets
    with Spark SQL and fits XGBoost's Spark estimator. ``data``: the lake, or its URL or path.
    The alert threshold is chosen for ``cards_per_day`` on the saved model's own test week
    (``training.budget``) and stored in its ``metadata.json``.
    """
    lake = open_lake(data)
    feature_set = registry.required(lake)
    if start is None:
        start = lake_plan(lake, protocol, "split", tune=False).judged[0]
    test_starts = test_starts or [start]
    Plan(tuple(sorted({start, *test_starts}, reverse=True)), tuned=False).check(*lake_days(lake))
    options = FitOptions(
        lake, feature_set, model_inputs(feature_set), {**FRAUDFLOW_PARAMS, **(params or {})}, seed, spark_master
    )
    fitter: TrainingEngine = engines.resolve("training", engine)
    fit_split = fitter(options)
    folds: list[ScoredFold] = []
    saved = own = None
    for fold_start in test_starts:
        fitted, test = fit_split(fold_start)
        folds.append(ScoredFold(fold_start, test, fitted.predict(test)))
        if fold_start == start:
            saved, own = fitted, folds[-1]
    if saved is None or own is None:
        saved, test = fit_split(start)
        own = ScoredFold(start, test, saved.predict(test))
    alerts = _budget_threshold(lake, saved, own, cards_per_day)
    share = metrics.at_alert_budget(
        np.concatenate([f.test[schema.TX_FRAUD].to_numpy() for f in folds]),
        np.concatenate([f.scores for f in folds]),
        ALERT_BUDGET,
    )
    results = FoldResults(options.params, {f.start: f.performance() for f in folds})
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
            budget.METADATA_KEY: alerts.to_json(),
        },
    )
    trained = TrainedModel(model_id, results, share, folds)
    model.save_metrics(lake, model_id, trained.metrics_json())  # last: the mark of a finished model
    return trained


def _budget_threshold(lake: Lake, saved: model.Model, own: ScoredFold, cards_per_day: float) -> budget.CardBudget:
    """The threshold for ``cards_per_day`` on every transaction of the saved model's test week: the
    service scores them all, cards with a known fraud included (which the protocol's test set leaves
    out: a threshold chosen on it alerted about twice the budget live)."""
    days = own.test[schema.PARTITION_COLUMN].to_numpy()
    week = offline.read_rows(lake, days.min(), days.max()) if len(days) else None
    if week is None or week.num_rows == 0:
        return budget.choose(own.test, own.scores, cards_per_day)
    import pyarrow.compute as pc

    # the cards and days of the week's transactions (the feature rows hold neither)
    cards = lake.read_partitions("transactions", sorted(set(days.tolist())))
    cards = cards.select([schema.TRANSACTION_ID, schema.CUSTOMER_ID])
    week = week.join(cards, schema.TRANSACTION_ID)
    week = week.append_column(schema.PARTITION_COLUMN, pc.cast(week[schema.TX_DATETIME], pa.date32()))
    return budget.choose(week, saved.predict(week), cards_per_day)


def tune(lake: Lake, plan: Plan, space: dict[str, list[Any]] | None = None, seed: int = 0) -> Selection:
    """fraudflow's configuration: parameters chosen on ``plan``'s validation folds (never on the splits it judges)."""
    return select(
        lake,
        plan,
        space or FRAUDFLOW_SPACE,
        base=FRAUDFLOW_BASE,
        seed=seed,
        features=model_inputs(registry.required(lake)),
    )


def previous(lake: Lake, plan: Plan, seed: int = 0) -> Selection:
    """The model before issue 16 selected as it was: ``PREVIOUS_SPACE`` on ``PREVIOUS_FEATURES``' inputs,
    chosen on ``plan``'s validation folds; the lake's feature set must hold those inputs."""
    _hold_previous_inputs(registry.required(lake))
    return select(lake, plan, PREVIOUS_SPACE, base=PREVIOUS_BASE, seed=seed, features=PREVIOUS_FEATURES.names)


def _hold_previous_inputs(feature_set: FeatureSet) -> None:
    missing = [name for name in PREVIOUS_FEATURES.names if name not in feature_set.names]
    if missing:
        raise FeatureError(
            f"the previous model's inputs ({PREVIOUS_FEATURES.name}'s) are not all in the lake's feature set "
            f"{feature_set.name!r} (missing {', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}): "
            f"compute features of a set that holds them, or leave the previous model out"
        )


def handbook_grid(lake: Lake, plan: Plan, seed: int = 0) -> Selection:
    """The handbook's selection reproduced: its grid on its 15 features, exact trees, its base score."""
    base = {k: model.HANDBOOK_PARAMS[k] for k in ("tree_method", "base_score")}
    return select(lake, plan, HANDBOOK_GRID, base=base, features=HANDBOOK.names, seed=seed)


def fold_wins(new: FoldResults, old: FoldResults) -> dict[str, int]:
    """On how many folds ``new`` beats ``old`` (strictly) on each of the handbook's three metrics, under
    their names in metrics files; the folds are matched by start day and must be the same."""
    if new.folds.keys() != old.folds.keys():
        raise ValueError(f"not judged on the same folds: {sorted(new.folds)} and {sorted(old.folds)}")
    wins = [0, 0, 0]
    for start, ours in new.folds.items():
        theirs = old.folds[start]
        for i, (a, b) in enumerate(zip(_headline(ours), _headline(theirs), strict=True)):
            wins[i] += a > b
    k = next(iter(new.folds.values())).k if new.folds else K
    return dict(zip(metrics.metric_names(k)[:3], wins, strict=True))


def _headline(performance: metrics.Performance) -> tuple[float, float, float]:
    return performance.auc_roc, performance.average_precision, performance.card_precision


@dataclass(frozen=True)
class Evaluation:
    """fraudflow's configuration judged on a plan's test folds, beside the model it replaced (issue 16)
    and the handbook's grid reproduced, each selected on the same validation folds."""

    plan: Plan
    fraudflow: Selection
    handbook: Selection | None  # None: not reproduced
    previous: Selection | None = None  # None: not judged
    #: how long each selection took (validation grid and test folds), by configuration
    seconds: dict[str, float] = dataclasses.field(default_factory=dict)

    @property
    def gap_closed(self) -> float | None:
        """The share of the CP@100 gap between the handbook's best and the perfect ranking that fraudflow
        closes; None unless judged on the handbook's days (the only ones its figures are comparable on)."""
        if self.plan.protocol != "handbook":
            return None
        test = self.fraudflow.test.summary
        return (test.card_precision.mean - PUBLISHED_BEST_CP) / (test.card_precision_bound.mean - PUBLISHED_BEST_CP)

    @property
    def wins_over_previous(self) -> dict[str, int] | None:
        """On how many test folds fraudflow beats the previous model, by metric; None if not judged."""
        return None if self.previous is None else fold_wins(self.fraudflow.test, self.previous.test)

    def to_json(self) -> dict[str, Any]:
        """fraudflow's test-fold means (sd under ``std``), parameters, days, gap closed, folds; the
        previous model's and the reproduction's figures; the folds fraudflow wins; selection times."""
        summary = self.fraudflow.test.summary
        test = summary.named()
        headline = metrics.metric_names(summary.k)[:3]
        result: dict[str, Any] = {name: e.mean for name, e in test.items()}
        result.update(
            {
                "params": self.fraudflow.params,
                "std": {name: test[name].std for name in headline},
                "protocol": self.plan.protocol,
                "validation_starts": [d.isoformat() for d in fold_starts(self.plan.validation)],
                "cp_gap_closed": self.gap_closed,
                "folds": self.fraudflow.test.folds_json(),
            }
        )
        if summary.card_precision_observable is not None:
            result[f"{headline[2]}_observable"] = summary.card_precision_observable.mean
            result["std"][f"{headline[2]}_observable"] = summary.card_precision_observable.std
            result["observable_share"] = summary.observable_share
        if self.previous is not None:
            judged = self.previous.test.summary
            result["previous_model"] = {
                **{name: e.mean for name, e in judged.named().items()},
                "std": {name: judged.named()[name].std for name in headline},
                "validation_average_precision": self.previous.validation.summary.average_precision.mean,
                "params": self.previous.params,
                "observable_share": judged.observable_share,
                "folds": self.previous.test.folds_json(),
            }
            result["folds_beating_previous"] = {**(self.wins_over_previous or {}), "folds": len(self.plan.judged)}
        if self.handbook is not None:
            reproduced = self.handbook.test.summary.named()
            result["handbook_grid_reproduction"] = {
                **{name: reproduced[name].mean for name in headline},
                "params": self.handbook.params,
            }
        result["selection_seconds"] = self.seconds
        return result


def evaluate(
    data: str | os.PathLike[str] | Lake,
    *,
    protocol: Protocol = "lake",
    reproduce: bool = True,
    with_previous: bool = True,
    step: Step | None = None,
) -> Evaluation:
    """Judge fraudflow's configuration on ``protocol``'s test folds (``lake``: the newest whose labels
    are mature; ``handbook``: its published days), with ``with_previous`` the model it replaced
    (``previous``: FRAUDFLOW's inputs, which the lake's set must hold) and with ``reproduce`` the
    handbook's grid, each chosen on the same validation folds."""
    lake = open_lake(data)
    say = step or (lambda message: None)
    if with_previous:  # before any selection
        _hold_previous_inputs(registry.required(lake))
    chosen = lake_plan(lake, protocol, "folds", tune=True)
    seconds: dict[str, float] = {}

    def timed(name: str, run: Callable[[Lake, Plan], Selection]) -> Selection:
        t0 = time.perf_counter()
        selection = run(lake, chosen)
        seconds[name] = time.perf_counter() - t0
        return selection

    say(f"fraudflow: choosing on validation folds from {chosen.validation}, judging test folds from {chosen.judged[0]}")
    ours = timed("fraudflow", tune)
    before = None
    if with_previous:
        say(f"previous model ({PREVIOUS_FEATURES.name}'s {len(PREVIOUS_FEATURES.names)} inputs, exact trees)")
        before = timed("previous model", previous)
    reproduced = None
    if reproduce:
        say("handbook grid, validation-selected (exact trees)")
        reproduced = timed("handbook grid", handbook_grid)
    return Evaluation(chosen, ours, reproduced, before, seconds)
