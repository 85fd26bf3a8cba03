"""Lake tables as Spark DataFrames, read by Spark tasks through fraudflow's own lake reader.

Spark tasks open the partition files with the same fsspec filesystem as the local engines, so
every lake URL fraudflow reads (a folder, ``s3://``, ``s3a://``) works without Hadoop's S3
connector, and only what a partition's manifest lists is read. Timestamps become Spark
timestamps (microseconds, UTC).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from fraudflow.errors import LakeError
from fraudflow.lake import Lake
from fraudflow.schema import PARTITION_COLUMN

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def spark_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` as Spark holds it: timestamps in microseconds, UTC."""
    return pa.schema(
        [pa.field(f.name, pa.timestamp("us", tz="UTC") if pa.types.is_timestamp(f.type) else f.type) for f in schema]
    )


def to_spark(table: pa.Table) -> pa.Table:
    return table.cast(spark_schema(table.schema))


def from_spark(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """A table Spark produced, back in the lake's types (``schema``), columns in its order."""
    columns = []
    for field in schema:
        col = table[field.name]
        if pa.types.is_timestamp(field.type) and col.type.tz is not None:
            col = col.cast(pa.timestamp(col.type.unit))  # UTC wall time, as stored
        columns.append(col.cast(field.type))
    return pa.Table.from_arrays(columns, schema=schema)


def ddl(schema: pa.Schema) -> str:
    """A Spark DDL string for an Arrow schema of ints, doubles, dates and timestamps."""
    names = {pa.int64(): "BIGINT", pa.int32(): "INT", pa.float64(): "DOUBLE", pa.date32(): "DATE"}
    parts = []
    for f in spark_schema(schema):
        if pa.types.is_timestamp(f.type):
            parts.append(f"{f.name} TIMESTAMP")
        elif f.type in names:
            parts.append(f"{f.name} {names[f.type]}")
        else:
            raise LakeError(f"column {f.name}: type {f.type} has no Spark mapping here")
    return ", ".join(parts)


def lake_args(lake: Lake) -> tuple[str, dict[str, Any]]:
    """What a Spark task needs to open the same lake."""
    return lake.url, dict(lake.storage_options)


def read_table(
    spark: SparkSession, lake: Lake, table: str, days: list[dt.date], columns: list[str] | None = None
) -> DataFrame:
    """Days ``days`` of ``table`` as a DataFrame (with the ``tx_date`` column), one task per file."""
    files = [(path, day) for day in days for path in lake.partition_files(table, day)]
    if not files:
        raise LakeError(f"{lake.url}/{table}: no partitions to read between {days[0]} and {days[-1]}")
    with lake.fs.open(files[0][0], "rb") as f:
        schema = pq.read_schema(f)
    if columns is not None:
        missing = [c for c in columns if c not in schema.names]
        if missing:
            raise LakeError(f"{files[0][0]}: no column(s) {missing}")
        schema = pa.schema([schema.field(c) for c in columns])
    schema = schema.append(pa.field(PARTITION_COLUMN, pa.date32()))
    url, options = lake_args(lake)
    wanted = [c for c in schema.names if c != PARTITION_COLUMN]

    def read(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        here = Lake(url, options)
        for batch in batches:
            for path, day in zip(batch.column(0).to_pylist(), batch.column(1).to_pylist(), strict=True):
                try:
                    with here.fs.open(path, "rb") as f:
                        t = pq.read_table(f, columns=wanted)
                except (OSError, pa.ArrowException) as exc:
                    raise LakeError(f"{path}: could not read it as Parquet ({exc})") from exc
                t = t.append_column(PARTITION_COLUMN, pa.array([day] * t.num_rows, pa.date32()))
                yield from to_spark(t).to_batches()

    paths = spark.createDataFrame([(p, d) for p, d in files], f"path STRING, {PARTITION_COLUMN} DATE")
    paths = paths.repartition(min(len(files), spark.sparkContext.defaultParallelism * 4))
    return paths.mapInArrow(read, ddl(schema))
