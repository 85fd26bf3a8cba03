"""The compiled forest scores and explains exactly as XGBoost does, on models trained on the features.

The margins are summed as XGBoost sums them (float32, in tree order) and equal its ``output_margin``
bit for bit. TreeSHAP runs in float64 where XGBoost's runs in float32, whose rounding grows with the
sizes it adds: the contributions agree to 1e-6 of the row's total attribution (the sum of the
absolute contributions, bias included; up to 4e-6 in absolute terms at margins of 14). The two
TreeSHAP algorithms in the forest (per-leaf tables, Algorithm 2), both float64, agree to 1e-12, and
so do the small trees' tables by split pattern.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb

from fraudflow import WorldParams, generate
from fraudflow import schema as s
from fraudflow.errors import ConfigError
from fraudflow.features import FRAUDFLOW, build_features
from fraudflow.training.forest import BY_TREES, PATTERN_MAX_SPLITS, TABLE_MAX_DEPTH, Forest, _select, strongest
from tests.conftest import read_lake_table

WORLD = WorldParams(n_customers=600, n_terminals=1000, nb_days=50, radius=8.0, start_date=dt.date(2018, 4, 1))


@pytest.fixture(scope="module")
def folds(tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training rows (the first 40 days), their labels, and the test fold (the last 10 days)."""
    root: Path = tmp_path_factory.mktemp("forest")
    generate(root, WORLD)
    build_features(root, FRAUDFLOW)
    tx = read_lake_table(root, "transactions")
    feats = read_lake_table(root, "features")
    assert feats.column(s.TRANSACTION_ID).equals(tx.column(s.TRANSACTION_ID))
    x = np.column_stack([feats.column(f.name).to_numpy() for f in FRAUDFLOW.features]).astype(np.float32)
    y = tx.column(s.TX_FRAUD).to_numpy()
    days = tx.column(s.TX_TIME_DAYS).to_numpy()
    train = days < 40
    return x[train], y[train], x[~train]


def trained(folds: tuple[np.ndarray, np.ndarray, np.ndarray], **params: float) -> xgb.Booster:
    x, y, _ = folds
    return xgb.XGBClassifier(**params, random_state=0, n_jobs=1).fit(x, y).get_booster()


@pytest.mark.parametrize(
    "params",
    [
        {"max_depth": 3, "n_estimators": 100, "learning_rate": 0.1},  # fraudflow's default model
        {"max_depth": 6, "n_estimators": 100, "learning_rate": 0.3},  # the handbook's
        {"max_depth": 8, "n_estimators": 40, "learning_rate": 0.3},  # deeper: Algorithm 2 itself
    ],
    ids=["depth3", "depth6", "depth8"],
)
def test_forest_equals_xgboost_on_every_test_row(folds, params) -> None:
    booster = trained(folds, **params)
    test = folds[2]
    forest = Forest.from_json(booster.save_raw("json"))
    assert (forest.tables is not None) == (params["max_depth"] <= TABLE_MAX_DEPTH)
    assert (forest.patterns is not None) == (2 ** params["max_depth"] - 1 <= PATTERN_MAX_SPLITS)
    matrix = xgb.DMatrix(test)

    margin = forest.margin(test)
    np.testing.assert_array_equal(margin, booster.predict(matrix, output_margin=True).astype(np.float64))
    np.testing.assert_allclose(forest.probability(test), booster.predict(matrix), rtol=0, atol=1e-6)

    contributions = forest.contributions(test)
    expected = booster.predict(matrix, pred_contribs=True).astype(np.float64)
    assert contributions.shape == expected.shape == (len(test), len(FRAUDFLOW.features) + 1)
    total_attribution = np.abs(expected).sum(axis=1, keepdims=True)
    assert np.all(np.abs(contributions - expected) <= 1e-6 * total_attribution)
    # exact TreeSHAP is additive: a row's contributions sum to its margin (the float32 one, to its rounding)
    np.testing.assert_allclose(contributions.sum(axis=1), margin, rtol=0, atol=1e-5)
    # the order of the contributions matters for top_features: the same features come first
    top = np.argsort(-np.abs(contributions[:, :-1]), axis=1, kind="stable")[:, :3]
    expected_top = np.argsort(-np.abs(expected[:, :-1]), axis=1, kind="stable")[:, :3]
    assert (top == expected_top).mean() > 0.999


