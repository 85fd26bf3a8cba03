"""Simulation on Spark: customers spread over tasks, days labelled and written by tasks.

1. Chunks of customers are spread over Spark tasks; each runs the compiled kernel
   (``simulate.generate.World.run``, the local engine's) and emits its rows with their day, plus
   one summary row (day -1: transactions before ``from_day``, last day seen).
2. The driver plans the fraud scenarios (they involve a few compromised customers and terminals
   per day: ``frauds.plan_frauds``) and numbers the days from their row counts.
3. Rows are grouped by day; a task orders a day (time, then customer, then emission), labels it
   and writes its partition with the lake's writer (``generate.day_table``).

Each day's rows, order, labels and TRANSACTION_IDs are those of the local engine, so the
partition files are too.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from fraudflow.distributed.lake_io import lake_args
from fraudflow.distributed.session import spark_job, spark_session
from fraudflow.errors import ConfigError
from fraudflow.lake import Lake
from fraudflow.simulate.frauds import plan_frauds
from fraudflow.simulate.generate import Progress, Summary, World, day_table, write_world
from fraudflow.simulate.kernel import SECONDS_PER_DAY
from fraudflow.simulate.world import WorldParams

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

ROWS = "day INT, seconds BIGINT, customer INT, terminal INT, amount DOUBLE, seq INT"
COLUMNS = ["day", "seconds", "customer", "terminal", "amount", "seq"]
SUMMARY_DAY = -1  # the summary row of a chunk: seconds = rows before from_day, seq = last day seen
OUT = ("rows", "s1", "s2", "s3")  # per written day: rows, frauds of scenarios 1, 2, 3
_WORLDS: dict[str, World] = {}  # per Python worker: profiles and terminal lists, built once


def _world(params: dict[str, Any]) -> World:
    key = repr(sorted(params.items()))
    if key not in _WORLDS:
        _WORLDS.clear()
        _WORLDS[key] = World(WorldParams.from_json(params))
    return _WORLDS[key]


def run(
    lake: Lake,
    params: WorldParams,
    *,
    from_day: int,
    workers: int | None,
    chunk_customers: int | None,
    spill: bool | None,
    progress: Progress | None,
    spark_master: str | None,
) -> Summary:
    """The spark simulation engine (``simulate.generate.SimulationEngine``, registered in ``fraudflow.engines``)."""
    if workers is not None or spill is not None:
        raise ConfigError("with the spark engine, Spark sets the parallelism (--spark-master local[N]) and spills")
    return generate(
        spark_session(spark_master),
        lake,
        params,
        from_day=from_day,
        chunk_customers=chunk_customers,
        progress=progress,
    )


def generate(
    spark: SparkSession,
    lake: Lake,
    params: WorldParams,
    *,
    from_day: int = 0,
    chunk_customers: int | None = None,
    progress: Progress | None = None,
) -> Summary:
    """Generate days ``from_day..params.nb_days-1`` of ``params`` into ``lake`` with Spark.

    Called by ``simulate.generate(..., engine="spark")``, which checks the arguments.
    """
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    report = progress or (lambda stage, done, total: None)
    t0 = time.perf_counter()
    world = World(params)
    summary = Summary()
    summary.objects_written += write_world(lake, world, from_day)
    n_days = params.nb_days - from_day
    tasks = spark.sparkContext.defaultParallelism * 4
    size = chunk_customers or min(world.chunk_size(n_days), math.ceil(params.n_customers / tasks))
    chunks = [(lo, min(lo + size, params.n_customers)) for lo in range(0, params.n_customers, size)]
    world_json = params.to_json()
    to_day = params.nb_days

    def simulate(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import numba

        numba.set_num_threads(1)  # Spark's tasks are the parallelism
        here = _world(world_json)
        for batch in batches:
            for lo, hi in zip(batch.column(0).to_pylist(), batch.column(1).to_pylist(), strict=True):
                b = here.run(np.arange(lo, hi), from_day, to_day)
                yield pa.RecordBatch.from_arrays(
                    [
                        pa.array((b.seconds // SECONDS_PER_DAY).astype(np.int32)),
                        pa.array(b.seconds),
                        pa.array(b.customer),
                        pa.array(b.terminal),
                        pa.array(b.amount),
                        pa.array(b.seq),
                    ],
                    names=COLUMNS,
                )
                yield pa.RecordBatch.from_arrays(
                    [pa.array(v, t) for v, t in _summary_row(b.n_before, b.last_day)], names=COLUMNS
                )

    ranges = spark.createDataFrame(chunks, "lo BIGINT, hi BIGINT").repartition(len(chunks))
    rows = ranges.mapInArrow(simulate, ROWS).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        stats = rows.groupBy("day").agg(F.count("*").alias("n"), F.sum("seconds").alias("s"), F.max("seq").alias("m"))
        with spark_job("simulate", spark, report):
            per_day = {int(r["day"]): r for r in stats.collect()}
        report("customers", params.n_customers, params.n_customers)
        meta = per_day.pop(SUMMARY_DAY)
        n_before, max_day = int(meta["s"]), int(meta["m"])
        counts = [int(per_day[d]["n"]) if d in per_day else 0 for d in range(from_day, to_day)]
        offsets = dict(zip(range(from_day, to_day), (np.cumsum([0, *counts]) + n_before).tolist(), strict=False))
        plan = plan_frauds(
            params.n_customers, params.n_terminals, from_day, to_day, max_day, lambda ids, d: world.run(ids, 0, d)
        )
        url, options = lake_args(lake)

        def write(day_rows: pa.Table) -> pa.Table:
            day = int(day_rows["day"][0].as_py())
            t = day_rows.sort_by([("seconds", "ascending"), ("customer", "ascending"), ("seq", "ascending")])
            cols = {c: t[c].to_numpy() for c in COLUMNS[1:]}
            table, scenario = day_table(params, day, cols, plan, int(offsets[day]))
            Lake(url, options).write_partition("transactions", params.start_date + dt.timedelta(days=day), table)
            n = np.bincount(scenario, minlength=4)
            figures = [table.num_rows, *n[1:4].tolist()]
            return pa.table(
                {
                    "day": pa.array([day], pa.int32()),
                    **{k: pa.array([v], pa.int64()) for k, v in zip(OUT, figures, strict=True)},
                }
            )

        days = rows.where(F.col("day") != SUMMARY_DAY).groupBy("day")
        with spark_job("write days", spark, report):
            written = days.applyInArrow(write, "day INT, " + ", ".join(f"{k} BIGINT" for k in OUT)).collect()
    finally:
        rows.unpersist()
    for r in written:
        for k in (1, 2, 3):
            summary.frauds_by_scenario[k] += int(r[f"s{k}"])
    summary.first_transaction_id = n_before
    summary.rows = sum(counts)
    summary.days = len(written)
    summary.objects_written += summary.days
    report("days", n_days, n_days)
    summary.seconds = time.perf_counter() - t0
    return summary


def _summary_row(n_before: int, last_day: int) -> list[tuple[list[Any], pa.DataType]]:
    return [
        ([SUMMARY_DAY], pa.int32()),
        ([n_before], pa.int64()),
        ([0], pa.int32()),
        ([0], pa.int32()),
        ([0.0], pa.float64()),
        ([last_day], pa.int32()),
    ]
