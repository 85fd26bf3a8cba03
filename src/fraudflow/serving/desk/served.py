"""What the service answered on some days: the lake's prediction log and the answers not committed yet.

The service commits its answers to the prediction log every few seconds (``serving.served_log``);
the desk shows the answers still waiting too, so an alert is on the page as soon as it is answered.
The waiting batches are read before the lake: a batch committed in between is then in both, and
each transaction is kept once (its first row), never lost.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fraudflow import schema
from fraudflow.lake import Lake
from fraudflow.records import US_PER_DAY, to_us
from fraudflow.store import predictions
from fraudflow.store.predictions import PredictionBatch

_EPOCH_DAY = dt.date(1970, 1, 1)


@dataclass(frozen=True)
class Served:
    """Answered transactions as columns, in (TX_DATETIME, TRANSACTION_ID) order; ``vectors`` holds the
    features ``names`` (NaN where a row lacks one), empty (n, 0) when they were not asked for."""

    tx_id: np.ndarray  # int64
    ts_us: np.ndarray  # int64, TX_DATETIME in microseconds
    customer: np.ndarray  # int64
    terminal: np.ndarray  # int64
    amount: np.ndarray  # float64
    score: np.ndarray  # float64
    alert: np.ndarray  # bool
    threshold: np.ndarray  # float64
    model_id: np.ndarray  # object (str)
    vectors: np.ndarray  # float64 (n, len(names))
    names: list[str]

    def __len__(self) -> int:
        return len(self.tx_id)

    @property
    def day(self) -> np.ndarray:
        """Each row's day, as days since the epoch (int64)."""
        day: np.ndarray = self.ts_us // US_PER_DAY
        return day

    def take(self, rows: np.ndarray) -> Served:
        return _make([getattr(self, f)[rows] for f in _COLUMNS], self.vectors[rows], self.names)


_COLUMNS = ("tx_id", "ts_us", "customer", "terminal", "amount", "score", "alert", "threshold", "model_id")


def _make(columns: Sequence[np.ndarray], vectors: np.ndarray, names: Sequence[str]) -> Served:
    tx_id, ts_us, customer, terminal, amount, score, alert, threshold, model_id = columns
    return Served(tx_id, ts_us, customer, terminal, amount, score, alert, threshold, model_id, vectors, list(names))


def day_number(day: dt.date) -> int:
    """``day`` as days since the epoch (``Served.day``'s unit)."""
    return (day - _EPOCH_DAY).days


def day_of(number: int) -> dt.date:
    return _EPOCH_DAY + dt.timedelta(days=int(number))


def read(
    lake: Lake,
    pending: Sequence[PredictionBatch],
    start: dt.date,
    end: dt.date,
    names: Sequence[str] = (),
) -> Served:
    """The answers to transactions of days ``start .. end``: the ``pending`` batches' and the log's."""
    parts = [_from_batches(pending, start, end, names), _from_log(lake, start, end, names)]
    joined = _joined(parts, names)
    _, first = np.unique(joined.tx_id, return_index=True)  # each transaction once: its first row
    kept = joined.take(np.sort(first))
    return kept.take(np.lexsort((kept.tx_id, kept.ts_us)))


def newest_day(lake: Lake, pending: Sequence[PredictionBatch]) -> dt.date | None:
    """The newest day with an answer (waiting or in the log); None before any."""
    days = [day_of(int(b.txs.ts_us.max()) // US_PER_DAY) for b in pending if len(b.txs)]
    logged = predictions.log_table(lake).days()
    return max([*days, *logged[-1:]], default=None)


def logged_days(lake: Lake, pending: Sequence[PredictionBatch]) -> list[dt.date]:
    """The days with answers, ascending."""
    days = {day_of(d) for b in pending for d in np.unique(b.txs.ts_us // US_PER_DAY).tolist()}
    return sorted(days | set(predictions.log_table(lake).days()))


def _from_batches(batches: Sequence[PredictionBatch], start: dt.date, end: dt.date, names: Sequence[str]) -> Served:
    lo, hi = to_us(dt.datetime.combine(start, dt.time())), to_us(dt.datetime.combine(end, dt.time())) + US_PER_DAY
    parts = []
    for batch in batches:
        ts = batch.txs.ts_us
        rows = np.flatnonzero((ts >= lo) & (ts < hi))
        if not len(rows):
            continue
        scores = np.asarray(batch.scores, dtype=np.float64)[rows]
        alerts = scores >= batch.threshold if batch.alerts is None else np.asarray(batch.alerts, dtype=bool)[rows]
        given = list(batch.feature_names)
        vectors = np.full((len(rows), len(names)), np.nan)
        for j, name in enumerate(names):
            if name in given:
                vectors[:, j] = np.asarray(batch.vectors)[rows, given.index(name)]
        n = len(rows)
        parts.append(
            Served(
                batch.txs.tx_id[rows],
                ts[rows],
                batch.txs.customer[rows],
                batch.txs.terminal[rows],
                np.asarray(batch.txs.amount, dtype=np.float64)[rows],
                scores,
                alerts,
                np.full(n, batch.threshold),
                np.full(n, batch.model_id, dtype=object),
                vectors,
                list(names),
            )
        )
    return _joined(parts, names)


def _from_log(lake: Lake, start: dt.date, end: dt.date, names: Sequence[str]) -> Served:
    import duckdb

    con = duckdb.connect()
    if not predictions.register(con, lake, start, end):
        return _joined([], names)
    present = {
        f.name
        for f in con.sql(f"SELECT {predictions.FEATURES} FROM {predictions.TABLE} LIMIT 0")
        .to_arrow_table()
        .schema.field(predictions.FEATURES)
        .type
    }
    vector = [f'{predictions.FEATURES}."{name}"' if name in present else "CAST(NULL AS DOUBLE)" for name in names]
    fixed = [
        schema.TRANSACTION_ID,
        f"epoch_us({schema.TX_DATETIME})",
        schema.CUSTOMER_ID,
        schema.TERMINAL_ID,
        schema.TX_AMOUNT,
        predictions.SCORE,
        predictions.ALERT,
        predictions.THRESHOLD,
        predictions.MODEL_ID,
    ]
    table = con.sql(f"SELECT {', '.join(fixed + vector)} FROM {predictions.TABLE}").to_arrow_table()
    columns = [table.column(i).to_numpy() for i in range(len(fixed))]
    vectors = (
        np.column_stack(
            [table.column(len(fixed) + j).to_numpy(zero_copy_only=False).astype(np.float64) for j in range(len(names))]
        )
        if names
        else np.empty((table.num_rows, 0))
    )
    return Served(
        columns[0].astype(np.int64),
        columns[1].astype(np.int64),
        columns[2].astype(np.int64),
        columns[3].astype(np.int64),
        columns[4].astype(np.float64),
        columns[5].astype(np.float64),
        columns[6].astype(bool),
        columns[7].astype(np.float64),
        np.asarray(table.column(8).to_pylist(), dtype=object),
        vectors,
        list(names),
    )


def _joined(parts: list[Served], names: Sequence[str]) -> Served:
    if not parts:
        empty_int = np.empty(0, dtype=np.int64)
        empty_float = np.empty(0, dtype=np.float64)
        return Served(
            empty_int,
            empty_int,
            empty_int,
            empty_int,
            empty_float,
            empty_float,
            np.empty(0, dtype=bool),
            empty_float,
            np.empty(0, dtype=object),
            np.empty((0, len(names))),
            list(names),
        )
    return _make(
        [np.concatenate([getattr(p, f) for p in parts]) for f in _COLUMNS],
        np.concatenate([p.vectors for p in parts]),
        names,
    )
