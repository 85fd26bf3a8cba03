"""Each aggregation's three forms agree: SQL (run by DuckDB), compiled and online, row by row.

One case per aggregation of ``AGGREGATIONS``: a few features using it (both entities, with and
without a delay, each column it can read), computed through the aggregation's forms by each engine
on a hand-built set of transactions (same-time ties in both id orders, rows exactly on window and
calendar boundaries, an entity's first row, zero amounts) and on a random one. Integers must be
equal, floats within 1e-12 relative (a z-score, a difference, also 1e-12 absolute). Adding an
aggregation adds its case here.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

import numpy as np
import pyarrow as pa
import pytest

from fraudflow import schema as s
from fraudflow.errors import FeatureError
from fraudflow.features import Feature, FeatureSet, compute
from fraudflow.features.aggregations import AGGREGATIONS, Aggregation
from fraudflow.features.online import OnlineFeatures
from fraudflow.records import CUSTOMER, ENTITIES, TERMINAL, Events, Transaction

AMOUNT, FRAUD = s.TX_AMOUNT, s.TX_FRAUD

#: aggregation -> features using it (a ratio divides by earlier features, which come first)
CASES: dict[str, tuple[Feature, ...]] = {
    "value": (Feature("AMOUNT", "value", column=AMOUNT),),
    "weekend": (Feature("WEEKEND", "weekend"),),
    "night": (Feature("NIGHT", "night"),),
    "ratio": (
        Feature("C_MEAN_2", "mean", CUSTOMER, AMOUNT, 2),
        Feature("T_COUNT_1_1", "count", TERMINAL, window_days=1, delay_days=1),
        Feature("TO_MEAN", "ratio", column=AMOUNT, of="C_MEAN_2"),
        Feature("TO_COUNT", "ratio", column=AMOUNT, of="T_COUNT_1_1"),
    ),
    # a feature over another: a mean over a delayed one's (0 where that is empty), a count over a mean
    "quotient": (
        Feature("Q_C_MEAN_1", "mean", CUSTOMER, AMOUNT, 1),
        Feature("Q_C_MEAN_2_1", "mean", CUSTOMER, AMOUNT, 2, 1),
        Feature("Q_T_COUNT_2", "count", TERMINAL, window_days=2),
        Feature("RECENT_TO_BEFORE", "quotient", column="Q_C_MEAN_1", of="Q_C_MEAN_2_1"),
        Feature("COUNT_TO_MEAN", "quotient", column="Q_T_COUNT_2", of="Q_C_MEAN_1"),
    ),
    # known frauds' ages: none in a window (its reach), one exactly at its far edge (out), ties
    "days_since_first_fraud": (
        Feature("T_FIRST_FRAUD_2_1", "days_since_first_fraud", TERMINAL, FRAUD, 2, 1),
        Feature("C_FIRST_FRAUD_3_1", "days_since_first_fraud", CUSTOMER, FRAUD, 3, 1),
    ),
    "days_since_last_fraud": (
        Feature("T_LAST_FRAUD_2_1", "days_since_last_fraud", TERMINAL, FRAUD, 2, 1),
        Feature("C_LAST_FRAUD_1_2", "days_since_last_fraud", CUSTOMER, FRAUD, 1, 2),
    ),
    # a share since the first known fraud: same-time rows before it in id order count (ids 9, 4)
    "fraud_share_since_first_fraud": (
        Feature("T_SHARE_1_1", "fraud_share_since_first_fraud", TERMINAL, FRAUD, 1, 1),
        Feature("C_SHARE_3_1", "fraud_share_since_first_fraud", CUSTOMER, FRAUD, 3, 1),
        Feature("T_SHARE_2_2", "fraud_share_since_first_fraud", TERMINAL, FRAUD, 2, 2),
    ),
    # known frauds the amount rules leave unexplained: a terminal's window over each transaction's
    # customer ratio (another entity's), amounts and ratios exactly at the limit and threshold (ids 4, 8)
    "unexplained_frauds": (
        Feature("U_C_MEAN_2", "mean", CUSTOMER, AMOUNT, 2),
        Feature("U_C_RATIO", "ratio", column=AMOUNT, of="U_C_MEAN_2"),
        Feature("U_T_MEAN_1", "mean", TERMINAL, AMOUNT, 1),
        Feature("U_T_RATIO", "ratio", column=AMOUNT, of="U_T_MEAN_1"),
        Feature(
            "T_UNEXPLAINED_1_1", "unexplained_frauds", TERMINAL, FRAUD, 1, 1, of="U_C_RATIO", threshold=1.0, limit=2.25
        ),
        Feature(
            "T_UNEXPLAINED_2_1", "unexplained_frauds", TERMINAL, FRAUD, 2, 1, of="U_C_RATIO", threshold=0.5, limit=100.0
        ),
        Feature(
            "C_UNEXPLAINED_3_1", "unexplained_frauds", CUSTOMER, FRAUD, 3, 1, of="U_C_RATIO", threshold=1.0, limit=10.0
        ),
        Feature(
            "T_UNEXPLAINED_T_2_1", "unexplained_frauds", TERMINAL, FRAUD, 2, 1, of="U_T_RATIO", threshold=1.0, limit=5.0
        ),
    ),
    "count": (
        Feature("C_COUNT_1", "count", CUSTOMER, window_days=1),
        Feature("T_COUNT_2", "count", TERMINAL, window_days=2),
        Feature("T_COUNT_2_1", "count", TERMINAL, FRAUD, 2, 1),
        Feature("C_COUNT_1_3", "count", CUSTOMER, window_days=1, delay_days=3),
    ),
    "sum": (
        Feature("C_SUM_2", "sum", CUSTOMER, AMOUNT, 2),
        Feature("T_SUM_1_1", "sum", TERMINAL, AMOUNT, 1, 1),
        Feature("T_FRAUDS_3_1", "sum", TERMINAL, FRAUD, 3, 1),
    ),
    "mean": (
        Feature("C_MEAN_1", "mean", CUSTOMER, AMOUNT, 1),
        Feature("T_MEAN_3", "mean", TERMINAL, AMOUNT, 3),
        Feature("T_RISK_2_1", "mean", TERMINAL, FRAUD, 2, 1),
        Feature("C_MEAN_1_2", "mean", CUSTOMER, AMOUNT, 1, 2),
    ),
    # windows over derived values: a ratio to the entity's mean as of each transaction (exactly 1 on
    # an entity's first row, exactly 2 for id 10 and id 7 is 0), the amount itself (7.0 on id 5)
    "count_above": (
        Feature("A_AMOUNT", "value", column=AMOUNT),
        Feature("A_C_MEAN_2", "mean", CUSTOMER, AMOUNT, 2),
        Feature("A_C_RATIO", "ratio", column=AMOUNT, of="A_C_MEAN_2"),
        Feature("A_T_MEAN_1", "mean", TERMINAL, AMOUNT, 1),
        Feature("A_T_RATIO", "ratio", column=AMOUNT, of="A_T_MEAN_1"),
        Feature("C_ABOVE_1", "count_above", CUSTOMER, window_days=1, of="A_C_RATIO", threshold=1.0),
        Feature("C_ABOVE_2_1", "count_above", CUSTOMER, window_days=2, delay_days=1, of="A_C_RATIO", threshold=0.5),
        Feature("T_ABOVE_2", "count_above", TERMINAL, window_days=2, of="A_T_RATIO", threshold=1.0),
        Feature("C_AMOUNT_ABOVE_1", "count_above", CUSTOMER, window_days=1, of="A_AMOUNT", threshold=7.0),
    ),
    "max": (
        Feature("M_AMOUNT", "value", column=AMOUNT),
        Feature("M_C_MEAN_3", "mean", CUSTOMER, AMOUNT, 3),
        Feature("M_C_RATIO", "ratio", column=AMOUNT, of="M_C_MEAN_3"),
        Feature("M_T_MEAN_1", "mean", TERMINAL, AMOUNT, 1),
        Feature("M_T_RATIO", "ratio", column=AMOUNT, of="M_T_MEAN_1"),
        Feature("C_MAX_1", "max", CUSTOMER, window_days=1, of="M_C_RATIO"),
        Feature("C_MAX_1_1", "max", CUSTOMER, window_days=1, delay_days=1, of="M_C_RATIO"),
        Feature("T_MAX_2", "max", TERMINAL, window_days=2, of="M_T_RATIO"),
        Feature("T_MAX_AMOUNT_1_2", "max", TERMINAL, window_days=1, delay_days=2, of="M_AMOUNT"),
    ),
    # spreads: 0 on an entity's first row, on zero amounts and on equal ones (ids 16-18: rounding noise)
    "std": (
        Feature("C_STD_1", "std", CUSTOMER, AMOUNT, 1),
        Feature("T_STD_3", "std", TERMINAL, AMOUNT, 3),
        Feature("C_STD_1_2", "std", CUSTOMER, AMOUNT, 1, 2),
        Feature("T_STD_2_1", "std", TERMINAL, AMOUNT, 2, 1),
    ),
    "zscore": (
        Feature("Z_C_2", "zscore", CUSTOMER, AMOUNT, 2),
        Feature("Z_T_1", "zscore", TERMINAL, AMOUNT, 1),
        Feature("Z_C_1_1", "zscore", CUSTOMER, AMOUNT, 1, 1),
    ),
}

#: a z-score is a difference (the amount less the mean, each engine's sums rounded in its own order):
#: near 0 only an absolute bound holds; it is unit-free (within +-sqrt(n - 1) without a delay)
ABSOLUTE = {"zscore": 1e-12}

# TRANSACTION_ID, TX_DATETIME, CUSTOMER_ID, TERMINAL_ID, TX_AMOUNT, TX_FRAUD; 2018-04-07 is a Saturday
HAND_BUILT = [
    (1, "2018-04-06 06:59:59", 1, 1, 10.0, 1),  # Friday, the night's last second
    (2, "2018-04-06 07:00:00", 1, 2, 0.0, 0),  # day
    (9, "2018-04-07 00:00:00", 1, 1, 5.5, 0),  # Saturday midnight, a tie: id 4 comes first
    (4, "2018-04-07 00:00:00", 1, 1, 2.25, 1),
    (0, "2018-04-07 00:00:00", 5, 1, 3.5, 0),  # the tie again, before id 4's fraud in id order
    (5, "2018-04-07 06:59:59", 1, 1, 7.0, 0),  # one day after id 1: id 1 has left the 1-day window
    (8, "2018-04-07 07:00:00", 2, 1, 1.0, 1),  # a customer's first row
    (6, "2018-04-08 06:59:59.999999", 2, 1, 3.0, 0),  # Sunday, a microsecond before the day
    (7, "2018-04-08 07:00:00", 1, 1, 0.0, 0),  # id 8 is exactly 1 day back: the end of a delayed window
    (3, "2018-04-09 00:00:00", 1, 2, 4.0, 0),  # Monday midnight
    (10, "2018-04-09 07:00:00", 1, 2, 0.0, 0),  # id 2 is exactly 3 days back: out of the 3-day window
    (12, "2018-04-10 12:00:00", 1, 1, 8.0, 0),  # three at once, ids out of order
    (11, "2018-04-10 12:00:00", 1, 2, 1.5, 1),
    (13, "2018-04-10 12:00:00", 1, 1, 0.0, 0),
    (14, "2018-04-11 07:00:00", 3, 1, 0.0, 0),  # zero amounts only: a mean of 0, a ratio to 0
    (15, "2018-04-11 08:00:00", 3, 2, 0.0, 0),
    (16, "2018-04-12 07:00:00", 4, 3, 0.1, 0),  # equal amounts: a variance of rounding noise
    (17, "2018-04-12 08:00:00", 4, 3, 0.1, 0),
    (18, "2018-04-12 09:00:00", 4, 3, 0.1, 0),
]


def table(rows: list[tuple[int, str, int, int, float, int]]) -> pa.Table:
    """The rows as the lake's transactions (its columns and types), in (time, id) order."""
    columns = list(zip(*rows, strict=True))
    columns[1] = tuple(np.array(columns[1], dtype="datetime64[us]").astype("datetime64[ns]"))
    fields = [s.TRANSACTIONS.field(name) for name in s.INPUT_COLUMNS]
    return s.time_ordered(
        pa.table([pa.array(c, f.type) for c, f in zip(columns, fields, strict=True)], pa.schema(fields))
    )


