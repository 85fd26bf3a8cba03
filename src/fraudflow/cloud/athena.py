"""Athena/Glue DDL for the lake: external Parquet tables with partition projection on tx_date.

Partition projection lets Athena compute the partitions from the table properties, so new days are
queryable the moment they are written, with no MSCK REPAIR or crawler.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from fraudflow import schema
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


def _columns(written: pa.Schema) -> list[tuple[str, str]]:
    """The DDL columns of a written schema: the tests compare them with the files' own schema."""
    unknown = [f"{f.name}: {f.type}" for f in written if f.type not in ATHENA_TYPES]
    if unknown:
        raise ConfigError(f"no Athena type for {', '.join(unknown)}")
    return [(f.name, ATHENA_TYPES[f.type]) for f in written]


def _table(name: str, location: str, columns: list[tuple[str, str]], first: dt.date) -> str:
    cols = ",\n  ".join(f"`{c}` {t}" for c, t in columns)
    return (
        f"CREATE EXTERNAL TABLE IF NOT EXISTS {name} (\n  {cols}\n)\n"
        f"PARTITIONED BY (`{schema.PARTITION_COLUMN}` date)\n"
        "STORED AS PARQUET\n"
        f"LOCATION '{location}/'\n"
        "TBLPROPERTIES (\n"
        "  'projection.enabled' = 'true',\n"
        f"  'projection.{schema.PARTITION_COLUMN}.type' = 'date',\n"
        f"  'projection.{schema.PARTITION_COLUMN}.format' = 'yyyy-MM-dd',\n"
        f"  'projection.{schema.PARTITION_COLUMN}.range' = '{first.isoformat()},NOW',\n"
        f"  'projection.{schema.PARTITION_COLUMN}.interval' = '1',\n"
        f"  'projection.{schema.PARTITION_COLUMN}.interval.unit' = 'DAYS',\n"
        f"  'storage.location.template' = '{location}/{schema.PARTITION_COLUMN}=${{{schema.PARTITION_COLUMN}}}/'\n"
        ")"
    )


def ddl(lake: Lake, feature_set: FeatureSet, first: dt.date) -> list[str]:
    """CREATE EXTERNAL TABLE statements for ``transactions`` and ``features``."""
    tx_cols = _columns(schema.TRANSACTIONS)
    feat_cols = _columns(feature_schema(feature_set))
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
    feature_set = query_features(lake)
    statements = [
        *ddl(lake, feature_set, first),
        training_set_sql(start, feature_set.names, kind=kind, dialect="athena"),
    ]
    return ";\n\n".join(statements) + ";"
