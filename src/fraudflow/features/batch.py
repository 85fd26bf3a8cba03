"""The batch feature engine: features of a range of days, from the lake into the offline store.

Three engines compute the same definitions: ``compiled`` (the default: numba kernels, O(rows)),
``duckdb`` (the generated SQL of ``features.sql``) and ``spark`` (the same SQL in Spark's dialect,
for data beyond one machine, plugged in through ``fraudflow.engines``). Tests check them against each other and
against the handbook's published features.

A day's features need the transactions of the ``history_days`` (37) before it and never anything
after it, so new days are computed incrementally and a recomputed day replaces its partition.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pyarrow as pa

from fraudflow import engines
from fraudflow import schema as s
from fraudflow.errors import ConfigError, LakeError
from fraudflow.features import kernels
from fraudflow.features.definitions import DEFAULT, Feature, FeatureSet
from fraudflow.features.sql import INPUT, features_sql
from fraudflow.lake import Lake
from fraudflow.store import offline

ENGINES: tuple[str, ...] = engines.names("features")
BATCH_ROWS = 20_000_000  # rows computed at once (history included) before splitting by days
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class FeatureSummary:
    rows: int
    days: int
    seconds: float
    engine: str
    version: str

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def _timestamps_us(tx: pa.Table) -> np.ndarray:
    return s.numpy_column(tx[s.TX_DATETIME]).astype("datetime64[us]").view(np.int64)


def compute(tx: pa.Table, fs: FeatureSet = DEFAULT, engine: str = "compiled") -> pa.Table:
    """Features of every row of ``tx`` (time-ordered, ties by TRANSACTION_ID), in that order.

    Columns: TRANSACTION_ID, TX_DATETIME, then the features of ``fs``.
    """
    if engine == "compiled":
        return _compute_compiled(tx, fs)
    if engine == "duckdb":
        return _compute_duckdb(tx, fs)
    if engine == "spark":
        raise ConfigError("the spark engine reads the lake itself: use build_features(..., engine='spark')")
    raise ConfigError(f"unknown feature engine {engine!r}; expected one of {ENGINES}")


def _compute_duckdb(tx: pa.Table, fs: FeatureSet) -> pa.Table:
    import duckdb  # only this engine needs it: the compiled one starts without it

    con = duckdb.connect()
    con.register("tx", tx.select(list(INPUT)))
    sql = f"{features_sql(fs)}\nORDER BY {s.TX_DATETIME}, {s.TRANSACTION_ID}"
    return con.sql(sql).to_arrow_table()


def _compute_compiled(tx: pa.Table, fs: FeatureSet) -> pa.Table:
    tx = tx.combine_chunks()
    ts = _timestamps_us(tx)
    windows = _windows(tx, ts, [f for f in fs.features if f.is_window])
    weekend, night = kernels.calendar(ts)
    columns: list[np.ndarray] = []
    for f in fs.features:
        if f.aggregation == "ratio":
            columns.append(np.asarray(f.ratio(s.numpy_column(tx[f.column or ""]), columns[fs.names.index(f.of or "")])))
        elif f.aggregation == "value":
            columns.append(s.numpy_column(tx[f.column or ""]).astype(np.float64))
        elif f.aggregation == "weekend":
            columns.append(weekend)
        elif f.aggregation == "night":
            columns.append(night)
        else:
            n, total = windows[f.name]
            if f.aggregation == "count":
                columns.append(n)
            elif f.aggregation == "sum":
                columns.append(total)
            else:
                columns.append(np.divide(total, n, out=np.zeros(len(n)), where=n > 0))
    return pa.Table.from_arrays(
        [tx[s.TRANSACTION_ID], tx[s.TX_DATETIME], *map(s.arrow_array, columns)],
        names=[s.TRANSACTION_ID, s.TX_DATETIME, *fs.names],
    )


def _window_key(f: Feature, features: list[Feature]) -> tuple[str, str, int, int]:
    """(entity, column, history, delay); a count shares the pass of a sum over the same window."""
    column = f.column
    if column is None:
        same = [
            g.column
            for g in features
            if g.column and (g.entity, g.history_days, g.delay_days) == (f.entity, f.history_days, f.delay_days)
        ]
        column = same[0] if same else s.TX_AMOUNT
    return (f.entity or "", column, f.history_days, f.delay_days)


def _windows(tx: pa.Table, ts: np.ndarray, features: list[Feature]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Count and sum of every window feature (by name), one kernel pass per (entity, column)."""
    keys = {f.name: _window_key(f, features) for f in features}
    out = {}
    for entity in sorted({k[0] for k in keys.values()}):
        order, starts = kernels.group_by_entity(s.numpy_column(tx[entity]))
        ts_sorted = ts[order]
        for column in sorted({k[1] for k in keys.values() if k[0] == entity}):
            windows = sorted({k for k in keys.values() if k[:2] == (entity, column)})
            values = s.numpy_column(tx[column]).astype(np.float64)[order]
            lo = np.array([w[2] * kernels.US_PER_DAY for w in windows], dtype=np.int64)
            hi = np.array([w[3] * kernels.US_PER_DAY for w in windows], dtype=np.int64)
            counts, sums = kernels.window_count_sum(order, starts, ts_sorted, values, lo, hi)
            by_window = {w: (counts[j], sums[j]) for j, w in enumerate(windows)}
            out.update({name: by_window[k] for name, k in keys.items() if k in by_window})
    return out