def random_rows(n: int = 1500, seed: int = 12) -> list[tuple[int, str, int, int, float, int]]:
    """Twenty days of times on a 10-minute grid (many ties, many exact day offsets), some moved by
    microseconds; ids shuffled against time; a tenth of the amounts 0."""
    rng = np.random.default_rng(seed)
    us = rng.integers(0, 20 * 144, n) * 600_000_000 + (rng.random(n) < 0.2) * rng.integers(0, 10**6, n)
    when = np.datetime64("2018-04-01T00:00:00", "us") + us.astype("timedelta64[us]")
    amounts = np.where(rng.random(n) < 0.1, 0.0, np.round(rng.uniform(0, 100, n), 2))
    return list(
        zip(
            (rng.permutation(n) + 1).tolist(),
            [str(w) for w in when],
            rng.integers(0, 12, n).tolist(),
            rng.integers(0, 8, n).tolist(),
            amounts.tolist(),
            (rng.random(n) < 0.15).astype(int).tolist(),
            strict=True,
        )
    )


def online(tx: pa.Table, fs: FeatureSet) -> dict[str, list[float]]:
    """Each row as it arrives, in (time, id) order, from the events of its entities' earlier rows
    (their labels known at once: a window over them has a delay). The derived values read across
    entities are kept as each row got them (the reference computes only its own entity's)."""
    engine = OnlineFeatures(fs)
    across = {f.of for f in fs.features if f.rule.derived and not engine.derived_entities[f.of or ""] <= {f.entity}}
    kept: dict[int, dict[str, float]] = {}
    seen: dict[str, dict[int, list[tuple[int, int, float, int]]]] = {kind: defaultdict(list) for kind in ENTITIES}
    out: dict[str, list[float]] = {name: [] for name in fs.names}
    columns = [tx[c].to_pylist() for c in s.INPUT_COLUMNS]
    for tx_id, when, customer, terminal, amount, fraud in zip(*columns, strict=True):
        t = Transaction(tx_id, when, customer, terminal, amount)
        events = {kind: Events.from_rows(seen[kind][t.entity(kind)]) for kind in ENTITIES}
        values = engine.compute(t, events, kept)
        kept[tx_id] = {name: values[name] for name in across if name is not None}
        for name, value in values.items():
            out[name].append(value)
        for kind in ENTITIES:
            seen[kind][t.entity(kind)].append((t.ts_us, tx_id, amount, fraud))
    return out


