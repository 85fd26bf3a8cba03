"""Train, save, evaluate and report a model: the steps the CLI and the pipeline share."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import pyarrow as pa

from fraudflow import engines
from fraudflow import schema as s
from fraudflow.features import build_features, registry
from fraudflow.features.definitions import FRAUDFLOW, FeatureSet
from fraudflow.lake import Lake
from fraudflow.training import metrics, model, report
from fraudflow.training.datasets import split_days
from fraudflow.training.evaluation import (
    HEADLINE,
    SINGLE_SPLIT_START,
    TEST_START,
    VALIDATION_START,
    fold_starts,
    load_split,
    select,
)

#: fraudflow's model configuration (docs/MODEL.md): exact trees with XGBoost 1.x's base score (as
#: the handbook), the search space its parameters are chosen from on the validation folds, the
#: smaller space the one-minute pipeline searches, and the parameters that search chose.
FRAUDFLOW_BASE: dict[str, Any] = {"tree_method": "exact", "base_score": 0.5}
FRAUDFLOW_SPACE: dict[str, list[Any]] = {"max_depth": [3, 6], "n_estimators": [50, 100], "learning_rate": [0.1, 0.3]}
PIPELINE_SPACE: dict[str, list[Any]] = {"max_depth": [3, 6], "n_estimators": [100], "learning_rate": [0.1]}
FRAUDFLOW_PARAMS: dict[str, Any] = {**FRAUDFLOW_BASE, "max_depth": 3, "n_estimators": 100, "learning_rate": 0.1}

TRAINING_ENGINES = engines.names("training")

#: (test start, test table, scores) of one fold
Fold = tuple[dt.date, pa.Table, np.ndarray]


def model_inputs(fs: FeatureSet) -> list[str]:
    """fraudflow's inputs when the lake has them all, else every feature of the lake's set."""
    return FRAUDFLOW.names if set(FRAUDFLOW.names) <= set(fs.names) else fs.names


def ensure_features(lake: Lake, wanted: FeatureSet = FRAUDFLOW, say: Callable[[str], None] | None = None) -> None:
    """Make sure the lake's features include ``wanted``'s; recompute them (a superset) if not."""
    fs = registry.registered(lake)
    if fs is not None and set(wanted.names) <= set(fs.names):
        return
    if say:
        say(f"computing feature set {wanted.name!r} ({len(wanted.names)} features) in {lake.url}")
    build_features(lake, wanted, rebuild=fs is not None)


def train(
    lake: Lake,
    start: dt.date = SINGLE_SPLIT_START,
    params: dict[str, Any] | None = None,
    test_starts: list[dt.date] | None = None,
    extra: dict[str, Any] | None = None,
    seed: int = 0,
    engine: str = "local",
    spark_master: str | None = None,
) -> tuple[str, dict[str, Any], list[Fold]]:
    """Fit on the split starting ``start``, score the test folds ``test_starts``, save model and metrics.

    Each test fold gets its own model (trained on its own window, as the protocol requires); the
    model saved is the one of ``start``. Returns the model id, its metrics and the folds' scores.
    ``engine="spark"`` builds the sets with Spark SQL and fits XGBoost's Spark estimator.
    """
    fs = registry.required(lake)
    names = model_inputs(fs)
    params = {**FRAUDFLOW_PARAMS, **(params or {})}
    fit_split = _split_fitter(lake, fs, names, params, seed, engine, spark_master)
    test_starts = test_starts or [start]
    folds: list[Fold] = []
    saved = None
    for fold_start in test_starts:
        fitted, test = fit_split(fold_start)
        folds.append((fold_start, test, fitted.predict(test)))
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
            "feature_set": fs.name,
            "train_start": first.isoformat(),
            "train_end": last.isoformat(),
            "test_starts": [d.isoformat() for d in test_starts],
        },
    )
    result = fold_metrics(folds)
    model.save_metrics(lake, model_id, result)
    return model_id, result, folds


#: ``fit_split(start) -> (model, test set)``
SplitFitter = Callable[[dt.date], tuple[model.Model, pa.Table]]


class TrainingEngine(Protocol):
    """What a training engine implements (registered in ``fraudflow.engines``, "training").

    Returns ``fit_split(start) -> (model, test set)`` for the lake's feature set ``fs``, the
    model's inputs ``names``, XGBoost ``params`` and ``seed``.
    """

    def __call__(
        self,
        lake: Lake,
        fs: FeatureSet,
        names: list[str],
        params: dict[str, Any],
        seed: int,
        spark_master: str | None,
    ) -> SplitFitter: ...


def _split_fitter(
    lake: Lake,
    fs: FeatureSet,
    names: list[str],
    params: dict[str, Any],
    seed: int,
    engine: str,
    spark_master: str | None,
) -> SplitFitter:
    """``fit_split(start) -> (model, test set)`` for the engine."""
    fitter: TrainingEngine = engines.resolve("training", engine)
    return fitter(lake, fs, names, params, seed, spark_master)


def local_fitter(
    lake: Lake,
    fs: FeatureSet,
    names: list[str],
    params: dict[str, Any],
    seed: int,
    spark_master: str | None,
) -> SplitFitter:
    """The local engine: the split's sets by DuckDB, XGBoost here (``spark_master`` is ignored)."""

    def fit_local(start: dt.date) -> tuple[model.Model, pa.Table]:
        split = load_split(lake, start)
        return model.fit(split.train, names, fs.version, params, seed=seed), split.test

    return fit_local


