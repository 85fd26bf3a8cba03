"""The labels table: labels by arrival day, the latest in force at a time, files loaded all or nothing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fraudflow import WorldParams, generate
from fraudflow.errors import SchemaError
from fraudflow.lake import Lake
from fraudflow.store import labels

T0 = dt.datetime(2018, 4, 10, 9, 30)


def in_force(lake: Lake, as_of: dt.datetime | None = None) -> dict[int, int]:
    got = labels.read(lake, as_of)
    return dict(zip(got["TRANSACTION_ID"].to_pylist(), got["TX_FRAUD"].to_pylist(), strict=True))


def test_a_later_label_supersedes_an_earlier_one(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    labels.record(lake, {1: 1, 2: 1}, label_time=T0, source="chargeback")
    labels.record(lake, {1: 0}, label_time=T0 + dt.timedelta(days=3), source="analyst", analyst="ana")
    labels.record(lake, {3: 0}, label_time=T0 + dt.timedelta(days=1))
    assert in_force(lake) == {1: 0, 2: 1, 3: 0}
    assert in_force(lake, T0 + dt.timedelta(days=2)) == {1: 1, 2: 1, 3: 0}  # the analyst's came later
    assert in_force(lake, T0) == {1: 1, 2: 1}  # a label counts from its LABEL_TIME on
    assert in_force(lake, T0 - dt.timedelta(microseconds=1)) == {}
    latest = labels.read(lake).to_pylist()[0]
    assert latest == {
        "TRANSACTION_ID": 1,
        "TX_FRAUD": 0,
        "LABEL_TIME": T0 + dt.timedelta(days=3),
        "SOURCE": "analyst",
        "ANALYST": "ana",
    }
    assert labels.read(lake, history=True).num_rows == 4


def test_at_equal_times_a_fraud_label_wins(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    labels.record(lake, {5: 1}, label_time=T0, source="chargeback")
    labels.record(lake, {5: 0}, label_time=T0, source="analyst")
    assert in_force(lake) == {5: 1}


def test_partitioned_by_the_day_a_label_arrived(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    labels.record(lake, {1: 1}, label_time=T0)
    labels.record(lake, {2: 0, 3: 1}, label_time=T0 + dt.timedelta(days=1))
    folders = sorted(p.name for p in (tmp_path / "labels").iterdir())
    assert folders == ["label_date=2018-04-10", "label_date=2018-04-11"]
    written = pq.read_schema(next((tmp_path / "labels" / folders[0]).glob("part-*.parquet")))
    assert written.names == ["TRANSACTION_ID", "TX_FRAUD", "LABEL_TIME", "SOURCE", "ANALYST"]
    assert written.field("LABEL_TIME").type == pa.timestamp("us")


def test_compaction_keeps_every_distinct_label(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    labels.record(lake, {1: 1}, label_time=T0)
    labels.record(lake, {1: 1}, label_time=T0)  # the same label twice
    labels.record(lake, {1: 0}, label_time=T0 + dt.timedelta(hours=1))
    assert labels.compact(lake, T0.date()) == 3
    assert len(labels.table(lake).files()) == 1
    assert labels.read(lake, history=True)["TX_FRAUD"].to_pylist() == [1, 0]
    assert in_force(lake) == {1: 0}


def test_labels_other_than_0_or_1_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match=r"TRANSACTION_ID 8\): TX_FRAUD 2 is not 0 or 1"):
        labels.record(Lake(tmp_path), {7: 1, 8: 2})
    assert not labels.exists(Lake(tmp_path))


@pytest.fixture(scope="module")
def small_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("labels-lake")
    generate(root, WorldParams(n_customers=50, n_terminals=100, nb_days=3, radius=20.0))
    return root


def test_a_file_is_loaded_with_its_times_or_the_given_one(small_lake: Path, tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    csv = tmp_path / "labels.csv"
    csv.write_text("TRANSACTION_ID,TX_FRAUD,LABEL_TIME\n1,1,2018-04-02T10:00:00\n2,0,\n3,1,2018-04-02T12:00:00+02:00\n")
    loaded = labels.load_file(lake, csv, source="chargeback", label_time=T0)
    assert (loaded.rows, loaded.frauds) == (3, 2)
    got = labels.read(lake).to_pylist()
    assert [r["LABEL_TIME"] for r in got] == [dt.datetime(2018, 4, 2, 10), T0, dt.datetime(2018, 4, 2, 10)]
    assert {r["SOURCE"] for r in got} == {"chargeback"}
    parquet = tmp_path / "labels.parquet"
    pq.write_table(pa.table({"TRANSACTION_ID": [4], "TX_FRAUD": [1]}), parquet)
    labels.load_file(lake, parquet, analyst="bob")
    assert labels.read(lake).to_pylist()[-1]["ANALYST"] == "bob"


BAD_FILES = {
    "TRANSACTION_ID,TX_FRAUD\n1,1\n2,yes\n": r"bad\.csv: row 2, column TX_FRAUD: 'yes' is not an integer",
    "TRANSACTION_ID,TX_FRAUD\n1,1\n2,0\n3,2\n": r"bad\.csv: row 3, column TX_FRAUD: 2 is not a label \(0 or 1\)",
    "TRANSACTION_ID,TX_FRAUD,NOTE\n1,1,x\n": r"bad\.csv: unknown column 'NOTE'",
    "TRANSACTION_ID,LABEL_TIME\n1,2018-04-02\n": r"bad\.csv: no column TX_FRAUD",
    "TRANSACTION_ID,TX_FRAUD\n-1,1\n": r"bad\.csv: row 1, column TRANSACTION_ID: -1 is negative",
    "TRANSACTION_ID,TX_FRAUD,LABEL_TIME\n1,1,yesterday\n": r"row 1, column LABEL_TIME: 'yesterday' is not a time",
    "TRANSACTION_ID,TX_FRAUD\n1,1\n99999999,1\n": r"row 2, column TRANSACTION_ID: 99999999 is not a transaction of",
    "TRANSACTION_ID,TX_FRAUD\n1,1,1\n": r"bad\.csv: row 1: more values than columns",
}


@pytest.mark.parametrize("text", BAD_FILES)
def test_bad_files_are_refused_naming_file_row_and_column_and_nothing_is_written(
    small_lake: Path, tmp_path: Path, text: str
) -> None:
    lake = Lake(small_lake)
    before = labels.table(lake).files()
    bad = tmp_path / "bad.csv"
    bad.write_text(text)
    with pytest.raises(SchemaError, match=BAD_FILES[text]):
        labels.load_file(lake, bad)
    assert labels.table(lake).files() == before


def test_ids_the_prediction_log_holds_are_known_too(tmp_path: Path) -> None:
    from fraudflow.store import predictions
    from tests.store.test_predictions import batch

    lake = Lake(tmp_path)
    predictions.write_missing(lake, batch(500, 3).to_arrow())
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_text("TRANSACTION_ID,TX_FRAUD\n501,1\n")
    bad.write_text("TRANSACTION_ID,TX_FRAUD\n503,1\n")
    assert labels.load_file(lake, good).rows == 1
    with pytest.raises(SchemaError, match="503 is not a transaction"):
        labels.load_file(lake, bad)
