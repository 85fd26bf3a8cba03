"""The prediction log: every answered transaction, once, in the lake's ``predictions/`` table.

    <root>/predictions/tx_date=YYYY-MM-DD/part-*.parquet   (an append-only table: ``appendlog``)

    TRANSACTION_ID, TX_DATETIME, CUSTOMER_ID, TERMINAL_ID, TX_AMOUNT   the transaction
    SCORE (double), ALERT (bool), THRESHOLD (double), MODEL_ID (string) the answer
    FEATURES   struct<name: double, ...>: the vector the model was given, one field per input
    SERVED_AT  when it was answered (UTC, microseconds)

The vector is one struct column, not one top-level column per feature: a model input may carry a
transaction column's name (the handbook's ``TX_AMOUNT``), and the table's other columns stay the
same whatever the model. Parquet stores each field of a struct as its own column, so a per-feature
query (``AVG(FEATURES.TX_AMOUNT)`` in DuckDB, Athena/Trino and Spark alike) reads that feature
alone, with its own statistics. Files of models with other inputs are read by field name (the
fields a file lacks are null).

Exactly once: a transaction is one ``(tx_date, TRANSACTION_ID)``. A flush drops the ids repeated
within it; copies committed by separate writes (a batch appended twice, the recovery path, two
processes) are dropped by every reader, which keeps the first served (earliest ``SERVED_AT``, then
``MODEL_ID``, then ``SCORE``), and by ``compact``.

Crash safety: ``PredictionLog`` keeps rows in memory until a flush commits them (whole files
only). The service answers before that, so its online store, which holds every answer durably
before the answer leaves, is the copy rows come back from after a crash: ``write_missing`` commits
those of them the log lacks, and nothing else.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from fraudflow import schema
from fraudflow.errors import SchemaError
from fraudflow.lake import Lake
from fraudflow.records import Transaction, TxColumns, to_us
from fraudflow.store.appendlog import AppendTable, BufferedAppender

if TYPE_CHECKING:
    import duckdb

TABLE = "predictions"
#: the raw files, every committed row (a view of DuckDB, a table of Athena)
LOG_VIEW = "predictions_log"
SCORE = "SCORE"
ALERT = "ALERT"
THRESHOLD = "THRESHOLD"
MODEL_ID = "MODEL_ID"
FEATURES = "FEATURES"
SERVED_AT = "SERVED_AT"

#: every column but the vector, in the table's order (FEATURES comes before SERVED_AT)
FIXED = pa.schema(
    [
        pa.field(schema.TRANSACTION_ID, pa.int64(), nullable=False),
        pa.field(schema.TX_DATETIME, pa.timestamp("ns"), nullable=False),
        pa.field(schema.CUSTOMER_ID, pa.int64(), nullable=False),
        pa.field(schema.TERMINAL_ID, pa.int64(), nullable=False),
        pa.field(schema.TX_AMOUNT, pa.float64(), nullable=False),
        pa.field(SCORE, pa.float64(), nullable=False),
        pa.field(ALERT, pa.bool_(), nullable=False),
        pa.field(THRESHOLD, pa.float64(), nullable=False),
        pa.field(MODEL_ID, pa.string(), nullable=False),
    ]
)
#: which copy of a transaction the readers keep
FIRST_SERVED = f"{SERVED_AT}, {MODEL_ID}, {SCORE}"


def prediction_schema(feature_names: Sequence[str]) -> pa.Schema:
    """The table's schema for a model whose inputs are ``feature_names``."""
    vector = pa.struct([pa.field(name, pa.float64()) for name in feature_names])
    return pa.schema(
        [*FIXED, pa.field(FEATURES, vector, nullable=False), pa.field(SERVED_AT, pa.timestamp("us"), nullable=False)]
    )


