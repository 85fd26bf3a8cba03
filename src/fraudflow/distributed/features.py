"""Features on Spark: the feature set's generated SQL (Spark dialect), written day by day.

The query is ``features.sql.features_sql(feature_set, dialect="spark")``: the same definitions, windows and
peer corrections as DuckDB's, so the values are the same (tests compare them row by row). Each
day's rows are then written by a Spark task with the lake's own writer, in the offline store's
order and schema, so a Spark-built partition reads exactly like a locally built one.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from fraudflow import schema
from fraudflow.distributed.lake_io import from_spark, lake_args, read_table
from fraudflow.distributed.session import spark_job, spark_session
from fraudflow.features.batch import FeatureJob
from fraudflow.features.definitions import FeatureSet
from fraudflow.features.sql import features_sql
from fraudflow.lake import Lake
from fraudflow.store import offline

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def compute(spark: SparkSession, tx: DataFrame, feature_set: FeatureSet) -> DataFrame:
    """Features of every row of ``tx`` (columns ``schema.INPUT_COLUMNS``), by Spark SQL."""
    view = f"fraudflow_tx_{uuid.uuid4().hex}"
    tx.createOrReplaceTempView(view)
    return spark.sql(features_sql(feature_set, source=view, dialect="spark"))


def run(job: FeatureJob) -> int:
    """The spark feature engine (``features.batch.FeatureEngine``, registered in ``fraudflow.engines``).

    One Spark job over all of ``job.days``; returns the rows written.
    """
    rows = build(spark_session(job.spark_master), job)
    job.progress("days", len(job.days), len(job.days))
    return rows


def build(spark: SparkSession, job: FeatureJob) -> int:
    """Compute and write the features of ``job.days``; returns the rows written."""
    from pyspark.sql import functions as F

    lake, feature_set, days = job.lake, job.feature_set, list(job.days)
    first = days[0] - dt.timedelta(days=feature_set.history_days)
    read = [d for d in job.available if first <= d <= days[-1]]
    tx = read_table(spark, lake, "transactions", read, list(schema.INPUT_COLUMNS))
    feats = compute(spark, tx, feature_set)
    feats = feats.withColumn(schema.PARTITION_COLUMN, F.to_date(schema.TX_DATETIME)).where(
        F.col(schema.PARTITION_COLUMN).isin(days)
    )
    url, options = lake_args(lake)
    target = offline.feature_schema(feature_set)
    write_time = offline.write_time_now()

    def write(day_rows: pa.Table) -> pa.Table:
        day = day_rows[schema.PARTITION_COLUMN][0].as_py()
        t = schema.time_ordered(day_rows)
        t = t.append_column(offline.WRITE_TIME, pa.array(np.full(t.num_rows, write_time), pa.timestamp("us")))
        Lake(url, options).write_partition(offline.TABLE, day, from_spark(t, target))
        return pa.table({"day": pa.array([day], pa.date32()), "rows": pa.array([t.num_rows], pa.int64())})

    with spark_job("features", spark, job.progress):
        written = feats.groupBy(schema.PARTITION_COLUMN).applyInArrow(write, "day DATE, rows BIGINT").collect()
    return sum(int(r["rows"]) for r in written)