def build_features(
    data: str | os.PathLike[str] | Lake,
    fs: FeatureSet = DEFAULT,
    *,
    from_date: dt.date | None = None,
    to_date: dt.date | None = None,
    engine: str = "compiled",
    rebuild: bool = False,
    progress: Progress | None = None,
    spark_master: str | None = None,
) -> FeatureSummary:
    """Compute the features of days ``from_date..to_date`` (default: every day) into the store.

    ``engine="spark"`` runs one Spark job over all the days (``spark_master``: default ``local[*]``).
    """
    run: FeatureEngine = engines.resolve("features", engine)
    lake = data if isinstance(data, Lake) else Lake(data)
    t0 = time.perf_counter()
    available = lake.partitions("transactions")
    if not available:
        raise LakeError(f"{lake.url}: no transactions; run `fraudflow generate` or `fraudflow ingest` first")
    days = [d for d in available if (from_date is None or d >= from_date) and (to_date is None or d <= to_date)]
    if not days:
        raise ConfigError(
            f"no transactions between {from_date} and {to_date} in {lake.url} "
            f"(it has {available[0]} .. {available[-1]})"
        )
    offline.register(lake, fs, replace=rebuild)
    if rebuild:
        days = available
    report = progress or (lambda stage, done, total: None)
    rows = run(lake, fs, days, available, report, engine=engine, spark_master=spark_master)
    return FeatureSummary(rows, len(days), time.perf_counter() - t0, engine, fs.version)


class FeatureEngine(Protocol):
    """What a batch feature engine implements (registered in ``fraudflow.engines``, "features").

    Compute and write the features of ``days`` (``available``: every day of the lake, for the
    history), reporting ``("days", done, total)``; return the rows written.
    """

    def __call__(
        self,
        lake: Lake,
        fs: FeatureSet,
        days: list[dt.date],
        available: list[dt.date],
        progress: Progress,
        *,
        engine: str,
        spark_master: str | None,
    ) -> int: ...


def build_local(
    lake: Lake,
    fs: FeatureSet,
    days: list[dt.date],
    available: list[dt.date],
    progress: Progress,
    *,
    engine: str,
    spark_master: str | None,
) -> int:
    """The local engines (``compiled``, ``duckdb``): batches of days within memory."""
    written = rows = 0
    for batch in _batches(lake, days, fs.history_days):
        rows += _build_batch(lake, fs, engine, batch, available)
        written += len(batch)
        progress("days", written, len(days))
    return rows


def _batches(lake: Lake, days: list[dt.date], history: int) -> list[list[dt.date]]:
    """Split ``days`` so that each batch, its history included, stays under BATCH_ROWS rows."""
    import pyarrow.parquet as pq

    sample = days[len(days) // 2]
    with lake.fs.open(lake.partition_files("transactions", sample)[0], "rb") as f:
        per_day = max(1, pq.ParquetFile(f).metadata.num_rows)
    size = max(1, BATCH_ROWS // per_day - history)
    return [days[i : i + size] for i in range(0, len(days), size)]


def _build_batch(lake: Lake, fs: FeatureSet, engine: str, batch: list[dt.date], available: list[dt.date]) -> int:
    first = batch[0] - dt.timedelta(days=fs.history_days)
    wanted = set(batch)
    read = [d for d in available if first <= d <= batch[-1]]
    tx = lake.read_partitions("transactions", read, columns=list(INPUT))
    tx = _time_ordered(tx)
    feats = compute(tx, fs, engine)
    dates = s.numpy_column(feats[s.TX_DATETIME]).astype("datetime64[D]")
    write_time = s.arrow_array(np.full(feats.num_rows, offline.write_time_now()), pa.timestamp("us"))
    feats = feats.add_column(2, offline.WRITE_TIME, write_time)
    # the store's schema (columns not null): the types already match, so no cast (pyarrow.compute)
    feats = pa.Table.from_arrays(feats.columns, schema=offline.feature_schema(fs))
    bounds = np.searchsorted(dates, np.array(sorted(wanted), dtype="datetime64[D]"))
    ends = np.searchsorted(dates, np.array(sorted(wanted), dtype="datetime64[D]"), side="right")

    def write(i: int) -> int:
        day = sorted(wanted)[i]
        part = feats.slice(int(bounds[i]), int(ends[i] - bounds[i]))
        lake.write_partition(offline.TABLE, day, part)
        return int(part.num_rows)

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return sum(pool.map(write, range(len(wanted))))


def _time_ordered(tx: pa.Table) -> pa.Table:
    ts = s.numpy_column(tx[s.TX_DATETIME])
    ids = s.numpy_column(tx[s.TRANSACTION_ID])
    if len(ts) < 2:
        return tx
    later = ts[1:] > ts[:-1]
    same = (ts[1:] == ts[:-1]) & (ids[1:] > ids[:-1])
    if bool(np.all(later | same)):
        return tx
    import pyarrow.compute as pc  # rarely needed; its import builds ~300 functions (40 ms)

    return tx.take(pc.sort_indices(tx, [(s.TX_DATETIME, "ascending"), (s.TRANSACTION_ID, "ascending")]))
