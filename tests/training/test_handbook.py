"""Published numbers of the handbook (EVALUATION.md) reproduced on its own dataset."""

from __future__ import annotations

from pathlib import Path

import pytest

from fraudflow import Lake
from fraudflow.features import HANDBOOK
from fraudflow.training import model
from fraudflow.training.evaluation import load_split, score_split
from fraudflow.training.protocol import SINGLE_SPLIT_START, TEST_START, fold_starts


@pytest.mark.slow
def test_cp100_bound_per_test_fold(handbook_lake: Path) -> None:
    """Upper bound of CP@100 on the four test folds: 0.451, 0.420, 0.409, 0.397; mean 0.419."""
    lake = Lake(handbook_lake)
    bounds = []
    for start in fold_starts(TEST_START):
        split = load_split(lake, start)
        labels = split.test["TX_FRAUD"].to_numpy().astype(float)
        from fraudflow.training.metrics import card_precision_at_k

        cp = card_precision_at_k(
            split.test["tx_date"].to_numpy(), split.test["CUSTOMER_ID"].to_numpy(), labels.astype(int), labels
        )
        bounds.append(round(cp.mean, 3))
    assert bounds == [0.451, 0.420, 0.409, 0.397]
    assert round(sum(bounds) / 4, 3) == 0.419


@pytest.mark.slow
def test_single_split_with_the_handbooks_xgboost_defaults(handbook_lake: Path) -> None:
    """Published: XGBoost with default hyperparameters, split 2018-07-25: 0.862 / 0.639 / 0.273."""
    split = load_split(Lake(handbook_lake), SINGLE_SPLIT_START)
    fitted = model.fit(split.train, HANDBOOK.names, HANDBOOK.version, model.HANDBOOK_PARAMS)
    m = score_split(fitted, split)
    assert (round(m.auc_roc, 3), round(m.average_precision, 3), round(m.card_precision, 3)) == (
        0.862,
        0.639,
        0.273,
    )
