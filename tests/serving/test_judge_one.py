"""A batch of one row is judged in one compiled call (``Forest.one_row``): the same score, strongest
columns and values, bit for bit, as the batch path gives that row, for the three ways the forest
explains (split patterns, leaf tables, Algorithm 2), missing and extreme inputs, ties (the zeros of
the features a small model never splits on), models of fewer features than ``TOP_FEATURES`` and in
another order than the feature set's, and no model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xgboost as xgb

from fraudflow import schema as s
from fraudflow.serving.engine import TOP_FEATURES, Scorer
from fraudflow.training.model import Model
from tests.conftest import read_lake_table


@pytest.fixture(scope="module")
def scorer_and_rows(served_lake: Path) -> tuple[Scorer, np.ndarray, np.ndarray]:
    """A scorer on a memory store, the lake's feature vectors (its columns) and their labels."""
    scorer = Scorer.from_lake(served_lake, online="memory://")
    features = read_lake_table(served_lake, "features")
    tx = read_lake_table(served_lake, "transactions")
    assert features.column(s.TRANSACTION_ID).equals(tx.column(s.TRANSACTION_ID))
    x = np.column_stack([features.column(name).to_numpy().astype(np.float64) for name in scorer._names])
    return scorer, x, tx.column(s.TX_FRAUD).to_numpy()


def a_model(scorer: Scorer, x: np.ndarray, y: np.ndarray, columns: list[int], **params: Any) -> Model:
    """A model of the feature set's ``columns`` (in that order), trained with missing values (so that
    its splits learn default directions both ways)."""
    inputs = x[:, columns].copy()
    inputs[::5, 0] = np.nan
    inputs[1::4, -1] = np.nan
    mean, scale = np.nanmean(inputs, axis=0), np.nanstd(inputs, axis=0)
    scale[scale == 0] = 1.0
    classifier = xgb.XGBClassifier(**params, random_state=0, n_jobs=1)
    booster = classifier.fit((inputs - mean) / scale, y).get_booster()
    names = [scorer._names[c] for c in columns]
    return Model(booster, names, scorer.feature_set.version, mean, scale, params)


def rows_to_judge(x: np.ndarray, n: int) -> np.ndarray:
    """``n`` vectors: the lake's, with missing values, a row all missing, infinities, huge values."""
    rows = x[np.random.default_rng(0).choice(len(x), n, replace=False)].copy()
    rows[::3, 0] = np.nan
    rows[1::7, 1:4] = np.nan
    rows[2::11, -1] = np.nan
    rows[5] = np.nan
    rows[6, :2] = [np.inf, -np.inf]
    rows[7] = 1e300
    rows[8] = 0.0
    return rows


def assert_one_by_one_equals_the_batch(scorer: Scorer, rows: np.ndarray) -> None:
    batch = scorer._judge(rows)
    for i in range(len(rows)):
        one = scorer._judge(rows[i : i + 1])
        for got, want in ((one.scores, batch.scores), (one.order, batch.order), (one.strongest, batch.strongest)):
            assert got.dtype == want.dtype and got.shape == want[i : i + 1].shape, i
            assert got.tobytes() == want[i : i + 1].tobytes(), (i, got, want[i])


@pytest.mark.parametrize(
    ("columns", "params"),
    [
        ("all", {"max_depth": 3, "n_estimators": 40}),  # split patterns, fraudflow's trees
        ("reversed", {"max_depth": 3, "n_estimators": 40}),
        ("all", {"max_depth": 2, "n_estimators": 3}),  # most contributions zeros: ties
        ("two", {"max_depth": 3, "n_estimators": 20}),  # fewer features than TOP_FEATURES
        ("some", {"max_depth": 5, "n_estimators": 20}),  # leaf tables
        ("reversed", {"max_depth": 8, "n_estimators": 10}),  # Algorithm 2
    ],
)
def test_a_row_alone_is_judged_as_in_a_batch(
    scorer_and_rows: tuple[Scorer, np.ndarray, np.ndarray], columns: str, params: dict[str, Any]
) -> None:
    scorer, x, y = scorer_and_rows
    n = len(scorer._names)
    chosen = {"all": list(range(n)), "reversed": list(range(n))[::-1], "two": [4, 1], "some": [9, 0, 3, 12, 7]}
    model = a_model(scorer, x, y, chosen[columns], **params)
    scorer.use_model(model, "judged", 0.5)
    assert scorer._one_row is not None
    assert scorer._inputs_in_order == (columns == "all")
    assert_one_by_one_equals_the_batch(scorer, rows_to_judge(x, 2000))
    k = scorer._judge(x[:1]).order.shape[1]
    assert k == min(TOP_FEATURES, len(chosen[columns]))


def test_a_row_without_a_model_is_judged_as_in_a_batch(
    scorer_and_rows: tuple[Scorer, np.ndarray, np.ndarray],
) -> None:
    scorer, x, _ = scorer_and_rows
    scorer.use_model(None, "", 0.5)
    assert scorer._one_row is None
    assert_one_by_one_equals_the_batch(scorer, rows_to_judge(x, 50))
