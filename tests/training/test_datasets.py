"""Training and test sets by SQL: the handbook's split figures, the test rule, the dialects."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
import sqlglot

from fraudflow import Lake, WorldParams, generate
from fraudflow.errors import ConfigError
from fraudflow.features import HANDBOOK, build_features
from fraudflow.training.datasets import DIALECTS, connect, training_set, training_set_sql
from fraudflow.training.protocol import split_days
from tests.conftest import read_lake_table

START = dt.date(2018, 7, 25)


@pytest.mark.slow
def test_the_handbook_split_has_the_published_sizes(handbook_lake: Path) -> None:
    """EVALUATION.md: training 67,240 transactions (598 frauds); test 58,264 (385 frauds)."""
    train = training_set(str(handbook_lake), START)
    test = training_set(str(handbook_lake), START, kind="test")
    assert (train.num_rows, sum(train["TX_FRAUD"].to_pylist())) == (67_240, 598)
    assert (test.num_rows, sum(test["TX_FRAUD"].to_pylist())) == (58_264, 385)


@pytest.fixture(scope="module")
def small_lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    root = tmp_path_factory.mktemp("small")
    generate(
        root, WorldParams(n_customers=400, n_terminals=500, nb_days=40, radius=10.0, start_date=dt.date(2018, 4, 1))
    )
    build_features(root)
    return Lake(root)


def reference_test_set(lake: Lake, start: dt.date) -> set[int]:
    """The test rule written out plainly over the whole transactions table."""
    tx = read_lake_table(lake.url)
    days = tx["TX_DATETIME"].to_numpy().astype("datetime64[D]").astype(dt.date)
    fraud = tx["TX_FRAUD"].to_numpy()
    cust = tx["CUSTOMER_ID"].to_numpy()
    ids = tx["TRANSACTION_ID"].to_numpy()
    keep = set()
    for t in sorted({start + dt.timedelta(days=14 + i) for i in range(7)}):
        known = {c for c, d, f in zip(cust, days, fraud, strict=True) if f and start <= d <= t - dt.timedelta(days=8)}
        keep |= {i for i, c, d in zip(ids, cust, days, strict=True) if d == t and c not in known}
    return keep


def test_the_test_rule_leaves_out_customers_already_known(small_lake: Lake) -> None:
    start = dt.date(2018, 4, 10)
    test = training_set(small_lake, start, kind="test")
    assert set(test["TRANSACTION_ID"].to_pylist()) == reference_test_set(small_lake, start)
    unfiltered = (
        connect(small_lake)
        .execute("SELECT count(*) FROM transactions WHERE tx_date BETWEEN DATE '2018-04-24' AND DATE '2018-04-30'")
        .fetchone()
    )
    assert unfiltered is not None and unfiltered[0] > test.num_rows  # the rule did leave customers out


def test_training_rows_are_the_days_with_their_features_and_labels(small_lake: Lake) -> None:
    start = dt.date(2018, 4, 10)
    train = training_set(small_lake, start)
    first, last = split_days(start, "train")
    days = set(train["tx_date"].to_pylist())
    assert days == {first + dt.timedelta(days=i) for i in range(7)} and last == dt.date(2018, 4, 16)
    assert set(HANDBOOK.names) <= set(train.column_names) and "TX_FRAUD" in train.column_names
    tx = read_lake_table(small_lake.url)
    in_days = np.isin(tx["TX_DATETIME"].to_numpy().astype("datetime64[D]"), np.array(sorted(days), "datetime64[D]"))
    assert train.num_rows == in_days.sum()


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
@pytest.mark.parametrize("kind", ["train", "test"])
def test_every_dialect_parses_and_returns_the_same_rows(small_lake: Lake, dialect: str, kind: str) -> None:
    start = dt.date(2018, 4, 10)
    sql = training_set_sql(start, HANDBOOK.names, kind=kind, dialect=dialect)  # type: ignore[arg-type]
    parsed = sqlglot.parse_one(sql, read=DIALECTS[dialect])
    assert parsed.find(sqlglot.exp.Join) is not None
    back = sqlglot.transpile(sql, read=DIALECTS[dialect], write="duckdb")[0]
    got = connect(small_lake).sql(back).to_arrow_table()
    expected = training_set(small_lake, start, kind=kind)  # type: ignore[arg-type]
    assert got.num_rows > 0
    assert got.select(["TRANSACTION_ID", "TX_FRAUD"]).equals(expected.select(["TRANSACTION_ID", "TX_FRAUD"]))


def test_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="unknown dialect"):
        training_set_sql(START, HANDBOOK.names, dialect="oracle")
    with pytest.raises(ConfigError, match="kind must be"):
        split_days(START, "validation")  # type: ignore[arg-type]
