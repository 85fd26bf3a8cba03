"""The feature fingerprint: row by row, blind to 1e-12 noise and to the order of same-second ties."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from fraudflow import schema as s
from fraudflow.features import FRAUDFLOW, HANDBOOK, compute
from tests.fingerprint import features_fingerprint, quantise

CUSTOMER_FEATURES = [n for n in HANDBOOK.names if n.startswith("CUSTOMER_ID_")]


def transactions(rows: list[tuple[int, int, int, float, int]]) -> pa.Table:
    """(seconds, customer, terminal, amount, fraud) rows, ids in time order (ties in list order)."""
    seconds = np.array([r[0] for r in rows], np.int64)
    order = np.argsort(seconds, kind="stable")
    cols = {
        s.TRANSACTION_ID: np.arange(len(rows), dtype=np.int64),
        s.TX_DATETIME: (np.datetime64("2018-04-01") + seconds[order].astype("timedelta64[s]")).astype("datetime64[ns]"),
        s.CUSTOMER_ID: np.array([rows[i][1] for i in order], np.int64),
        s.TERMINAL_ID: np.array([rows[i][2] for i in order], np.int64),
        s.TX_AMOUNT: np.array([rows[i][3] for i in order]),
        s.TX_TIME_SECONDS: seconds[order],
        s.TX_TIME_DAYS: seconds[order] // 86400,
        s.TX_FRAUD: np.array([rows[i][4] for i in order], np.int64),
        s.TX_FRAUD_SCENARIO: np.array([rows[i][4] for i in order], np.int64),
    }
    return pa.table(cols, schema=s.TRANSACTIONS)


ROWS = [
    (10, 1, 5, 12.34, 0),
    (500, 1, 6, 50.01, 0),
    (500, 1, 5, 7.77, 0),  # customer 1's same-second tie with the row above
    (900, 2, 5, 99.99, 1),
    (86400 * 8 + 3, 1, 5, 20.00, 0),
    (86400 * 8 + 60, 3, 5, 31.415, 0),
]


def fingerprint(tx: pa.Table, feats: pa.Table | None = None) -> dict[str, dict[str, object]]:
    return features_fingerprint(tx, compute(tx, HANDBOOK) if feats is None else feats, HANDBOOK)


def test_the_order_of_a_same_second_tie_does_not_change_the_fingerprint() -> None:
    one = transactions(ROWS)
    other = transactions([ROWS[0], ROWS[2], ROWS[1], *ROWS[3:]])
    f1, f2 = compute(one, HANDBOOK), compute(other, HANDBOOK)
    # the tied rows' customer features do depend on the order...
    by_amount = [
        dict(zip(t["TX_AMOUNT"].to_pylist(), f["CUSTOMER_ID_AVG_AMOUNT_1DAY_WINDOW"].to_pylist(), strict=True))
        for t, f in ((one, f1), (other, f2))
    ]
    assert by_amount[0][7.77] != by_amount[1][7.77]
    # ...but the fingerprint is the same, and it counts the tie
    assert fingerprint(one) == fingerprint(other)
    assert fingerprint(one)["0"]["tied_rows"] == 2


def test_noise_below_the_tolerance_does_not_change_the_fingerprint() -> None:
    tx = transactions(ROWS)
    feats = compute(tx, HANDBOOK)
    noisy = feats
    for name in HANDBOOK.names:
        if HANDBOOK.features[HANDBOOK.names.index(name)].dtype == "float64":
            v = feats[name].to_numpy()
            noisy = noisy.set_column(noisy.column_names.index(name), name, pa.array(v * (1 + 1e-12) + 1e-15))
    assert fingerprint(tx, noisy) == fingerprint(tx, feats)


@pytest.mark.parametrize("name", HANDBOOK.names)
@pytest.mark.parametrize("row", [0, 2, 4])
def test_any_feature_of_any_row_off_by_more_than_the_tolerance_changes_the_fingerprint(name: str, row: int) -> None:
    """Row 2 is in the tie: its terminal and calendar features are hashed row by row too."""
    tx = transactions(ROWS)
    feats = compute(tx, HANDBOOK)
    i = feats.column_names.index(name)
    v = feats[name].to_numpy().copy()
    tie_row_customer_feature = row == 2 and name in CUSTOMER_FEATURES
    if tie_row_customer_feature:
        v[row - 1 : row + 1] += 1 if v.dtype.kind == "i" else 1e-3  # the tie's last row changes the tie's hash
    else:
        v[row] += 1 if v.dtype.kind == "i" else max(abs(v[row]), 1) * 1e-5
    day = str(tx["TX_TIME_DAYS"][row].as_py())
    assert fingerprint(tx, feats.set_column(i, name, pa.array(v)))[day] != fingerprint(tx, feats)[day]


def test_means_are_hashed_as_window_sums_far_from_any_rounding_boundary() -> None:
    """A mean of 1 cent over 32 rows is 312.5 units of 1e-6, on a boundary; its window sum is not."""
    values = {f.name: np.zeros(1, np.int64 if f.dtype == "int64" else np.float64) for f in HANDBOOK.features}
    values["CUSTOMER_ID_NB_TX_30DAY_WINDOW"][0] = 32
    values["CUSTOMER_ID_AVG_AMOUNT_30DAY_WINDOW"][0] = 0.01 / 32
    assert quantise(values, HANDBOOK)[1] == pytest.approx(0.5)
    values["TX_AMOUNT"][0] = 0.01 / 32  # a float hashed as it is
    assert quantise(values, HANDBOOK)[1] < 1e-6


def test_a_feature_set_with_a_ratio_fingerprints() -> None:
    tx = transactions(ROWS)
    got = features_fingerprint(tx, compute(tx, FRAUDFLOW), FRAUDFLOW)
    assert sum(d["rows"] for d in got.values()) == len(ROWS)
