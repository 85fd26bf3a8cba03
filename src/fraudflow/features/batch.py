"""Batch features: the features of a range of days, from the lake into the offline store.

Three engines compute the same definitions: ``compiled`` (the default: ``features.compiled``, numba
kernels, O(rows)), ``duckdb`` (the generated SQL of ``features.sql``) and ``spark`` (the same SQL
in Spark's dialect, for data beyond one machine, plugged in through ``fraudflow.engines``). Each
runs a ``FeatureJob``. Tests check them against each other and against the handbook's features.

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

from fraudflow import engines, schema
from fraudflow.errors import ConfigError, LakeError
from fraudflow.features import compiled, sql
from fraudflow.features.definitions import HANDBOOK, FeatureSet
from fraudflow.lake import Lake, open_lake
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


def compute(tx: pa.Table, feature_set: FeatureSet = HANDBOOK, engine: str = "compiled") -> pa.Table:
    """Features of every row of ``tx`` (time-ordered, ties by TRANSACTION_ID), in that order.

    Columns: TRANSACTION_ID, TX_DATETIME, then the features of ``feature_set``.
    """
    if engine == "compiled":
        return compiled.compute(tx, feature_set)
    if engine == "duckdb":
        return sql.compute_duckdb(tx, feature_set)
    if engine == "spark":
        raise ConfigError("the spark engine reads the lake itself: use build_features(..., engine='spark')")
    raise ConfigError(f"unknown feature engine {engine!r}; expected one of {ENGINES}")


def build_features(
    data: str | os.PathLike[str] | Lake,
    feature_set: FeatureSet = HANDBOOK,
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
    lake = open_lake(data)
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
    offline.register(lake, feature_set, replace=rebuild)
    if rebuild:
        days = available
    job = FeatureJob(lake, feature_set, tuple(days), tuple(available), engine, spark_master, progress or _quiet)
    return FeatureSummary(run(job), len(days), time.perf_counter() - t0, engine, feature_set.version)


@dataclass(frozen=True)
class FeatureJob:
    """One run of a feature engine: compute and write the features of ``days``."""

    lake: Lake
    feature_set: FeatureSet
    days: tuple[dt.date, ...]
    available: tuple[dt.date, ...]  # every day of the lake: the history comes from these
    engine: str  # the engine's name, as registered
    spark_master: str | None
    progress: Progress  # called with ("days", done, total)


class FeatureEngine(Protocol):
    """What a batch feature engine implements (registered in ``fraudflow.engines``, "features"):
    run ``job`` and return the rows written."""

    def __call__(self, job: FeatureJob) -> int: ...


def build_local(job: FeatureJob) -> int:
    """The local engines (``compiled``, ``duckdb``): batches of days within memory."""
    written = rows = 0
    for batch in _batches(job.lake, job.days, job.feature_set.history_days):
        rows += _build_batch(job, batch)
        written += len(batch)
        job.progress("days", written, len(job.days))
    return rows


def _quiet(stage: str, done: int, total: int) -> None:
    """The progress of a job nobody watches."""


def _batches(lake: Lake, days: tuple[dt.date, ...], history: int) -> list[tuple[dt.date, ...]]:
    """Split ``days`` so that each batch, its history included, stays under BATCH_ROWS rows."""
    import pyarrow.parquet as pq

    sample = days[len(days) // 2]
    with lake.fs.open(lake.partition_files("transactions", sample)[0], "rb") as f:
        per_day = max(1, pq.ParquetFile(f).metadata.num_rows)
    size = max(1, BATCH_ROWS // per_day - history)
    return [days[i : i + size] for i in range(0, len(days), size)]


def _build_batch(job: FeatureJob, batch: tuple[dt.date, ...]) -> int:
    lake, feature_set = job.lake, job.feature_set
    first = batch[0] - dt.timedelta(days=feature_set.history_days)
    wanted = set(batch)
    read = [d for d in job.available if first <= d <= batch[-1]]
    tx = schema.time_ordered(lake.read_partitions("transactions", read, columns=list(schema.INPUT_COLUMNS)))
    feats = compute(tx, feature_set, job.engine)
    dates = schema.numpy_column(feats[schema.TX_DATETIME]).astype("datetime64[D]")
    write_time = schema.arrow_array(np.full(feats.num_rows, offline.write_time_now()), pa.timestamp("us"))
    feats = feats.add_column(2, offline.WRITE_TIME, write_time)
    # the store's schema (columns not null): the types already match, so no cast (pyarrow.compute)
    feats = pa.Table.from_arrays(feats.columns, schema=offline.feature_schema(feature_set))
    bounds = np.searchsorted(dates, np.array(sorted(wanted), dtype="datetime64[D]"))
    ends = np.searchsorted(dates, np.array(sorted(wanted), dtype="datetime64[D]"), side="right")

    def write(i: int) -> int:
        day = sorted(wanted)[i]
        part = feats.slice(int(bounds[i]), int(ends[i] - bounds[i]))
        lake.write_partition(offline.TABLE, day, part)
        return int(part.num_rows)

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return sum(pool.map(write, range(len(wanted))))