@dataclass(frozen=True, eq=False)
class PredictionBatch:
    """A batch of answers as columns (what the service hands ``PredictionLog.append``).

    ``vectors[i, j]`` is transaction i's value of ``feature_names[j]``; ``alerts`` None means
    ``scores >= threshold`` (the service's rule); ``served_at`` is naive UTC, one time for the batch
    or one per row (int64 microseconds since the epoch).
    """

    txs: TxColumns
    scores: np.ndarray  # float64
    threshold: float
    model_id: str
    feature_names: Sequence[str]
    vectors: np.ndarray  # float64, (len(txs), len(feature_names))
    served_at: dt.datetime | np.ndarray
    alerts: np.ndarray | None = None  # bool

    def to_arrow(self) -> pa.Table:
        n, names = len(self.txs), list(self.feature_names)
        vectors = np.asarray(self.vectors, dtype=np.float64).reshape(n, len(names))
        for field, length in (("scores", len(self.scores)), ("alerts", n if self.alerts is None else len(self.alerts))):
            if length != n:
                raise SchemaError(f"prediction batch: {length} {field} for {n} transactions")
        scores = np.asarray(self.scores, dtype=np.float64)
        alerts = scores >= self.threshold if self.alerts is None else np.asarray(self.alerts, dtype=bool)
        # each feature's column contiguous, so that Arrow takes it as it is: a strided column is
        # copied value by value, 10 ms for 5,000 answers of 36 features, holding the interpreter
        # (the service's requests wait for it); one transposition costs 1
        by_feature = np.ascontiguousarray(vectors.T)
        vector = pa.StructArray.from_arrays(
            [pa.array(by_feature[j]) for j in range(len(names))],
            fields=list(prediction_schema(names).field(FEATURES).type),
        )
        if isinstance(self.served_at, dt.datetime):
            served = np.full(n, to_us(self.served_at), dtype=np.int64)
        else:
            served = np.asarray(self.served_at, dtype=np.int64)
        columns = [
            pa.array(self.txs.tx_id),
            pa.array(self.txs.ts_us.astype("datetime64[us]").astype("datetime64[ns]")),
            pa.array(self.txs.customer),
            pa.array(self.txs.terminal),
            pa.array(np.asarray(self.txs.amount, dtype=np.float64)),
            pa.array(scores),
            pa.array(alerts),
            pa.array(np.full(n, self.threshold, dtype=np.float64)),
            pa.array([self.model_id] * n, pa.string()),
            vector,
            pa.array(served.astype("datetime64[us]")),
        ]
        return pa.Table.from_arrays(columns, schema=prediction_schema(names))


@dataclass(frozen=True)
class Prediction:
    """One answered transaction, as the recovery path rebuilds it (from the online store's answers)."""

    transaction: Transaction
    score: float
    alert: bool
    threshold: float
    model_id: str
    features: Mapping[str, float]
    served_at: dt.datetime  # naive UTC


def predictions_table(rows: Sequence[Prediction]) -> pa.Table:
    """``rows`` as the table's rows (vectors with different names: their union, missing ones null)."""
    names = list(dict.fromkeys(name for row in rows for name in row.features))
    target = prediction_schema(names)
    txs = [row.transaction for row in rows]
    data = {
        schema.TRANSACTION_ID: [t.transaction_id for t in txs],
        schema.TX_DATETIME: [t.tx_datetime for t in txs],
        schema.CUSTOMER_ID: [t.customer_id for t in txs],
        schema.TERMINAL_ID: [t.terminal_id for t in txs],
        schema.TX_AMOUNT: [float(t.amount) for t in txs],
        SCORE: [float(r.score) for r in rows],
        ALERT: [bool(r.alert) for r in rows],
        THRESHOLD: [float(r.threshold) for r in rows],
        MODEL_ID: [r.model_id for r in rows],
        FEATURES: [dict(r.features) for r in rows],
        SERVED_AT: [r.served_at for r in rows],
    }
    return pa.Table.from_arrays([pa.array(data[f.name], f.type) for f in target], schema=target)


def log_table(lake: Lake) -> AppendTable:
    return AppendTable(lake, TABLE, schema.PARTITION_COLUMN, schema.TX_DATETIME)


class PredictionLog:
    """The service's writer: ``append`` each committed batch's answers; they reach the lake in
    whole files at least every ``max_rows`` rows or ``max_seconds`` (checked at each append), and
    at ``flush``/``close`` (call one at shutdown; a quiet service should call ``flush`` now and then).

    Appending a transaction again never makes a second row in what readers see.
    """

    def __init__(self, lake: Lake, *, max_rows: int = 50_000, max_seconds: float = 60.0) -> None:
        self.lake = lake
        self._buffer = BufferedAppender(log_table(lake), max_rows, max_seconds, prepare=first_of_each)

    @property
    def pending(self) -> int:
        """Rows not committed yet."""
        return self._buffer.pending

    def append(self, batch: PredictionBatch | pa.Table) -> int:
        """Keep a batch's answers; returns the rows this call committed (0 while they wait)."""
        return self._buffer.append(batch.to_arrow() if isinstance(batch, PredictionBatch) else batch)

    def flush(self) -> int:
        """Commit every waiting row; returns how many."""
        return self._buffer.flush()

    def close(self) -> None:
        self.flush()

    def __enter__(self) -> PredictionLog:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def first_of_each(table: pa.Table) -> pa.Table:
    """``table`` with only the first row of each TRANSACTION_ID (in their order)."""
    ids = np.asarray(table[schema.TRANSACTION_ID].to_numpy())
    _, first = np.unique(ids, return_index=True)
    if len(first) == len(ids):
        return table
    return table.take(np.sort(first))