def test_leaf_tables_equal_algorithm_2(folds) -> None:
    """Both TreeSHAP algorithms, one row at a time and in a batch, to 1e-12."""
    booster = trained(folds, max_depth=5, n_estimators=60, learning_rate=0.3)
    forest = Forest.from_json(booster.save_raw("json"))
    assert forest.tables is not None
    recursive = dataclasses.replace(forest, tables=None)
    test = folds[2][:3000]
    by_tables = forest.contributions(test)
    np.testing.assert_allclose(by_tables, recursive.contributions(test), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(forest.contributions(test[17]), by_tables[17:18])


def test_split_patterns_equal_leaf_tables(folds) -> None:
    """Small trees' tables by split pattern against the leaf tables, one row at a time and in a batch:
    the same margins bit for bit, contributions to 1e-12."""
    booster = trained(folds, max_depth=3, n_estimators=60, learning_rate=0.3)
    forest = Forest.from_json(booster.save_raw("json"))
    assert forest.patterns is not None
    by_leaves = dataclasses.replace(forest, patterns=None)
    test = folds[2][:3000]
    margin, by_patterns = forest.explain(test)
    np.testing.assert_array_equal(margin, by_leaves.margin(test))
    np.testing.assert_allclose(by_patterns, by_leaves.contributions(test), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(forest.contributions(test[17]), by_patterns[17:18])


def test_a_batch_tree_by_tree_equals_row_by_row(folds) -> None:
    """The split patterns' kernel over a batch (tree by tree, from BY_TREES rows) gives the margins and
    contributions of the row-by-row kernel (a few rows a call) bit for bit, missing values included
    (a model with learnt default directions, both ways)."""
    x, y, test = folds
    holes = x.copy()
    holes[::5, 0] = np.nan
    holes[1::4, 3] = np.nan
    booster = xgb.XGBClassifier(max_depth=3, n_estimators=60, random_state=0, n_jobs=1).fit(holes, y).get_booster()
    forest = Forest.from_json(booster.save_raw("json"))
    assert forest.patterns is not None
    rows = test[:4000].copy()
    rows[::3, 0] = np.nan
    rows[::7, 3] = np.nan
    rows[11] = np.nan
    margin, contributions = forest.explain(rows)
    few = BY_TREES - 1
    pieces = [forest.explain(rows[i : i + few]) for i in range(0, len(rows), few)]
    np.testing.assert_array_equal(margin, np.concatenate([m for m, _ in pieces]))
    np.testing.assert_array_equal(contributions, np.concatenate([c for _, c in pieces]))
    np.testing.assert_array_equal(margin, booster.predict(xgb.DMatrix(rows), output_margin=True).astype(np.float64))


def test_missing_values_take_the_default_direction(folds) -> None:
    x, y, test = folds
    holes = x.copy()
    holes[::7, 0] = np.nan  # XGBoost learns a default direction for the feature
    booster = xgb.XGBClassifier(max_depth=3, n_estimators=20, random_state=0, n_jobs=1).fit(holes, y).get_booster()
    forest = Forest.from_json(booster.save_raw("json"))
    rows = test[:500].copy()
    rows[::3, 0] = np.nan
    expected = booster.predict(xgb.DMatrix(rows), pred_contribs=True)
    assert np.abs(forest.contributions(rows) - expected).max() < 1e-5
    np.testing.assert_allclose(forest.probability(rows), booster.predict(xgb.DMatrix(rows)), atol=1e-6)


def test_models_it_cannot_compile_are_refused(folds) -> None:
    x, y, _ = folds
    regression = xgb.XGBRegressor(n_estimators=2, max_depth=2).fit(x[:500], y[:500]).get_booster()
    with pytest.raises(ConfigError, match="binary:logistic"):
        Forest.from_json(regression.save_raw("json"))
    forest = Forest.from_json(trained(folds, max_depth=2, n_estimators=2).save_raw("json"))
    with pytest.raises(ConfigError, match=f"takes {len(FRAUDFLOW.features)} features; rows have 3"):
        forest.contributions(np.zeros((1, 3)))


def test_strongest_contributions_as_a_stable_sort_ranks_them(folds) -> None:
    booster = trained(folds, max_depth=3, n_estimators=20)
    contributions = Forest.from_json(booster.save_raw("json")).contributions(folds[2][:2000])
    contributions[:5, :4] = [[1.0, -1.0, 0.5, -2.0]] * 5  # ties: the first column first
    columns = contributions.shape[1] - 1  # not the bias
    order, values = strongest(contributions, 3, columns)
    expected = np.argsort(-np.abs(contributions[:, :columns]), axis=1, kind="stable")[:, :3]
    np.testing.assert_array_equal(order, expected)
    np.testing.assert_array_equal(values, np.take_along_axis(contributions, expected, axis=1))
    assert order[0].tolist() == [3, 0, 1]


@pytest.mark.parametrize("k", [1, 3, 5])
def test_strongest_in_one_pass_equals_k_passes_of_selection(k: int) -> None:
    """The one-pass ranking against ``_select`` (k passes) on 20,000 rows: ties, zeros, signs, NaNs
    (a row with one is ranked by selection, where a NaN first in line wins), few columns."""
    rng = np.random.default_rng(k)
    rows = rng.normal(size=(20_000, 37)) * rng.choice([1e-3, 1.0, 10.0], size=(20_000, 37))
    rows[::3, :6] = np.round(rows[::3, :6], 1)  # ties
    rows[::7, 2] = -rows[::7, 4]
    rows[5::11] = 0.0
    rows[9::13, 6] = np.nan
    rows[10::13, 0] = np.nan
    for columns in (36, 3, 1):
        kk = min(k, columns)
        order, values = strongest(rows, k, columns)
        assert order.shape == values.shape == (len(rows), kk)
        for r in range(0, len(rows), 7):
            want_order, want_values = np.empty(kk, dtype=np.int64), np.empty(kk)
            _select(rows[r], want_order, want_values, kk, columns)
            assert order[r].tolist() == want_order.tolist(), (r, columns)
            np.testing.assert_array_equal(values[r], want_values)
        finite = ~np.isnan(rows[:, :columns]).any(axis=1)
        stable = np.argsort(-np.abs(rows[finite, :columns]), axis=1, kind="stable")[:, :kk]
        np.testing.assert_array_equal(order[finite], stable)