def assert_forms_agree(tx: pa.Table, fs: FeatureSet) -> None:
    forms = {"sql": compute(tx, fs, "duckdb"), "compiled": compute(tx, fs, "compiled")}
    for name, form in forms.items():
        assert form[s.TRANSACTION_ID].to_pylist() == tx[s.TRANSACTION_ID].to_pylist(), name
    served = online(tx, fs)
    for f in fs.features:
        compiled = forms["compiled"][f.name].to_numpy()
        assert forms["sql"][f.name].type == forms["compiled"][f.name].type == pa.from_numpy_dtype(np.dtype(f.dtype))
        assert all(isinstance(v, int) for v in served[f.name]) == (f.dtype == "int64"), f.name
        for form, values in (("sql", forms["sql"][f.name].to_numpy()), ("online", np.array(served[f.name]))):
            if f.dtype == "int64":
                np.testing.assert_array_equal(values, compiled, err_msg=f"{f.name}: {form} and compiled differ")
            else:
                np.testing.assert_allclose(
                    values,
                    compiled,
                    rtol=1e-12,
                    atol=ABSOLUTE.get(f.aggregation, 0),
                    err_msg=f"{f.name}: {form} and compiled differ",
                )


def test_every_aggregation_has_a_case() -> None:
    assert set(CASES) == {a.name for a in AGGREGATIONS}
    for name, features in CASES.items():
        assert any(f.aggregation == name for f in features)