def write_missing(lake: Lake, rows: pa.Table | Sequence[Prediction]) -> int:
    """Commit the rows whose transaction the log lacks (the recovery path); returns how many.

    ``rows`` are answers recovered from elsewhere (the online store's, after a crash lost the rows
    a ``PredictionLog`` held in memory); those already committed, and repeats, are left out.
    """
    table = rows if isinstance(rows, pa.Table) else predictions_table(rows)
    if table.num_rows == 0:
        return 0
    import pyarrow.compute as pc

    log = log_table(lake)
    days = pc.cast(table[schema.TX_DATETIME], pa.date32())
    dataset = log.dataset(pc.min(days).as_py(), pc.max(days).as_py())
    if dataset is not None:
        present = dataset.to_table(columns=[schema.TRANSACTION_ID, schema.PARTITION_COLUMN])
        seen = pc.binary_join_element_wise(
            pc.cast(present[schema.PARTITION_COLUMN], pa.string()),
            pc.cast(present[schema.TRANSACTION_ID], pa.string()),
            "/",
        )
        keys = pc.binary_join_element_wise(
            pc.cast(days, pa.string()), pc.cast(table[schema.TRANSACTION_ID], pa.string()), "/"
        )
        table = table.filter(pc.invert(pc.is_in(keys, value_set=seen)))
    table = first_of_each(table)
    log.append(table)
    return int(table.num_rows)


def view_sql(source: str) -> str:
    """Each transaction of ``source`` (the raw rows, with ``tx_date``) once: its first served row."""
    columns = ", ".join([*FIXED.names, FEATURES, SERVED_AT, schema.PARTITION_COLUMN])
    return (
        f"SELECT {columns} FROM (\n"
        f"  SELECT *, ROW_NUMBER() OVER (PARTITION BY {schema.PARTITION_COLUMN}, {schema.TRANSACTION_ID}"
        f" ORDER BY {FIRST_SERVED}) AS copy_rank\n"
        f"  FROM {source}\n) AS copies WHERE copy_rank = 1"
    )


def register(
    con: duckdb.DuckDBPyConnection, lake: Lake, start: dt.date | None = None, end: dt.date | None = None
) -> bool:
    """Views ``predictions`` (each transaction once) and ``predictions_log`` (every committed row) of
    days ``start .. end`` in ``con``; False (no views) when the log has no such day."""
    dataset = log_table(lake).dataset(start, end)
    if dataset is None:
        return False
    con.register(f"{LOG_VIEW}_dataset", lake.for_sql(dataset))
    con.execute(f"CREATE OR REPLACE VIEW {LOG_VIEW} AS SELECT * FROM {LOG_VIEW}_dataset")
    con.execute(f"CREATE OR REPLACE VIEW {TABLE} AS {view_sql(LOG_VIEW)}")
    return True


def read(lake: Lake, start: dt.date | None = None, end: dt.date | None = None) -> pa.Table:
    """The log of days ``start .. end``: each transaction once, in (TX_DATETIME, TRANSACTION_ID) order
    (an empty table when there is none)."""
    import duckdb

    con = duckdb.connect()
    if not register(con, lake, start, end):
        return prediction_schema([]).append(pa.field(schema.PARTITION_COLUMN, pa.date32())).empty_table()
    order = f"ORDER BY {schema.TX_DATETIME}, {schema.TRANSACTION_ID}"
    return con.sql(f"SELECT * FROM {TABLE} {order}").to_arrow_table()


def compact(lake: Lake, day: dt.date) -> int:
    """Rewrite a day of the log as one file, each transaction once; returns the files it replaced."""
    return log_table(lake).compact(day, _first_served)


def _first_served(table: pa.Table) -> pa.Table:
    import pyarrow.compute as pc

    order = [(SERVED_AT, "ascending"), (MODEL_ID, "ascending"), (SCORE, "ascending")]
    return first_of_each(table.take(pc.sort_indices(table, order)))
