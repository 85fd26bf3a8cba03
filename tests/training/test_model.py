"""The model: deterministic fits, save and load in XGBoost's format, refusing mismatched inputs."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest

from fraudflow import Lake, WorldParams, generate
from fraudflow.errors import FeatureError
from fraudflow.features import HANDBOOK, build_features
from fraudflow.training import model, report, workflow
from fraudflow.training.evaluation import load_split
from fraudflow.training.protocol import fold_starts, split_days

WORLD = WorldParams(n_customers=600, n_terminals=800, nb_days=60, radius=8.0, start_date=dt.date(2018, 4, 1))
START = dt.date(2018, 5, 1)


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    root = tmp_path_factory.mktemp("train")
    generate(root, WORLD)
    build_features(root)
    return Lake(root)


def test_split_rules() -> None:
    assert split_days(dt.date(2018, 7, 25), "train") == (dt.date(2018, 7, 25), dt.date(2018, 7, 31))
    assert split_days(dt.date(2018, 7, 25), "test") == (dt.date(2018, 8, 8), dt.date(2018, 8, 14))
    assert fold_starts(dt.date(2018, 8, 15)) == [
        dt.date(2018, 8, 15),
        dt.date(2018, 8, 8),
        dt.date(2018, 8, 1),
        dt.date(2018, 7, 25),
    ]


def test_fits_are_deterministic_and_round_trip(lake: Lake) -> None:
    split = load_split(lake, START)
    params = {"tree_method": "hist", "max_depth": 3, "n_estimators": 20, "learning_rate": 0.3}
    a = model.fit(split.train, HANDBOOK.names, HANDBOOK.version, params)
    b = model.fit(split.train, HANDBOOK.names, HANDBOOK.version, params)
    scores = a.predict(split.test)
    assert np.array_equal(scores, b.predict(split.test))
    model.save(a, lake, "m1")
    model.save_metrics(lake, "m1", {})  # the mark of a finished model: only those load
    loaded = model.load(lake, "m1", expect_version=HANDBOOK.version)
    assert np.array_equal(loaded.predict(split.test), scores)
    meta = json.loads(Path(lake.path("models", "m1", "metadata.json")).read_text())
    assert meta["feature_set_version"] == HANDBOOK.version and meta["format"] == "xgboost-ubj"
    assert meta["data_fingerprint"] == model.data_fingerprint(split.train)
    assert {"xgboost", "numpy", "python", "fraudflow"} <= set(meta["versions"])
    assert not any(p.suffix in (".pkl", ".pickle") for p in Path(lake.path("models")).rglob("*"))


def test_a_mismatched_feature_set_is_refused(lake: Lake) -> None:
    split = load_split(lake, START)
    m = model.fit(split.train, HANDBOOK.names, HANDBOOK.version, {"n_estimators": 5, "tree_method": "hist"})
    model.save(m, lake, "m2")
    model.save_metrics(lake, "m2", {})
    with pytest.raises(FeatureError, match="refusing to score with mismatched inputs"):
        model.load(lake, "m2", expect_version="0123456789abcdef")
    with pytest.raises(FeatureError, match="absent from the input"):
        m.predict(split.test.drop_columns(["TX_AMOUNT"]))


def test_train_writes_model_metrics_and_a_self_contained_report(lake: Lake) -> None:
    trained = workflow.train(
        lake, START, {"n_estimators": 30, "max_depth": 3}, test_starts=[START, START - dt.timedelta(days=7)]
    )
    metrics = trained.metrics_json()
    assert 0.5 < metrics["auc_roc"] <= 1 and len(metrics["folds"]) == 2
    assert 0 < metrics["card_precision_at_100"] <= metrics["card_precision_at_100_bound"] + 1e-12
    stored = json.loads(Path(lake.path("models", trained.model_id, "metrics.json")).read_text())
    assert stored == metrics
    assert stored["auc_roc"] == pytest.approx(trained.results.summary.auc_roc.mean)
    html = Path(report.write(lake, trained.model_id)).read_text()
    assert html.count("data:image/png;base64,") == 5  # CP@100 per day, curves, scores, importance, data
    assert "Results against the handbook" in html and "http://" not in html and "https://" not in html
    assert model.latest_model(lake) in model.list_models(lake)


def test_model_ids_sort_by_creation_also_within_a_second() -> None:
    """ "The newest model" is the largest id: two models trained in one second must not tie on the random part."""
    t = dt.datetime(2026, 11, 27, 6, 10, 16, 5, tzinfo=dt.timezone.utc)
    ids = [model.new_model_id(t + dt.timedelta(microseconds=k)) for k in (0, 1, 2, 999_000)]
    assert sorted(ids) == ids
    assert "20261127T061016-ffffff" < ids[0]  # an earlier version's id (to the second) sorts before
    assert "20261127T061015999999-ffffff" < ids[0] < "20261127T061017-000000"
