"""Loading a transactions table into the lake: good files land, bad ones land nothing."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from fraudflow import SchemaError, WorldParams, generate, ingest
from tests.conftest import golden, handbook_file, read_lake_table
from tests.fingerprint import transactions_fingerprint

SMALL = WorldParams(n_customers=50, n_terminals=100, nb_days=10, radius=10.0)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> pa.Table:
    root = tmp_path_factory.mktemp("src")
    generate(root, SMALL)
    return read_lake_table(root)


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_parquet_round_trip(tmp_path: Path, sample: pa.Table) -> None:
    pq.write_table(sample, tmp_path / "in.parquet")
    summary = ingest(tmp_path / "in.parquet", tmp_path / "lake")
    assert (summary.rows, summary.days) == (sample.num_rows, 10)
    assert read_lake_table(tmp_path / "lake").equals(sample)


def test_csv_with_iso_dates_round_trip(tmp_path: Path, sample: pa.Table) -> None:
    pacsv.write_csv(sample, tmp_path / "in.csv")
    ingest(tmp_path / "in.csv", tmp_path / "lake")
    assert read_lake_table(tmp_path / "lake").equals(sample)


def test_optional_columns_are_derived(tmp_path: Path, sample: pa.Table) -> None:
    slim = sample.drop_columns(["TX_TIME_SECONDS", "TX_TIME_DAYS", "TX_FRAUD_SCENARIO"])
    pq.write_table(slim, tmp_path / "in.parquet")
    ingest(tmp_path / "in.parquet", tmp_path / "lake")
    got = read_lake_table(tmp_path / "lake")
    assert got["TX_TIME_SECONDS"].equals(sample["TX_TIME_SECONDS"])
    assert got["TX_TIME_DAYS"].equals(sample["TX_TIME_DAYS"])
    assert pc.sum(got["TX_FRAUD_SCENARIO"]).as_py() == 0


@pytest.mark.slow
def test_the_handbook_file_lands_exactly(tmp_path: Path) -> None:
    summary = ingest(handbook_file("transactions.parquet"), tmp_path)
    assert (summary.rows, summary.days, summary.frauds) == (1_754_155, 183, 14_681)
    got = read_lake_table(tmp_path)
    assert transactions_fingerprint(got) == golden("handbook_transactions.json")["days"]
    assert got.equals(
        pq.read_table(handbook_file("transactions.parquet")).replace_schema_metadata(None).cast(got.schema)
    )


def _set(table: pa.Table, name: str, values: pa.Array) -> pa.Table:
    return table.set_column(table.schema.get_field_index(name), name, values)


def _with_value(table: pa.Table, name: str, row: int, value: object, type_: pa.DataType) -> pa.Table:
    values = table[name].to_pylist()
    values[row] = value
    return _set(table, name, pa.array(values, type=type_))


BAD_PARQUET = {
    "wrong column type": (
        lambda t: _set(t, "CUSTOMER_ID", pc.cast(t["CUSTOMER_ID"], pa.float64())),
        r"column CUSTOMER_ID has type double; expected an integer type",
    ),
    "missing column": (lambda t: t.drop_columns(["TERMINAL_ID"]), r"missing column\(s\) \['TERMINAL_ID'\]"),
    "negative id": (
        lambda t: _with_value(t, "TERMINAL_ID", 17, -3, pa.int64()),
        r"column TERMINAL_ID, row 17: -3 is negative; expected >= 0",
    ),
    "unparsable date": (
        lambda t: _with_value(
            t.cast(t.schema.set(1, pa.field("TX_DATETIME", pa.string()))),
            "TX_DATETIME",
            5,
            "2018-13-45 00:00:00",
            pa.string(),
        ),
        r"column TX_DATETIME, row 5: '2018-13-45 00:00:00' is not a date-time",
    ),
    "empty value": (
        lambda t: _with_value(t, "TX_AMOUNT", 9, None, pa.float64()),
        r"column TX_AMOUNT, row 9: empty value",
    ),
    "negative amount": (
        lambda t: _with_value(t, "TX_AMOUNT", 4, -1.5, pa.float64()),
        r"column TX_AMOUNT, row 4: -1.5; expected a finite amount >= 0",
    ),
    "label not 0/1": (
        lambda t: _with_value(t, "TX_FRAUD", 2, 7, pa.int64()),
        r"column TX_FRAUD, row 2: 7; expected 0 or 1",
    ),
    "duplicate id": (
        lambda t: _with_value(t, "TRANSACTION_ID", 8, 3, pa.int64()),
        r"TRANSACTION_ID: 3 appears at rows 3 and 8",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_PARQUET))
def test_bad_parquet_is_refused_with_a_precise_error(tmp_path: Path, sample: pa.Table, case: str) -> None:
    corrupt, message = BAD_PARQUET[case]
    path = tmp_path / "bad.parquet"
    pq.write_table(corrupt(sample), path)
    with pytest.raises(SchemaError, match=message) as err:
        ingest(path, tmp_path / "lake")
    assert str(path) in str(err.value)
    assert files_under(tmp_path / "lake") == []


def test_bad_input_never_touches_an_existing_lake(tmp_path: Path, sample: pa.Table) -> None:
    pq.write_table(sample, tmp_path / "good.parquet")
    ingest(tmp_path / "good.parquet", tmp_path / "lake")
    before = {p: p.read_bytes() for p in files_under(tmp_path / "lake")}
    pq.write_table(_with_value(sample, "CUSTOMER_ID", 0, -1, pa.int64()), tmp_path / "bad.parquet")
    with pytest.raises(SchemaError):
        ingest(tmp_path / "bad.parquet", tmp_path / "lake")
    assert {p: p.read_bytes() for p in files_under(tmp_path / "lake")} == before


def test_truncated_parquet_is_refused(tmp_path: Path, sample: pa.Table) -> None:
    pq.write_table(sample, tmp_path / "full.parquet")
    data = (tmp_path / "full.parquet").read_bytes()
    (tmp_path / "cut.parquet").write_bytes(data[: len(data) // 2])
    with pytest.raises(SchemaError, match=r"cut.parquet: not a readable parquet file \(truncated or corrupt"):
        ingest(tmp_path / "cut.parquet", tmp_path / "lake")
    assert files_under(tmp_path / "lake") == []


@pytest.mark.parametrize(
    "value,message",
    [
        ("abc", r"column CUSTOMER_ID, row 3: 'abc' is not an integer"),
        ("", r"column CUSTOMER_ID, row 3: empty value"),
    ],
)
def test_bad_csv_cells_are_located(tmp_path: Path, sample: pa.Table, value: str, message: str) -> None:
    pacsv.write_csv(sample, tmp_path / "in.csv")
    lines = (tmp_path / "in.csv").read_text().splitlines()
    cells = lines[4].split(",")  # header + rows 0..2 come first
    cells[2] = value
    lines[4] = ",".join(cells)
    (tmp_path / "in.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(SchemaError, match=message):
        ingest(tmp_path / "in.csv", tmp_path / "lake")
    assert files_under(tmp_path / "lake") == []


def test_missing_file_and_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="no such file"):
        ingest(tmp_path / "nope.parquet", tmp_path / "lake")
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(SchemaError, match="unknown format"):
        ingest(tmp_path / "x.json", tmp_path / "lake")
