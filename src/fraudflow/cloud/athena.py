"""Athena/Glue DDL for the lake: external Parquet tables with partition projection on tx_date.

Partition projection lets Athena compute the partitions from the table properties, so new days are
queryable the moment they are written, with no MSCK REPAIR or crawler.
"""

from __future__ import annotations

import datetime as dt

from fraudflow import schema as s
from fraudflow.features.definitions import FeatureSet
from fraudflow.lake import Lake

ATHENA_TYPES = {"int64": "bigint", "float64": "double", "timestamp": "timestamp"}


def _table(name: str, location: str, columns: list[tuple[str, str]], first: dt.date) -> str:
    cols = ",\n  ".join(f"`{c}` {t}" for c, t in columns)
    return (
        f"CREATE EXTERNAL TABLE IF NOT EXISTS {name} (\n  {cols}\n)\n"
        f"PARTITIONED BY (`{s.PARTITION_COLUMN}` date)\n"
        "STORED AS PARQUET\n"
        f"LOCATION '{location}/'\n"
        "TBLPROPERTIES (\n"
        "  'projection.enabled' = 'true',\n"
        f"  'projection.{s.PARTITION_COLUMN}.type' = 'date',\n"
        f"  'projection.{s.PARTITION_COLUMN}.format' = 'yyyy-MM-dd',\n"
        f"  'projection.{s.PARTITION_COLUMN}.range' = '{first.isoformat()},NOW',\n"
        f"  'projection.{s.PARTITION_COLUMN}.interval' = '1',\n"
        f"  'projection.{s.PARTITION_COLUMN}.interval.unit' = 'DAYS',\n"
        f"  'storage.location.template' = '{location}/{s.PARTITION_COLUMN}=${{{s.PARTITION_COLUMN}}}/'\n"
        ")"
    )


def ddl(lake: Lake, fs: FeatureSet, first: dt.date) -> list[str]:
    """CREATE EXTERNAL TABLE statements for ``transactions`` and ``features``."""
    tx_cols = [
        (
            f.name,
            "timestamp" if f.name == s.TX_DATETIME else ATHENA_TYPES["int64"] if str(f.type) == "int64" else "double",
        )
        for f in s.TRANSACTIONS
    ]
    feat_cols = [(s.TRANSACTION_ID, "bigint"), (s.TX_DATETIME, "timestamp"), ("WRITE_TIME", "timestamp")]
    feat_cols += [(f.name, ATHENA_TYPES[f.dtype]) for f in fs.features]
    return [
        _table("transactions", lake.url + "/transactions", tx_cols, first),
        _table("features", lake.url + "/features", feat_cols, first),
    ]