@pytest.mark.parametrize("aggregation", AGGREGATIONS, ids=lambda a: a.name)
@pytest.mark.parametrize("rows", ["hand-built", "random"])
def test_the_three_forms_agree(aggregation: Aggregation, rows: str) -> None:
    tx = table(HAND_BUILT if rows == "hand-built" else random_rows())
    assert_forms_agree(tx, FeatureSet(CASES[aggregation.name], aggregation.name))


def test_the_hand_built_rows_hit_what_they_are_built_for() -> None:
    """The boundaries of HAND_BUILT as the compiled engine counts them (so the parity above is
    over rows that matter, not only over easy ones)."""
    fs = FeatureSet((*CASES["weekend"], *CASES["night"], *CASES["count"], *CASES["mean"]))
    got = compute(table(HAND_BUILT), fs).to_pydict()
    row = {tx_id: i for i, tx_id in enumerate(got[s.TRANSACTION_ID])}
    assert [got["NIGHT"][row[i]] for i in (1, 2, 6, 7)] == [1, 0, 1, 0]
    assert [got["WEEKEND"][row[i]] for i in (2, 9, 6, 3)] == [0, 1, 1, 0]
    assert [got["C_COUNT_1"][row[i]] for i in (4, 9, 5)] == [3, 4, 4]  # the tie in id order; then id 1 left
    assert [got["C_COUNT_1"][row[i]] for i in (12, 11, 13)] == [2, 1, 3]
    assert got["T_COUNT_2_1"][row[7]] == 6  # ids 1, 0, 4, 9, 5 and 8, which is exactly 1 day back
    assert got["T_MEAN_3"][row[10]] == pytest.approx(4.0 / 2)  # id 2 is exactly 3 days back: out
    assert got["C_MEAN_1"][row[14]] == 0.0