def fold_metrics(folds: list[Fold]) -> dict[str, Any]:
    per_fold = []
    for start, test, scores in folds:
        m = metrics.performance(
            test[s.PARTITION_COLUMN].to_numpy(), test[s.CUSTOMER_ID].to_numpy(), test[s.TX_FRAUD].to_numpy(), scores
        )
        per_fold.append({"start": start.isoformat(), **m})
    names = (*HEADLINE, "card_precision_at_100_bound")
    out: dict[str, Any] = {n: float(np.mean([f[n] for f in per_fold])) for n in names}
    out.update({f"{n}_std": float(np.std([f[n] for f in per_fold])) for n in names})
    budget = metrics.at_alert_budget(
        np.concatenate([f[1][s.TX_FRAUD].to_numpy() for f in folds]), np.concatenate([f[2] for f in folds]), 0.01
    )
    out["alert_budget_1pct"] = {
        "threshold": budget.threshold,
        "precision": budget.precision,
        "recall": budget.recall,
        "alerts": budget.alerts,
    }
    out["folds"] = per_fold
    return out


def tune(
    lake: Lake,
    space: dict[str, list[Any]] | None = None,
    validation_start: dt.date = VALIDATION_START,
    test_start: dt.date = TEST_START,
    seed: int = 0,
) -> dict[str, Any]:
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


def write_report(
    lake: Lake, model_id: str, folds: list[Fold] | None = None, title: str = "fraudflow model report"
) -> str:
    """Render ``models/<id>/report.html`` from the model, its metrics and the lake.

    ``folds`` are the test folds' scores when the caller has them; otherwise each fold's model is
    fitted again from the saved parameters (fits are deterministic).
    """
    meta = lake.read_json(lake.path("models", model_id, model.METADATA_FILE))
    saved_metrics = lake.read_json(lake.path("models", model_id, model.METRICS_FILE))
    fs = registry.required(lake)
    saved = model.load(lake, model_id, expect_version=fs.version)
    if folds is None:
        folds = []
        for fold_start in sorted(dt.date.fromisoformat(d) for d in meta["test_starts"]):
            split = load_split(lake, fold_start)
            fitted = (
                saved
                if fold_start.isoformat() == meta["train_start"]
                else model.fit(split.train, saved.features, fs.version, meta["params"], seed=meta.get("seed", 0))
            )
            folds.append((fold_start, split.test, fitted.predict(split.test)))
    labels: list[np.ndarray] = []
    scores: list[np.ndarray] = []
    scen: list[np.ndarray] = []
    days: list[str] = []
    cp: list[float] = []
    bound: list[float] = []
    for _, test, p in sorted(folds, key=lambda f: f[0]):
        labels.append(test[s.TX_FRAUD].to_numpy())
        scores.append(p)
        scen.append(test[s.TX_FRAUD_SCENARIO].to_numpy())
        d = test[s.PARTITION_COLUMN].to_numpy()
        perf = metrics.performance(d, test[s.CUSTOMER_ID].to_numpy(), labels[-1], p)
        days += [str(x) for x in np.unique(d)]
        cp += perf["card_precision_at_100_per_day"]
        bound += perf["card_precision_at_100_bound_per_day"]
    ours = {
        f"fraudflow XGBoost ({len(meta['test_starts'])} test folds)": {
            k: saved_metrics[k] for k in saved_metrics if k.split("_std")[0] in HEADLINE
        }
    }
    data = report.ReportData(
        title=title,
        model_id=model_id,
        metadata=meta,
        ours=ours,
        test_labels=np.concatenate(labels),
        test_scores=np.concatenate(scores),
        test_scenarios=np.concatenate(scen),
        cp_days=days,
        cp_per_day=cp,
        cp_bound_per_day=bound,
        importance={k: float(v) for k, v in saved.booster.get_score(importance_type="total_gain").items()},  # type: ignore[arg-type]
        daily=daily_summary(lake),
    )
    path = lake.path("models", model_id, "report.html")
    with lake.fs.open(path, "w") as f:
        f.write(report.render(data))
    return path


def daily_summary(lake: Lake) -> dict[str, np.ndarray]:
    from fraudflow.training.datasets import connect

    rows = (
        connect(lake)
        .execute(
            "SELECT tx_date, count(*), count(*) FILTER (TX_FRAUD_SCENARIO = 1),"
            " count(*) FILTER (TX_FRAUD_SCENARIO = 2), count(*) FILTER (TX_FRAUD_SCENARIO = 3)"
            " FROM transactions GROUP BY tx_date ORDER BY tx_date"
        )
        .fetchall()
    )
    cols: list[Any] = list(zip(*rows, strict=True)) if rows else [[], [], [], [], []]
    return {
        "day": np.array(cols[0], dtype="datetime64[D]"),
        "rows": np.array(cols[1]),
        "scenario_1": np.array(cols[2]),
        "scenario_2": np.array(cols[3]),
        "scenario_3": np.array(cols[4]),
    }


def test_fold_starts() -> list[dt.date]:
    return fold_starts(TEST_START)
