"""The labels table: fraud labels as they arrive (chargebacks, analysts, the API).

    <root>/labels/label_date=YYYY-MM-DD/part-*.parquet   (an append-only table: ``appendlog``)

    TRANSACTION_ID (bigint), TX_FRAUD (bigint: 1 fraud, 0 genuine), LABEL_TIME (when it arrived,
    UTC, microseconds), SOURCE (string: 'chargeback', 'analyst', 'api', ...), ANALYST (string or null)

Partitioned by the day a label *arrived* (``label_date``, the day of LABEL_TIME), not by its
transaction's day: what was known at a cut-off C is exactly the partitions up to C's day (a
point-in-time read prunes by folder), and a late label for an old transaction adds a file to
today's folder instead of changing an old one.

A transaction may be labelled several times (a chargeback, then an analyst's review): every label
is kept, and the one in force at time C is the latest whose LABEL_TIME <= C; at equal times a
fraud label wins over a genuine one (the cautious reading). ``latest_sql`` is that rule, the one
SQL the readers and the training sets use.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from fraudflow import schema
from fraudflow.errors import SchemaError
from fraudflow.lake import Lake
from fraudflow.store import predictions
from fraudflow.store.appendlog import AppendTable

if TYPE_CHECKING:
    import duckdb

TABLE = "labels"
PARTITION = "label_date"
LABEL_TIME = "LABEL_TIME"
SOURCE = "SOURCE"
ANALYST = "ANALYST"
#: the columns a labels file may have (LABEL_TIME optional: the time it is loaded)
FILE_COLUMNS = (schema.TRANSACTION_ID, schema.TX_FRAUD, LABEL_TIME)

LABELS = pa.schema(
    [
        pa.field(schema.TRANSACTION_ID, pa.int64(), nullable=False),
        pa.field(schema.TX_FRAUD, pa.int64(), nullable=False),
        pa.field(LABEL_TIME, pa.timestamp("us"), nullable=False),
        pa.field(SOURCE, pa.string(), nullable=False),
        pa.field(ANALYST, pa.string(), nullable=True),
    ]
)


def now() -> dt.datetime:
    """The LABEL_TIME of a label arriving now: naive UTC, microseconds."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def labels_table(
    ids: Sequence[int],
    frauds: Sequence[int],
    label_times: Sequence[dt.datetime] | dt.datetime,
    source: str,
    analyst: str | None = None,
) -> pa.Table:
    """Labels as the table's rows; ``SchemaError`` for a label other than 0/1 or an empty source."""
    n = len(ids)
    times = [label_times] * n if isinstance(label_times, dt.datetime) else list(label_times)
    if len(frauds) != n or len(times) != n:
        raise SchemaError(f"labels: {n} TRANSACTION_IDs, {len(frauds)} TX_FRAUD values, {len(times)} LABEL_TIMEs")
    if not source:
        raise SchemaError("labels: SOURCE must not be empty")
    for i, value in enumerate(frauds):
        if value not in (0, 1) or isinstance(value, float):
            raise SchemaError(f"label {i + 1} (TRANSACTION_ID {ids[i]}): TX_FRAUD {value!r} is not 0 or 1")
    columns = [list(ids), [int(f) for f in frauds], [_naive_utc(t) for t in times], [source] * n, [analyst] * n]
    return pa.Table.from_arrays([pa.array(c, f.type) for c, f in zip(columns, LABELS, strict=True)], schema=LABELS)


def table(lake: Lake) -> AppendTable:
    return AppendTable(lake, TABLE, PARTITION, LABEL_TIME)


def append(lake: Lake, rows: pa.Table) -> int:
    """Commit labels (``labels_table``'s rows); returns how many."""
    table(lake).append(rows.select(LABELS.names).cast(LABELS))
    return int(rows.num_rows)


def record(
    lake: Lake,
    frauds: Mapping[int, int],
    *,
    label_time: dt.datetime | None = None,
    source: str = "api",
    analyst: str | None = None,
) -> int:
    """Commit labels ``{TRANSACTION_ID: TX_FRAUD}`` arriving at ``label_time`` (now when None); returns how many.

    What ``POST /v1/labels`` calls: once it returns, the labels are in the lake (one file).
    """
    rows = labels_table(list(frauds), list(frauds.values()), label_time or now(), source, analyst)
    return append(lake, rows)


