"""Simulation on Spark: the two heavy phases of ``simulate.generate``'s frame, spread over tasks.

1. Chunks of customers (``Run.chunks``) are spread over Spark tasks; each runs the compiled kernel
   (``simulate.generate.World.run``, the local engine's) and emits its rows with their day, plus
   one summary row (day -1: transactions before ``from_day``, last day seen). The rows stay in
   Spark (persisted) until phase 2.
2. Rows are grouped by day; a task orders a day (time, then customer, then emission) and writes
   its partition with the frame's ``DayWriter``, as the local engine does.

The frame does the rest on the driver (world files, fraud plan, numbering, summary), so each day's
rows, order, labels and TRANSACTION_IDs are those of the local engine, and so are the files.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from fraudflow.distributed.lake_io import lake_args
from fraudflow.distributed.session import spark_job, spark_session
from fraudflow.errors import ConfigError
from fraudflow.lake import Lake
from fraudflow.simulate.frauds import N_SCENARIOS
from fraudflow.simulate.generate import ROW_COLUMNS, DayWriter, Run, Totals, World
from fraudflow.simulate.kernel import SECONDS_PER_DAY
from fraudflow.simulate.world import WorldParams

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

ROWS = "day INT, seconds BIGINT, customer INT, terminal INT, amount DOUBLE, seq INT"
COLUMNS = ["day", *ROW_COLUMNS]
SUMMARY_DAY = -1  # the summary row of a chunk: seconds = rows before from_day, seq = last day seen
SCENARIOS = tuple(f"s{i}" for i in range(N_SCENARIOS))  # per written day: its rows of each fraud scenario
_WORLDS: dict[str, World] = {}  # per Python worker: profiles and terminal lists, built once


def _world(params: dict[str, Any]) -> World:
    key = repr(sorted(params.items()))
    if key not in _WORLDS:
        _WORLDS.clear()
        _WORLDS[key] = World(WorldParams.from_json(params))
    return _WORLDS[key]


@contextmanager
def simulate(run: Run) -> Iterator[SparkSimulation]:
    """The spark engine (``simulate.generate.SimulationEngine``, registered in ``fraudflow.engines``).

    Spark sets the parallelism and spills: ``run.workers`` and ``run.spill`` are refused.
    """
    if run.workers is not None or run.spill is not None:
        raise ConfigError("with the spark engine, Spark sets the parallelism (--spark-master local[N]) and spills")
    simulation = SparkSimulation(run, spark_session(run.spark_master))
    try:
        yield simulation
    finally:
        if simulation.rows is not None:
            simulation.rows.unpersist()


class SparkSimulation:
    """The spark engine opened for one run; phase 1's rows stay persisted in Spark until phase 2."""

    def __init__(self, run: Run, spark: SparkSession) -> None:
        self.run = run
        self.spark = spark
        self.rows: DataFrame | None = None

    def run_customers(self, world: World) -> Totals:
        from pyspark import StorageLevel
        from pyspark.sql import functions as F

        run, spark = self.run, self.spark
        chunks = run.chunks(tasks=spark.sparkContext.defaultParallelism * 4)
        world_json, from_day, to_day = run.params.to_json(), run.from_day, run.params.nb_days

        def run_chunks(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            import numba

            numba.set_num_threads(1)  # Spark's tasks are the parallelism
            here = _world(world_json)
            for batch in batches:
                for lo, hi in zip(batch.column(0).to_pylist(), batch.column(1).to_pylist(), strict=True):
                    b = here.run(np.arange(lo, hi), from_day, to_day)
                    day = (b.seconds // SECONDS_PER_DAY).astype(np.int32)
                    columns = [day, *(getattr(b, c) for c in ROW_COLUMNS)]
                    yield pa.RecordBatch.from_arrays([pa.array(c) for c in columns], names=COLUMNS)
                    yield pa.RecordBatch.from_arrays(
                        [pa.array(v, t) for v, t in _summary_row(b.n_before, b.last_day)], names=COLUMNS
                    )

        ranges = spark.createDataFrame([(c.start, c.stop) for c in chunks], "lo BIGINT, hi BIGINT")
        self.rows = ranges.repartition(len(chunks)).mapInArrow(run_chunks, ROWS).persist(StorageLevel.MEMORY_AND_DISK)
        stats = self.rows.groupBy("day").agg(
            F.count("*").alias("n"), F.sum("seconds").alias("s"), F.max("seq").alias("m")
        )
        with spark_job("simulate", spark, run.progress):
            per_day = {int(r["day"]): r for r in stats.collect()}
        run.progress("customers", run.params.n_customers, run.params.n_customers)
        meta = per_day.pop(SUMMARY_DAY)
        counts = [int(per_day[d]["n"]) if d in per_day else 0 for d in run.days]
        return Totals(counts, rows_before=int(meta["s"]), last_day=int(meta["m"]))

    def write_days(self, write: DayWriter) -> np.ndarray:
        from pyspark.sql import functions as F

        assert self.rows is not None, "run_customers first"
        url, options = lake_args(self.run.lake)

        def one(day_rows: pa.Table) -> pa.Table:
            day = int(day_rows["day"][0].as_py())
            t = day_rows.sort_by([("seconds", "ascending"), ("customer", "ascending"), ("seq", "ascending")])
            scenarios = write(Lake(url, options), day, {c: t[c].to_numpy() for c in ROW_COLUMNS})
            return pa.table({k: pa.array([int(n)], pa.int64()) for k, n in zip(SCENARIOS, scenarios, strict=True)})

        days = self.rows.where(F.col("day") != SUMMARY_DAY).groupBy("day")
        with spark_job("write days", self.spark, self.run.progress):
            written = days.applyInArrow(one, ", ".join(f"{k} BIGINT" for k in SCENARIOS)).collect()
        n_days = len(self.run.days)
        self.run.progress("days", n_days, n_days)
        scenarios = np.zeros(len(SCENARIOS), dtype=np.int64)
        for r in written:
            scenarios += [r[k] for k in SCENARIOS]
        return scenarios


def _summary_row(n_before: int, last_day: int) -> list[tuple[list[Any], pa.DataType]]:
    return [
        ([SUMMARY_DAY], pa.int32()),
        ([n_before], pa.int64()),
        ([0], pa.int32()),
        ([0], pa.int32()),
        ([0.0], pa.float64()),
        ([last_day], pa.int32()),
    ]
