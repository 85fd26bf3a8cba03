"""Training sets point in time by label arrival: the label in force at the cut-off, not the simulator's truth."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
import sqlglot

from fraudflow import WorldParams, generate
from fraudflow.errors import ConfigError
from fraudflow.features import build_features
from fraudflow.lake import Lake
from fraudflow.store import labels
from fraudflow.training.datasets import connect, label_cutoff, training_set, training_set_query

START = dt.date(2018, 4, 10)  # trains on 04-10 .. 04-16, tests on 04-24 .. 04-30
CUTOFF = dt.datetime(2018, 4, 24)  # the training set's: its last day + the 7-day delay, at its end
SECOND = dt.timedelta(seconds=1)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("label-arrival")
    generate(root, WorldParams(n_customers=300, n_terminals=400, nb_days=40, radius=10.0))
    build_features(root)
    return root


@pytest.fixture
def lake(world: Path, tmp_path: Path) -> Lake:
    shutil.copytree(world, tmp_path / "lake")
    return Lake(tmp_path / "lake")


def frauds(table: pa.Table) -> dict[int, int]:
    return dict(zip(table["TRANSACTION_ID"].to_pylist(), table["TX_FRAUD"].to_pylist(), strict=True))


def test_the_default_cutoff_is_when_the_sets_labels_are_mature() -> None:
    assert label_cutoff(START, "train") == CUTOFF
    assert label_cutoff(START, "test") == dt.datetime(2018, 5, 8)


def test_without_labels_the_truth_as_before(lake: Lake) -> None:
    table = training_set(lake, START)
    truth = (
        connect(lake)
        .execute(
            "SELECT count(*) FILTER (TX_FRAUD = 1) FROM transactions"
            " WHERE tx_date BETWEEN '2018-04-10' AND '2018-04-16'"
        )
        .fetchone()
    )
    assert truth is not None and sum(frauds(table).values()) == truth[0] > 4
    assert "labels" not in training_set_query(lake, START)
    with pytest.raises(ConfigError, match="no labels table"):
        training_set(lake, START, labels_as_of=CUTOFF)


def test_a_label_counts_when_it_arrived_by_the_cutoff(lake: Lake) -> None:
    truth = training_set(lake, START)
    fraud_ids = [i for i, f in frauds(truth).items() if f == 1]
    before, at, after, never = fraud_ids[:4]
    genuine = next(i for i, f in frauds(truth).items() if f == 0)
    labels.record(lake, {before: 1, genuine: 1}, label_time=CUTOFF - dt.timedelta(hours=5), source="chargeback")
    labels.record(lake, {at: 1}, label_time=CUTOFF)
    labels.record(lake, {after: 1, genuine: 0}, label_time=CUTOFF + SECOND, source="analyst")

    table = training_set(lake, START)
    got = frauds(table)
    assert {i: got[i] for i in (before, at, after, never, genuine)} == {
        before: 1,
        at: 1,
        after: 0,  # arrived after the cut-off
        never: 0,  # a fraud nobody reported is genuine for the team
        genuine: 1,  # the analyst's correction came after the cut-off
    }
    assert sum(got.values()) == 3
    # everything but the label is the set it was
    assert table.drop_columns(["TX_FRAUD"]).equals(truth.drop_columns(["TX_FRAUD"]))
    assert table.schema.equals(truth.schema)

    later = frauds(training_set(lake, START, labels_as_of=CUTOFF + SECOND))
    assert (later[after], later[genuine]) == (1, 0)


def test_a_test_sets_labels_are_those_known_a_delay_after_it(lake: Lake) -> None:
    test = training_set(lake, START, kind="test")
    first, last = test["TRANSACTION_ID"][0].as_py(), test["TRANSACTION_ID"][-1].as_py()
    labels.record(lake, {first: 1}, label_time=dt.datetime(2018, 5, 7, 23))
    labels.record(lake, {last: 1}, label_time=dt.datetime(2018, 5, 8, 0, 0, 1))
    got = frauds(training_set(lake, START, kind="test"))
    assert (got[first], got[last], sum(got.values())) == (1, 0, 1)


@pytest.mark.parametrize("kind", ["train", "test"])
def test_the_athena_and_spark_queries_give_the_same_set(lake: Lake, kind: str) -> None:
    truth = training_set(lake, START, kind=kind)  # type: ignore[arg-type]
    some = truth["TRANSACTION_ID"].filter(pc.equal(truth["TX_FRAUD"], 1)).to_pylist()[:3]
    labels.record(lake, dict.fromkeys(some, 1), label_time=CUTOFF - SECOND)
    expected = training_set(lake, START, kind=kind)  # type: ignore[arg-type]
    assert sum(frauds(expected).values()) == len(some)
    for dialect in ("athena", "spark"):
        query = training_set_query(lake, START, kind=kind, dialect=dialect)  # type: ignore[arg-type]
        back = sqlglot.transpile(query, read=dialect, write="duckdb")[0]
        assert connect(lake).sql(back).to_arrow_table().equals(expected), dialect
