"""Training and test sets by SQL over the offline store, point-in-time correct.

The query is written once (DuckDB dialect) and printed for Spark or Athena/Trino with sqlglot, so
the set a user builds in Athena is the set fraudflow trains on. The test rule is the handbook's
(spec/EVALUATION.md): the test days are ``start + days + delay ..`` and, from test day T, every
customer with a known fraud in ``[start, T - delay - 1]`` is left out (already blocked).
"""

from __future__ import annotations

import datetime as dt

import duckdb
import pyarrow as pa
import sqlglot

from fraudflow import schema
from fraudflow.errors import ConfigError
from fraudflow.features import registry
from fraudflow.features.definitions import HANDBOOK, FeatureSet
from fraudflow.lake import Lake, open_lake
from fraudflow.store import offline
from fraudflow.training.protocol import DELAY_DAYS, SPLIT_DAYS, Kind, split_days

#: the dialects the query is printed in: fraudflow's name -> sqlglot's
DIALECTS = {"duckdb": "duckdb", "spark": "spark", "athena": "athena", "trino": "trino"}


def check_dialect(name: str) -> None:
    """Raise ``ConfigError`` unless the query can be printed in dialect ``name``."""
    if name not in DIALECTS:
        raise ConfigError(f"unknown dialect {name!r}; expected one of {sorted(DIALECTS)}")


def training_set_sql(
    start: dt.date,
    features: list[str],
    *,
    kind: Kind = "train",
    days: int = SPLIT_DAYS,
    delay: int = DELAY_DAYS,
    dialect: str = "duckdb",
) -> str:
    """The SQL of a training or test set over tables ``transactions`` and ``features``."""
    check_dialect(dialect)
    first, last = split_days(start, kind, days, delay)
    cols = ",\n  ".join(
        [
            f"f.{schema.TRANSACTION_ID}",
            f"f.{schema.TX_DATETIME}",
            f"t.{schema.CUSTOMER_ID}",
            f"t.{schema.TERMINAL_ID}",
            f"t.{schema.PARTITION_COLUMN}",
            *(f"f.{name}" for name in features),
            f"t.{schema.TX_FRAUD}",
            f"t.{schema.TX_FRAUD_SCENARIO}",
        ]
    )
    join = (
        f"FROM features AS f\nJOIN transactions AS t\n  ON f.{schema.TRANSACTION_ID} = t.{schema.TRANSACTION_ID}"
        f" AND f.{schema.PARTITION_COLUMN} = t.{schema.PARTITION_COLUMN}"
    )
    where = f"t.{schema.PARTITION_COLUMN} BETWEEN DATE '{first}' AND DATE '{last}'"
    order = f"ORDER BY f.{schema.TX_DATETIME}, f.{schema.TRANSACTION_ID}"
    if kind == "train":
        sql = f"SELECT\n  {cols}\n{join}\nWHERE {where}\n{order}"
    else:
        known_until = last - dt.timedelta(days=delay + 1)
        sql = (
            f"WITH known_frauds AS (\n"
            f"  SELECT {schema.CUSTOMER_ID}, MIN({schema.PARTITION_COLUMN}) AS first_fraud_date\n"
            f"  FROM transactions\n"
            f"  WHERE {schema.TX_FRAUD} = 1"
            f" AND {schema.PARTITION_COLUMN} BETWEEN DATE '{start}' AND DATE '{known_until}'\n"
            f"  GROUP BY {schema.CUSTOMER_ID}\n)\n"
            f"SELECT\n  {cols}\n{join}\n"
            f"LEFT JOIN known_frauds AS k ON t.{schema.CUSTOMER_ID} = k.{schema.CUSTOMER_ID}\n"
            f"WHERE {where}\n  AND (k.first_fraud_date IS NULL"
            f" OR k.first_fraud_date > t.{schema.PARTITION_COLUMN} - INTERVAL '{delay + 1}' DAY)\n{order}"
        )
    if dialect == "duckdb":
        return sql
    return sqlglot.transpile(sql, read="duckdb", write=DIALECTS[dialect], pretty=True)[0]


def training_set_query(
    lake: Lake,
    start: dt.date,
    *,
    kind: Kind = "train",
    days: int = SPLIT_DAYS,
    delay: int = DELAY_DAYS,
    dialect: str = "duckdb",
) -> str:
    """The set's SQL over the lake's features (``query_features``)."""
    names = query_features(lake).names
    return training_set_sql(start, names, kind=kind, days=days, delay=delay, dialect=dialect)


def query_features(lake: Lake) -> FeatureSet:
    """The feature set a query over the lake selects: the registered one, the handbook's while none is."""
    return registry.registered(lake) or HANDBOOK


def connect(lake: Lake) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with views ``transactions`` and ``features`` over the lake (any fsspec URL)."""
    con = duckdb.connect()
    for table in ("transactions", offline.TABLE):
        if not lake.partitions(table):
            continue
        con.register(f"{table}_dataset", lake.dataset(table))
        con.execute(f"CREATE VIEW {table} AS SELECT * FROM {table}_dataset")
    return con


def training_set(
    data: str | Lake,
    start: dt.date,
    *,
    kind: Kind = "train",
    days: int = SPLIT_DAYS,
    delay: int = DELAY_DAYS,
    version: str | None = None,
) -> pa.Table:
    """Run the training-set query on the lake's offline store with DuckDB."""
    lake = open_lake(data)
    feature_set = registry.required(lake)
    if version is not None:
        registry.check_version(lake, version)
    sql = training_set_sql(start, feature_set.names, kind=kind, days=days, delay=delay)
    return connect(lake).sql(sql).to_arrow_table()
