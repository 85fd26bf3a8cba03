"""Features on Spark: the feature set's generated SQL (Spark dialect), written day by day.

The query is ``features.sql.features_sql(fs, dialect="spark")``: the same definitions, windows and
peer corrections as DuckDB's, so the values are the same (tests compare them row by row). Each
day's rows are then written by a Spark task with the lake's own writer, in the offline store's
order and schema, so a Spark-built partition reads exactly like a locally built one.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from fraudflow import schema as s
from fraudflow.distributed.lake_io import from_spark, lake_args, read_table
from fraudflow.distributed.session import spark_job, spark_session
from fraudflow.features.definitions import FeatureSet
from fraudflow.features.sql import INPUT, features_sql
from fraudflow.lake import Lake
from fraudflow.store import offline

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def compute(spark: SparkSession, tx: DataFrame, fs: FeatureSet) -> DataFrame:
    """Features of every row of ``tx`` (columns of ``features.sql.INPUT``), by Spark SQL."""
    view = f"fraudflow_tx_{uuid.uuid4().hex}"
    tx.createOrReplaceTempView(view)
    return spark.sql(features_sql(fs, source=view, dialect="spark"))


def run(
    lake: Lake,
    fs: FeatureSet,
    days: list[dt.date],
    available: list[dt.date],
    progress: Callable[[str, int, int], None],
    *,
    engine: str,
    spark_master: str | None,
) -> int:
    """The spark feature engine (``features.batch.FeatureEngine``, registered in ``fraudflow.engines``).

    One Spark job over all of ``days``; returns the rows written.
    """
    rows = build(spark_session(spark_master), lake, fs, days, available, progress)
    progress("days", len(days), len(days))
    return rows


def build(
    spark: SparkSession,
    lake: Lake,
    fs: FeatureSet,
    days: list[dt.date],
    available: list[dt.date],
    progress: Callable[[str, int, int], None] | None = None,
) -> int:
    """Compute and write the features of ``days``; returns the rows written."""
    from pyspark.sql import functions as F

    first = days[0] - dt.timedelta(days=fs.history_days)
    tx = read_table(spark, lake, "transactions", [d for d in available if first <= d <= days[-1]], list(INPUT))
    feats = compute(spark, tx, fs)
    feats = feats.withColumn(s.PARTITION_COLUMN, F.to_date(s.TX_DATETIME)).where(F.col(s.PARTITION_COLUMN).isin(days))
    url, options = lake_args(lake)
    target = offline.feature_schema(fs)
    write_time = offline.write_time_now()

    def write(day_rows: pa.Table) -> pa.Table:
        day = day_rows[s.PARTITION_COLUMN][0].as_py()
        t = day_rows.sort_by([(s.TX_DATETIME, "ascending"), (s.TRANSACTION_ID, "ascending")])
        t = t.append_column(offline.WRITE_TIME, pa.array(np.full(t.num_rows, write_time), pa.timestamp("us")))
        Lake(url, options).write_partition(offline.TABLE, day, from_spark(t, target))
        return pa.table({"day": pa.array([day], pa.date32()), "rows": pa.array([t.num_rows], pa.int64())})

    with spark_job("features", spark, progress):
        written = feats.groupBy(s.PARTITION_COLUMN).applyInArrow(write, "day DATE, rows BIGINT").collect()
    return sum(int(r["rows"]) for r in written)