def test_the_hand_built_rows_hit_the_edges_of_windows_over_derived_values() -> None:
    """Windows over a derived value on HAND_BUILT: a value exactly at the threshold is not above it;
    same-time rows see only the lower ids' values; an empty delayed window's maximum is 0."""
    fs = FeatureSet((*CASES["count_above"], *CASES["max"]))
    got = compute(table(HAND_BUILT), fs).to_pydict()
    row = {tx_id: i for i, tx_id in enumerate(got[s.TRANSACTION_ID])}
    assert [got["A_C_RATIO"][row[i]] for i in (1, 8)] == [1.0, 1.0]  # first rows: exactly at the threshold
    assert [got["C_ABOVE_1"][row[i]] for i in (1, 8, 9, 5)] == [0, 0, 1, 2]
    assert [got["C_ABOVE_1"][row[i]] for i in (11, 12, 13)] == [0, 1, 1]  # ids in order within one time
    assert got["C_AMOUNT_ABOVE_1"][row[5]] == 0  # 7.0 is not above 7.0, and id 1's 10.0 has left
    assert [got["C_MAX_1"][row[i]] for i in (11, 12, 13)] == pytest.approx([12 / 11, 80 / 27, 80 / 27])
    assert got["C_MAX_1_1"][row[1]] == 0.0
    assert [got["T_MAX_AMOUNT_1_2"][row[i]] for i in (6, 7)] == [10.0, 10.0]  # id 1, in both (t - 3 days, t - 2 days]


def test_the_hand_built_rows_hit_the_edges_of_spreads() -> None:
    """Spreads on HAND_BUILT: population (divided by n); 0 for one transaction, zero amounts and equal
    ones (whose sums leave a variance of rounding noise); a z-score of 0 where the spread is."""
    fs = FeatureSet((*CASES["std"], *CASES["zscore"]))
    got = compute(table(HAND_BUILT), fs).to_pydict()
    row = {tx_id: i for i, tx_id in enumerate(got[s.TRANSACTION_ID])}
    assert got["C_STD_1"][row[6]] == pytest.approx(1.0)  # 1.0 and 3.0, a microsecond inside the day
    assert got["Z_C_2"][row[6]] == pytest.approx(1.0)
    assert [got["C_STD_1"][row[i]] for i in (1, 8, 14, 15)] == [0.0, 0.0, 0.0, 0.0]
    assert [got[name][row[i]] for name in ("C_STD_1", "Z_C_2") for i in (16, 17, 18)] == [0.0] * 6
    assert got["T_STD_3"][row[18]] == 0.0
    assert (0.1 + 0.1 + 0.1) / 3 != 0.1  # a mean an ulp off: the deviations' noise the rule takes out


def test_spreads_stay_exact_for_large_amounts() -> None:
    """Amounts of 10 million and some cents, spread by about 30: a variance as a difference of sums of
    squares (mean square 1e14) loses half of its digits. The compiled engine's (corrected two-pass)
    and the online reference's (two-pass, exact sums) stay within 1e-12 of numpy's over the same
    window; DuckDB's (VAR_POP, its windows merged) within n ulps of the mean over the spread: 1e-9."""
    rows = [(i, when, c, t, round(1e7 + amount, 2), fraud) for i, when, c, t, amount, fraud in random_rows(600, seed=3)]
    tx = table(rows)
    fs = FeatureSet(
        (Feature("C_STD_30", "std", CUSTOMER, AMOUNT, 30), Feature("T_STD_2_1", "std", TERMINAL, AMOUNT, 2, 1))
    )
    compiled = compute(tx, fs, "compiled")
    for f in fs.features:
        np.testing.assert_allclose(online(tx, fs)[f.name], compiled[f.name].to_numpy(), rtol=1e-12, atol=0)
        np.testing.assert_allclose(compute(tx, fs, "duckdb")[f.name].to_numpy(), compiled[f.name], rtol=1e-9, atol=0)
    customers, amounts = tx[s.CUSTOMER_ID].to_numpy(), tx[s.TX_AMOUNT].to_numpy()
    naive_errors = []
    for c in np.unique(customers):  # each customer's last row: its 30-day window holds all its rows
        mine = amounts[customers == c]
        std = compiled["C_STD_30"][int(np.flatnonzero(customers == c)[-1])].as_py()
        assert std == pytest.approx(np.std(mine), rel=1e-12)
        naive = np.sqrt(max(0.0, (np.sum(mine * mine) - np.sum(mine) ** 2 / len(mine)) / len(mine)))
        naive_errors.append(abs(naive - std) / std)
    assert max(naive_errors) > 1e-6  # a million times the stable forms' disagreement


