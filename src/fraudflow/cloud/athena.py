"""Athena/Glue DDL for the lake: external Parquet tables with partition projection on tx_date.

Partition projection lets Athena compute the partitions from the table properties, so new days are
queryable the moment they are written, with no MSCK REPAIR or crawler.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from fraudflow import schema as s
from fraudflow.errors import ConfigError
from fraudflow.features.definitions import FeatureSet
from fraudflow.lake import Lake
from fraudflow.store.offline import feature_schema
from fraudflow.training.datasets import query_features, training_set_sql
from fraudflow.training.protocol import Kind

#: Athena's (Hive's) type for each Arrow type the lake writes. Every timestamp unit is Athena's
#: ``timestamp`` (TX_DATETIME is written in ns, WRITE_TIME in us).
ATHENA_TYPES = {
    pa.int64(): "bigint",
    pa.float64(): "double",
    **{pa.timestamp(u): "timestamp" for u in ("ms", "us", "ns")},
}


def _columns(schema: pa.Schema) -> list[tuple[str, str]]:
    """The DDL columns of a written schema: the tests compare them with the files' own schema."""
    unknown = [f"{f.name}: {f.type}" for f in schema if f.type not in ATHENA_TYPES]
    if unknown:
        raise ConfigError(f"no Athena type for {', '.join(unknown)}")
    return [(f.name, ATHENA_TYPES[f.type]) for f in schema]


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
    tx_cols = _columns(s.TRANSACTIONS)
    feat_cols = _columns(feature_schema(fs))
    return [
        _table("transactions", lake.url + "/transactions", tx_cols, first),
        _table("features", lake.url + "/features", feat_cols, first),
    ]


def script(lake: Lake, start: dt.date, kind: Kind = "train") -> str:
    """The lake's DDL and the query of the set starting ``start``, as one Athena script.

    The features are the lake's (``datasets.query_features``); partitions are projected from the
    lake's first day (the handbook world's while the lake is empty).
    """
    days = lake.partitions("transactions")
    if days:
        first = days[0]
    else:
        from fraudflow.simulate.world import WorldParams

        first = WorldParams().start_date
    fs = query_features(lake)
    statements = [*ddl(lake, fs, first), training_set_sql(start, fs.names, kind=kind, dialect="athena")]
    return ";\n\n".join(statements) + ";"
