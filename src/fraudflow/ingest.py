"""Load an existing transactions table (Parquet or CSV) into the lake, validated first.

Every check runs before anything is written, and each failure names the file, the column, the
first offending row (0-based, in file order) and what was expected. Then the rows are written one
day partition at a time (each atomically), replacing days already in the lake.
"""

from __future__ import annotations

import datetime as dt
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from fraudflow import schema
from fraudflow.errors import SchemaError
from fraudflow.lake import Lake, open_lake
from fraudflow.records import SECONDS_PER_DAY

REQUIRED = schema.INPUT_COLUMNS
OPTIONAL = (schema.TX_TIME_SECONDS, schema.TX_TIME_DAYS, schema.TX_FRAUD_SCENARIO)
INT_COLUMNS = (schema.TRANSACTION_ID, schema.CUSTOMER_ID, schema.TERMINAL_ID, schema.TX_FRAUD, *OPTIONAL)


@dataclass(frozen=True)
class IngestSummary:
    rows: int
    days: int
    frauds: int
    first_day: dt.date
    last_day: dt.date


def read_table(path: str | os.PathLike[str]) -> pa.Table:
    """Read a Parquet or CSV file (by extension), with a clear error when it cannot be read."""
    p = Path(path)
    if not p.exists():
        raise SchemaError(f"{p}: no such file")
    suffix = p.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pq.read_table(p)
        if suffix in (".csv", ".gz"):
            # every column as text: types are checked here, row by row, with precise errors
            return pacsv.read_csv(
                p,
                convert_options=pacsv.ConvertOptions(
                    column_types={c: pa.string() for c in (*REQUIRED, *OPTIONAL)}, strings_can_be_null=True
                ),
            )
    except (pa.ArrowInvalid, OSError) as exc:
        raise SchemaError(f"{p}: not a readable {suffix.lstrip('.')} file (truncated or corrupt?): {exc}") from exc
    raise SchemaError(f"{p}: unknown format {suffix!r}; expected .parquet or .csv")


def validate(table: pa.Table, source: str) -> pa.Table:
    """Return ``table`` as schema.TRANSACTIONS, or raise SchemaError naming the first problem."""
    if table.num_rows == 0:
        raise SchemaError(f"{source}: no rows")
    missing = [c for c in REQUIRED if c not in table.column_names]
    if missing:
        raise SchemaError(f"{source}: missing column(s) {missing}; found {table.column_names}")
    cols = {c: _combine(table.column(c)) for c in (*REQUIRED, *OPTIONAL) if c in table.column_names}
    for c, arr in cols.items():
        _no_nulls(arr, c, source)
    for c in INT_COLUMNS:
        if c in cols:
            cols[c] = _as_int(cols[c], c, source)
    cols[schema.TX_AMOUNT] = _as_float(cols[schema.TX_AMOUNT], schema.TX_AMOUNT, source)
    cols[schema.TX_DATETIME] = _as_timestamp(cols[schema.TX_DATETIME], source)
    _check_values(cols, source)
    return _complete(cols, table.num_rows)


def ingest(path: str | os.PathLike[str], out: str | os.PathLike[str] | Lake) -> IngestSummary:
    """Validate the file at ``path`` and write it into the lake ``out``, one partition per day."""
    lake = open_lake(out)
    table = validate(read_table(path), str(path))
    table = schema.time_ordered(table)
    dates = table[schema.TX_DATETIME].to_numpy().astype("datetime64[D]")
    bounds = np.flatnonzero(np.diff(dates.astype(np.int64))) + 1
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [len(dates)]])

    def write(i: int) -> None:
        day = dates[starts[i]].astype(dt.date)
        lake.write_partition("transactions", day, table.slice(starts[i], ends[i] - starts[i]))

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        list(pool.map(write, range(len(starts))))
    return IngestSummary(
        rows=table.num_rows,
        days=len(starts),
        frauds=int(pc.sum(table[schema.TX_FRAUD]).as_py() or 0),
        first_day=dates[0].astype(dt.date),
        last_day=dates[-1].astype(dt.date),
    )


def _combine(col: pa.ChunkedArray) -> pa.Array:
    return col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _no_nulls(arr: pa.Array, col: str, source: str) -> None:
    if arr.null_count:
        row = _first(arr.is_null().to_numpy(zero_copy_only=False))
        raise SchemaError(f"{source}: column {col}, row {row}: empty value; expected a value")