def test_the_hand_built_rows_hit_the_edges_of_fraud_ages() -> None:
    """Known frauds' ages on HAND_BUILT: a fraud exactly at a delayed window's near end is in it; a
    window without one gives its reach (delay + window days)."""
    fs = FeatureSet((*CASES["days_since_first_fraud"], *CASES["days_since_last_fraud"]))
    got = compute(table(HAND_BUILT), fs).to_pydict()
    row = {tx_id: i for i, tx_id in enumerate(got[s.TRANSACTION_ID])}
    assert got["T_LAST_FRAUD_2_1"][row[7]] == 1.0  # id 8, exactly 1 day back
    assert got["T_FIRST_FRAUD_2_1"][row[7]] == pytest.approx(2 + 1 / 86400)  # id 1, a second more than 2 days
    assert [got["T_FIRST_FRAUD_2_1"][row[i]] for i in (1, 14)] == [3.0, 3.0]  # none yet, none any more
    assert got["C_LAST_FRAUD_1_2"][row[1]] == 3.0


def test_the_hand_built_rows_hit_the_edges_of_fraud_shares() -> None:
    """Shares since the first known fraud on HAND_BUILT: the rows at its time count whatever their ids
    (id 0 before id 4's fraud in id order, id 9 after); a window without a fraud gives 0."""
    fs = FeatureSet(CASES["fraud_share_since_first_fraud"])
    got = compute(table(HAND_BUILT), fs).to_pydict()
    row = {tx_id: i for i, tx_id in enumerate(got[s.TRANSACTION_ID])}
    assert got["T_SHARE_1_1"][row[7]] == 2 / 5  # ids 4 and 8 of ids 0, 4, 9, 5, 8 (id 1 a second too old)
    assert got["T_SHARE_1_1"][row[6]] == 1 / 4  # id 4 of ids 0, 4, 9, 5
    assert [got["T_SHARE_1_1"][row[i]] for i in (1, 5)] == [0.0, 1.0]  # nothing yet; id 1 exactly a day back


def test_the_hand_built_rows_hit_the_edges_of_unexplained_frauds() -> None:
    """Unexplained frauds on HAND_BUILT: an amount exactly at the limit and a ratio exactly at the
    threshold count (at most); above either, not; the customer's ratio read on a terminal's window."""
    fs = FeatureSet(CASES["unexplained_frauds"])
    got = compute(table(HAND_BUILT), fs).to_pydict()
    row = {tx_id: i for i, tx_id in enumerate(got[s.TRANSACTION_ID])}
    assert [got["U_C_RATIO"][row[i]] for i in (4, 8)] == [pytest.approx(2.25 / (12.25 / 3)), 1.0]
    assert got["T_UNEXPLAINED_1_1"][row[7]] == 2  # id 4 (amount 2.25: at the limit), id 8 (ratio 1.0)
    assert got["T_UNEXPLAINED_2_1"][row[7]] == 0  # ratios 0.55 and 1.0 above 0.5; id 1's (1.0) too
    assert got["C_UNEXPLAINED_3_1"][row[10]] == 2  # id 1 (10.0 at the limit, ratio 1.0: a first row), id 4


def test_a_value_read_across_entities_comes_from_the_caller() -> None:
    """The reference cannot compute a customer ratio from a terminal's events: without the caller's
    value it refuses, in one line naming the value and the transaction."""
    fs = FeatureSet(CASES["unexplained_frauds"])
    first, second = (Transaction(i, dt.datetime(2018, 4, d, 10), i, 1, 5.0) for i, d in ((1, 1), (2, 3)))
    events = {CUSTOMER: Events.from_rows([]), TERMINAL: Events.from_rows([(first.ts_us, 1, 5.0, 1)])}
    with pytest.raises(FeatureError, match="'U_C_RATIO' of transaction 1 reads windows of"):
        OnlineFeatures(fs).compute(second, events)
    values = OnlineFeatures(fs).compute(second, events, {1: {"U_C_RATIO": 1.0}})
    assert values["T_UNEXPLAINED_2_1"] == 0 and values["T_UNEXPLAINED_T_2_1"] == 1