@dataclass(frozen=True)
class Loaded:
    """What ``load_file`` committed."""

    rows: int
    frauds: int
    first: dt.datetime | None  # the earliest and latest LABEL_TIME
    last: dt.datetime | None


def load_file(
    lake: Lake,
    path: str | Path,
    *,
    source: str = "analyst",
    analyst: str | None = None,
    label_time: dt.datetime | None = None,
) -> Loaded:
    """Commit the labels of a CSV or Parquet file (columns ``FILE_COLUMNS``; a missing or empty
    LABEL_TIME is ``label_time``, now when None), all or none: a ``SchemaError`` naming the file,
    row and column of the first bad value, or of a TRANSACTION_ID that is neither in the lake's
    transactions nor in its prediction log (checked when the lake has either)."""
    name = str(path)
    records = _read_file(name)
    default = label_time or now()
    ids, frauds, times = [], [], []
    for row, record in enumerate(records, start=1):
        ids.append(_integer(record.get(schema.TRANSACTION_ID), name, row, schema.TRANSACTION_ID))
        fraud = _integer(record.get(schema.TX_FRAUD), name, row, schema.TX_FRAUD)
        if fraud not in (0, 1):
            raise SchemaError(f"{name}: row {row}, column {schema.TX_FRAUD}: {fraud} is not a label (0 or 1)")
        frauds.append(fraud)
        times.append(_time(record.get(LABEL_TIME), name, row) or default)
    _check_known(lake, ids, name)
    if ids:
        append(lake, labels_table(ids, frauds, times, source, analyst))
    return Loaded(len(ids), sum(frauds), min(times, default=None), max(times, default=None))


def _read_file(name: str) -> list[dict[str, Any]]:
    """The file's rows as dicts, after checking its columns."""
    rows: list[dict[str, Any]]
    try:
        if name.endswith(".parquet"):
            import pyarrow.parquet as pq

            data = pq.read_table(name)
            columns, rows = data.column_names, data.to_pylist()
        else:
            with open(name, newline="", encoding="utf-8") as f:
                reader = csv.DictReader(f)
                columns, rows = list(reader.fieldnames or []), list(reader)
    except (OSError, UnicodeDecodeError, csv.Error, pa.ArrowInvalid) as exc:
        raise SchemaError(f"{name}: cannot read labels: {exc}") from exc
    unknown = [c for c in columns if c not in FILE_COLUMNS]
    if unknown:
        raise SchemaError(f"{name}: unknown column {unknown[0]!r}; a labels file has {', '.join(FILE_COLUMNS)}")
    missing = [c for c in FILE_COLUMNS[:2] if c not in columns]
    if missing:
        raise SchemaError(f"{name}: no column {missing[0]}; a labels file has {', '.join(FILE_COLUMNS)}")
    if any(None in r for r in rows):  # csv: more values than header names
        row = next(i for i, r in enumerate(rows, start=1) if None in r)
        raise SchemaError(f"{name}: row {row}: more values than columns")
    return rows