def _as_int(arr: pa.Array, col: str, source: str) -> pa.Array:
    if pa.types.is_integer(arr.type):
        return arr.cast(pa.int64())
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        ok = pc.match_substring_regex(pc.utf8_trim_whitespace(arr), r"^[+-]?[0-9]+$").to_numpy(zero_copy_only=False)
        if not ok.all():
            row = _first(~ok)
            raise SchemaError(f"{source}: column {col}, row {row}: {arr[row].as_py()!r} is not an integer")
        return pc.utf8_trim_whitespace(arr).cast(pa.int64())
    raise SchemaError(f"{source}: column {col} has type {arr.type}; expected an integer type")


def _as_float(arr: pa.Array, col: str, source: str) -> pa.Array:
    if pa.types.is_floating(arr.type) or pa.types.is_integer(arr.type):
        return arr.cast(pa.float64())
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        try:
            return pc.utf8_trim_whitespace(arr).cast(pa.float64())
        except pa.ArrowInvalid:
            for row, v in enumerate(arr.to_pylist()):
                try:
                    float(v)
                except ValueError:
                    raise SchemaError(f"{source}: column {col}, row {row}: {v!r} is not a number") from None
            raise
    raise SchemaError(f"{source}: column {col} has type {arr.type}; expected a number")


def _as_timestamp(arr: pa.Array, source: str) -> pa.Array:
    col = schema.TX_DATETIME
    if pa.types.is_timestamp(arr.type):
        if arr.type.tz is not None:  # naive datetimes throughout: keep the UTC wall time
            arr = arr.cast(pa.timestamp(arr.type.unit))
        return arr.cast(pa.timestamp("ns"))
    if pa.types.is_date(arr.type):
        return arr.cast(pa.timestamp("ns"))
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        text = pc.utf8_trim_whitespace(arr)
        try:
            return text.cast(pa.timestamp("ns"))  # ISO 8601: "2018-04-01 00:00:31", "2018-04-01T00:00:31"
        except pa.ArrowInvalid:
            for row, v in enumerate(text.to_pylist()):
                try:
                    pa.scalar(v).cast(pa.timestamp("ns"))
                except pa.ArrowInvalid:
                    raise SchemaError(
                        f"{source}: column {col}, row {row}: {v!r} is not a date-time; "
                        "expected ISO 8601 such as 2018-04-01 00:00:31"
                    ) from None
            raise
    raise SchemaError(f"{source}: column {col} has type {arr.type}; expected a timestamp or ISO 8601 text")


def _check_values(cols: dict[str, pa.Array], source: str) -> None:
    for c in (*schema.NON_NEGATIVE_INTS, schema.TX_FRAUD_SCENARIO):
        if c in cols:
            v = cols[c].to_numpy()
            if (v < 0).any():
                row = _first(v < 0)
                raise SchemaError(f"{source}: column {c}, row {row}: {v[row]} is negative; expected >= 0")
    amount = cols[schema.TX_AMOUNT].to_numpy()
    bad = ~np.isfinite(amount) | (amount < 0)
    if bad.any():
        row = _first(bad)
        raise SchemaError(
            f"{source}: column {schema.TX_AMOUNT}, row {row}: {amount[row]}; expected a finite amount >= 0"
        )
    fraud = cols[schema.TX_FRAUD].to_numpy()
    if ((fraud != 0) & (fraud != 1)).any():
        row = _first((fraud != 0) & (fraud != 1))
        raise SchemaError(f"{source}: column {schema.TX_FRAUD}, row {row}: {fraud[row]}; expected 0 or 1")
    ids = cols[schema.TRANSACTION_ID].to_numpy()
    uniq, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        dup = uniq[counts > 1][0]
        rows = np.flatnonzero(ids == dup)[:2]
        raise SchemaError(
            f"{source}: column {schema.TRANSACTION_ID}: {dup} appears at rows {rows[0]} and {rows[1]};"
            " expected unique ids"
        )


def _complete(cols: dict[str, pa.Array], n: int) -> pa.Table:
    """Derive the optional columns when absent, relative to midnight of the first day."""
    ts = cols[schema.TX_DATETIME].to_numpy().astype("datetime64[s]")
    if schema.TX_TIME_SECONDS not in cols:
        origin = ts.min().astype("datetime64[D]") if n else np.datetime64("1970-01-01")
        seconds = (ts - origin).astype(np.int64)
        cols[schema.TX_TIME_SECONDS] = pa.array(seconds)
        cols.setdefault(schema.TX_TIME_DAYS, pa.array(seconds // SECONDS_PER_DAY))
    if schema.TX_TIME_DAYS not in cols:
        cols[schema.TX_TIME_DAYS] = pa.array(cols[schema.TX_TIME_SECONDS].to_numpy() // SECONDS_PER_DAY)
    cols.setdefault(schema.TX_FRAUD_SCENARIO, pa.array(np.zeros(n, dtype=np.int64)))
    return pa.Table.from_arrays([cols[f.name] for f in schema.TRANSACTIONS], schema=schema.TRANSACTIONS)
