"""Athena/Glue DDL for the lake: external Parquet tables with partition projection on their day.

``transactions`` and ``features`` always; when the lake holds them, the prediction log (table
``predictions_log``, every committed row, and view ``predictions``, each transaction once) and
``labels`` (projected on ``label_date``, the day a label arrived).

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
from fraudflow.store import labels, predictions
from fraudflow.store.offline import feature_schema
from fraudflow.training.datasets import query_features, training_set_query
from fraudflow.training.protocol import Kind

#: Athena's (Hive's) type for each Arrow type the lake writes. Every timestamp unit is Athena's
#: ``timestamp`` (TX_DATETIME is written in ns, WRITE_TIME in us).
ATHENA_TYPES = {
    pa.int64(): "bigint",
    pa.float64(): "double",
    pa.string(): "string",
    pa.bool_(): "boolean",
    **{pa.timestamp(u): "timestamp" for u in ("ms", "us", "ns")},
}


def _type(written: pa.DataType) -> str | None:
    """Athena's type for an Arrow type (a struct's fields each by name); None: it has none."""
    if pa.types.is_struct(written):
        fields = [(f.name, _type(f.type)) for f in written]
        return None if any(t is None for _, t in fields) else f"struct<{','.join(f'{n}:{t}' for n, t in fields)}>"
    return ATHENA_TYPES.get(written)


def _columns(written: pa.Schema) -> list[tuple[str, str]]:
    """The DDL columns of a written schema: the tests compare them with the files' own schema."""
    types = [(f.name, _type(f.type)) for f in written]
    unknown = [f"{f.name}: {f.type}" for f, (_, t) in zip(written, types, strict=True) if t is None]
    if unknown:
        raise ConfigError(f"no Athena type for {', '.join(unknown)}")
    return [(name, t) for name, t in types if t is not None]


def _table(
    name: str, location: str, columns: list[tuple[str, str]], first: dt.date, day: str = schema.PARTITION_COLUMN
) -> str:
    cols = ",\n  ".join(f"`{c}` {t}" for c, t in columns)
    return (
        f"CREATE EXTERNAL TABLE IF NOT EXISTS {name} (\n  {cols}\n)\n"
        f"PARTITIONED BY (`{day}` date)\n"
        "STORED AS PARQUET\n"
        f"LOCATION '{location}/'\n"
        "TBLPROPERTIES (\n"
        "  'projection.enabled' = 'true',\n"
        f"  'projection.{day}.type' = 'date',\n"
        f"  'projection.{day}.format' = 'yyyy-MM-dd',\n"
        f"  'projection.{day}.range' = '{first.isoformat()},NOW',\n"
        f"  'projection.{day}.interval' = '1',\n"
        f"  'projection.{day}.interval.unit' = 'DAYS',\n"
        f"  'storage.location.template' = '{location}/{day}=${{{day}}}/'\n"
        ")"
    )


def log_ddl(lake: Lake) -> list[str]:
    """The prediction log's and the labels' DDL, for those of them the lake holds (their columns as
    written: the log's FEATURES struct has the fields its files have)."""
    statements = []
    log = predictions.log_table(lake)
    dataset = log.dataset()
    if dataset is not None:
        written = pa.schema([f for f in dataset.schema if f.name != schema.PARTITION_COLUMN])
        location = lake.url + "/" + predictions.TABLE
        statements.append(_table(predictions.LOG_VIEW, location, _columns(written), log.days()[0]))
        statements.append(
            f"CREATE OR REPLACE VIEW {predictions.TABLE} AS\n{predictions.view_sql(predictions.LOG_VIEW)}"
        )
    days = labels.table(lake).days()
    if days:
        location = lake.url + "/" + labels.TABLE
        statements.append(_table(labels.TABLE, location, _columns(labels.LABELS), days[0], labels.PARTITION))
    return statements


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

    The features are the lake's (``datasets.query_features``), the labels too when it has them
    (``datasets.labels_cutoff_of``); partitions are projected from the lake's first day (the
    handbook world's while the lake is empty).
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
        *log_ddl(lake),
        training_set_query(lake, start, kind=kind, dialect="athena"),
    ]
    return ";\n\n".join(statements) + ";"