def _integer(value: Any, name: str, row: int, column: str) -> int:
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise SchemaError(f"{name}: row {row}, column {column}: {value!r} is not an integer")
    try:
        number = int(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise SchemaError(f"{name}: row {row}, column {column}: {value!r} is not an integer") from None
    if number < 0:
        raise SchemaError(f"{name}: row {row}, column {column}: {number} is negative")
    return number


def _time(value: Any, name: str, row: int) -> dt.datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return _naive_utc(value)
    try:
        return _naive_utc(dt.datetime.fromisoformat(str(value).strip()))
    except ValueError:
        raise SchemaError(f"{name}: row {row}, column {LABEL_TIME}: {value!r} is not a time (ISO 8601)") from None


def _naive_utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is None else value.astimezone(dt.timezone.utc).replace(tzinfo=None)


def _check_known(lake: Lake, ids: list[int], name: str) -> None:
    """``SchemaError`` at the first id neither the transactions nor the prediction log hold (when the lake has one)."""
    known = _known_ids(lake)
    if known is None:
        return
    import pyarrow.compute as pc

    found = pc.is_in(pa.array(ids, pa.int64()), value_set=known)
    if not pc.all(found).as_py():
        row = found.to_pylist().index(False) + 1
        raise SchemaError(
            f"{name}: row {row}, column {schema.TRANSACTION_ID}: {ids[row - 1]} is not a transaction of {lake.url}"
        )


def _known_ids(lake: Lake) -> pa.Array | None:
    parts = []
    days = lake.partitions("transactions")
    if days:
        parts.append(lake.read_partitions("transactions", days, columns=[schema.TRANSACTION_ID])[0])
    logged = predictions.log_table(lake).dataset()
    if logged is not None:
        parts.append(logged.to_table(columns=[schema.TRANSACTION_ID])[0])
    if not parts:
        return None
    return pa.chunked_array([c for p in parts for c in p.chunks], pa.int64()).combine_chunks()


def latest_sql(as_of: dt.datetime | None = None, source: str = TABLE) -> str:
    """Each transaction's label in force at ``as_of`` (all labels when None): TRANSACTION_ID, TX_FRAUD,
    LABEL_TIME, SOURCE, ANALYST (DuckDB's dialect, standard enough for sqlglot to print in others)."""
    where = ""
    if as_of is not None:
        stamp = as_of.isoformat(sep=" ", timespec="microseconds")
        where = f"\n  WHERE {PARTITION} <= DATE '{as_of.date()}' AND {LABEL_TIME} <= TIMESTAMP '{stamp}'"
    columns = ", ".join(LABELS.names)
    return (
        f"SELECT {columns} FROM (\n"
        f"  SELECT {columns}, ROW_NUMBER() OVER (PARTITION BY {schema.TRANSACTION_ID}"
        f" ORDER BY {LABEL_TIME} DESC, {schema.TX_FRAUD} DESC) AS label_rank\n"
        f"  FROM {source}{where}\n) AS ranked WHERE label_rank = 1"
    )


def exists(lake: Lake) -> bool:
    """Whether the lake has a labels table (at least one committed file)."""
    return bool(table(lake).files())


def register(con: duckdb.DuckDBPyConnection, lake: Lake) -> bool:
    """View ``labels`` (every label, with ``label_date``) in ``con``; False (no view) when the lake has none."""
    dataset = table(lake).dataset()
    if dataset is None:
        return False
    con.register(f"{TABLE}_dataset", lake.for_sql(dataset))
    con.execute(f"CREATE OR REPLACE VIEW {TABLE} AS SELECT * FROM {TABLE}_dataset")
    return True


def read(lake: Lake, as_of: dt.datetime | None = None, *, history: bool = False) -> pa.Table:
    """Each transaction's label in force at ``as_of`` (the newest when None), by TRANSACTION_ID; with
    ``history``, every label that arrived by then, in arrival order."""
    import duckdb

    con = duckdb.connect()
    if not register(con, lake):
        return LABELS.empty_table()
    if history:
        sql = f"SELECT {', '.join(LABELS.names)} FROM {TABLE}"
        if as_of is not None:
            sql += f" WHERE {LABEL_TIME} <= TIMESTAMP '{as_of.isoformat(sep=' ')}'"
        sql += f" ORDER BY {LABEL_TIME}, {schema.TRANSACTION_ID}"
    else:
        sql = f"{latest_sql(as_of)} ORDER BY {schema.TRANSACTION_ID}"
    return con.sql(sql).to_arrow_table().cast(LABELS)


def compact(lake: Lake, day: dt.date) -> int:
    """Rewrite a day of labels as one file (every distinct label kept); returns the files it replaced."""
    return table(lake).compact(day, _distinct)


def _distinct(rows: pa.Table) -> pa.Table:
    keys: Iterable[str] = LABELS.names
    return rows.group_by(list(keys), use_threads=False).aggregate([]).select(LABELS.names)
