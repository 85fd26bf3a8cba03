"""Feature definitions: validation, versions, and adding a feature in one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fraudflow import WorldParams, generate
from fraudflow.errors import FeatureError
from fraudflow.features import HANDBOOK, Feature, FeatureSet, compute
from fraudflow.features.definitions import customer_spending
from fraudflow.records import TERMINAL
from tests.conftest import read_lake_table
from tests.features.test_oracle import assert_features_equal


def test_the_default_set_is_the_handbooks_15_inputs_in_order() -> None:
    assert HANDBOOK.names[:3] == ["TX_AMOUNT", "TX_DURING_WEEKEND", "TX_DURING_NIGHT"]
    assert len(HANDBOOK.names) == 15
    assert HANDBOOK.history_days == 37


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (
            dict(name="X", aggregation="median", entity=TERMINAL, column="TX_AMOUNT", window_days=3),
            "unknown aggregation",
        ),
        (dict(name="X", aggregation="mean", entity="MERCHANT", column="TX_AMOUNT", window_days=3), "entity must be"),
        (dict(name="X", aggregation="mean", entity=TERMINAL, column="TX_FRAUD", window_days=3), "needs a delay"),
        (dict(name="X", aggregation="count", entity=TERMINAL, window_days=0), "window_days must be"),
        (dict(name="X", aggregation="weekend", entity=TERMINAL), "row feature"),
        (dict(name="X", aggregation="value", column="TX_FRAUD"), "column must be one of"),  # the label
        (dict(name="X", aggregation="count", entity=TERMINAL, window_days=3, of="Y"), "only a ratio"),
    ],
)
def test_invalid_definitions_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(FeatureError, match=message):
        Feature(**kwargs)


def test_duplicate_names_versions_and_ratio_order() -> None:
    with pytest.raises(FeatureError, match="duplicate"):
        FeatureSet((*HANDBOOK.features, HANDBOOK.features[0]))
    ratio = Feature("R", "ratio", column="TX_AMOUNT", of="CUSTOMER_ID_AVG_AMOUNT_30DAY_WINDOW")
    with pytest.raises(FeatureError, match="not an earlier feature"):
        FeatureSet((ratio, *HANDBOOK.features))
    more = FeatureSet((*HANDBOOK.features, *customer_spending(3)), "more")
    assert more.version != HANDBOOK.version
    assert FeatureSet.from_json(more.to_json()) == more
    tampered = {**more.to_json(), "version": HANDBOOK.version}
    with pytest.raises(FeatureError, match="does not match"):
        FeatureSet.from_json(tampered)


def test_a_new_feature_is_one_line_and_every_engine_computes_it(tmp_path: Path) -> None:
    extra = FeatureSet(
        (
            *HANDBOOK.features,
            *customer_spending(3),
            Feature("TERMINAL_ID_NB_FRAUD_14DAY_WINDOW", "sum", TERMINAL, "TX_FRAUD", 14, 7),
            Feature("AMOUNT_TO_AVG_3", "ratio", column="TX_AMOUNT", of="CUSTOMER_ID_AVG_AMOUNT_3DAY_WINDOW"),
        ),
        "extra",
    )
    generate(tmp_path, WorldParams(n_customers=300, n_terminals=400, nb_days=60, radius=10.0))
    tx = read_lake_table(tmp_path)
    compiled = compute(tx, extra, "compiled")
    assert_features_equal(compute(tx, extra, "duckdb"), compiled, extra.names)
    frauds = compiled["TERMINAL_ID_NB_FRAUD_14DAY_WINDOW"].to_numpy()
    counts = compiled["TERMINAL_ID_NB_TX_7DAY_WINDOW"].to_numpy()
    assert frauds.max() > 0 and counts.max() > 0
    ratio = compiled["AMOUNT_TO_AVG_3"].to_numpy()
    expected = tx["TX_AMOUNT"].to_numpy() / compiled["CUSTOMER_ID_AVG_AMOUNT_3DAY_WINDOW"].to_numpy()
    assert np.allclose(ratio, expected, rtol=1e-12)


def test_windows_over_derived_values_are_checked() -> None:
    """A window over a derived value reads a row feature of the set built from its own entity's
    windows, none over labels nor over another derived value; only a count_above has a threshold."""
    from fraudflow.records import CUSTOMER

    mean = Feature("C_MEAN", "mean", CUSTOMER, "TX_AMOUNT", 3)
    ratio = Feature("C_RATIO", "ratio", column="TX_AMOUNT", of="C_MEAN")
    above = Feature("C_ABOVE", "count_above", CUSTOMER, window_days=2, of="C_RATIO", threshold=2.0)
    fine = FeatureSet((mean, ratio, above), "fine")
    assert fine.history_days == 5  # its window's 2 days and the ratio's 3 before the oldest row
    assert FeatureSet.from_json(fine.to_json()) == fine
    with pytest.raises(FeatureError, match="only those, has a threshold"):
        Feature("X", "max", CUSTOMER, window_days=2, of="C_RATIO", threshold=2.0)
    with pytest.raises(FeatureError, match="only those, has a threshold"):
        Feature("X", "count_above", CUSTOMER, window_days=2, of="C_RATIO")
    t_risk = Feature("T_RISK", "mean", TERMINAL, "TX_FRAUD", 3, 7)
    wrong = {
        "another entity": (mean, ratio, Feature("X", "max", TERMINAL, window_days=2, of="C_RATIO")),
        "over labels": (
            t_risk,
            Feature("R", "ratio", column="TX_AMOUNT", of="T_RISK"),
            Feature("X", "max", TERMINAL, window_days=2, of="R"),
        ),
        "not a row value": (mean, Feature("X", "max", CUSTOMER, window_days=2, of="C_MEAN")),
        "not an earlier feature": (Feature("X", "max", CUSTOMER, window_days=2, of="C_RATIO"), mean, ratio),
    }
    for message, features in wrong.items():
        with pytest.raises(FeatureError, match=message):
            FeatureSet(features)
    assert "threshold" not in HANDBOOK.to_json()["features"][0]  # older versions keep their hash


def test_quotients_and_spreads_are_checked() -> None:
    """A quotient divides an earlier feature (column=) by another (of=), both required; a window over
    a quotient reads what the quotient reads (its entity's windows only); a spread reads the amount."""
    from fraudflow.records import CUSTOMER

    recent = Feature("C_MEAN_1", "mean", CUSTOMER, "TX_AMOUNT", 1)
    before = Feature("C_MEAN_30_7", "mean", CUSTOMER, "TX_AMOUNT", 30, 7)
    quotient = Feature("Q", "quotient", column="C_MEAN_1", of="C_MEAN_30_7")
    assert quotient.reads == ("C_MEAN_1", "C_MEAN_30_7")
    fine = FeatureSet((recent, before, quotient, Feature("X", "max", CUSTOMER, window_days=7, of="Q")), "fine")
    assert [f.name for f in fine.derivation("Q")] == ["C_MEAN_1", "C_MEAN_30_7", "Q"]
    assert fine.history_days == 7 + 37
    with pytest.raises(FeatureError, match="not an earlier feature"):
        FeatureSet((before, quotient, recent))
    with pytest.raises(FeatureError, match="names the earlier feature it divides"):
        Feature("Q", "quotient", of="C_MEAN_30_7")
    t_count = Feature("T_COUNT", "count", TERMINAL, window_days=1)
    with pytest.raises(FeatureError, match="another entity"):
        FeatureSet(
            (
                t_count,
                before,
                Feature("Q2", "quotient", column="T_COUNT", of="C_MEAN_30_7"),
                Feature("X", "max", CUSTOMER, window_days=7, of="Q2"),
            )
        )
    with pytest.raises(FeatureError, match="column must be TX_AMOUNT"):
        Feature("S", "std", CUSTOMER, "TX_FRAUD", 30, 7)


def test_unexplained_frauds_and_fraud_shares_are_checked() -> None:
    """Known frauds the amount rules leave unexplained read labels (with a delay), an amount limit
    and a threshold (only they take a limit), and may read the other entity's derived value (a
    terminal's window over the customer's ratio), its history counted; a fraud share reads labels."""
    from fraudflow.records import CUSTOMER

    mean = Feature("C_MEAN", "mean", CUSTOMER, "TX_AMOUNT", 30)
    ratio = Feature("C_RATIO", "ratio", column="TX_AMOUNT", of="C_MEAN")
    unexplained = Feature(
        "T_U", "unexplained_frauds", TERMINAL, "TX_FRAUD", 28, 7, of="C_RATIO", threshold=2.0, limit=220.0
    )
    fine = FeatureSet((mean, ratio, unexplained), "fine")
    assert fine.history_days == 35 + 30
    assert FeatureSet.from_json(fine.to_json()) == fine
    assert "limit" not in FeatureSet((mean,)).to_json()["features"][0]  # older versions keep their hash
    for kwargs, message in (
        (dict(threshold=2.0), "has an amount limit"),
        (dict(limit=220.0), "has a threshold"),
        (dict(threshold=2.0, limit=220.0, column="TX_AMOUNT"), "column must be TX_FRAUD"),
        (dict(threshold=2.0, limit=220.0, delay_days=0), "needs a delay"),
    ):
        fields = dict(entity=TERMINAL, column="TX_FRAUD", window_days=28, delay_days=7, of="C_RATIO") | kwargs
        with pytest.raises(FeatureError, match=message):
            Feature("T_U", "unexplained_frauds", **fields)  # type: ignore[arg-type]
    with pytest.raises(FeatureError, match="has an amount limit"):
        Feature("X", "count_above", CUSTOMER, window_days=2, of="C_RATIO", threshold=2.0, limit=1.0)
    with pytest.raises(FeatureError, match="column must be TX_FRAUD"):
        Feature("S", "fraud_share_since_first_fraud", TERMINAL, "TX_AMOUNT", 28, 7)
    for aggregation in ("days_since_first_fraud", "days_since_last_fraud"):  # the other windows over labels
        with pytest.raises(FeatureError, match="column must be TX_FRAUD"):
            Feature("A", aggregation, TERMINAL, "TX_AMOUNT", 28, 7)
    with pytest.raises(FeatureError, match="needs a delay"):
        Feature("S", "fraud_share_since_first_fraud", TERMINAL, "TX_FRAUD", 28)
