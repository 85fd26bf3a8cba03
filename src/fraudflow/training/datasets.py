"""Training and test sets by SQL over the offline store, point-in-time correct.

The query is written once (DuckDB dialect) and printed for Spark or Athena/Trino with sqlglot, so
the set a user builds in Athena is the set fraudflow trains on. The test rule is the handbook's
(spec/EVALUATION.md): the test days are ``start + days + delay ..`` and, from test day T, every
customer with a known fraud in ``[start, T - delay - 1]`` is left out (already blocked).

Labels, point in time by arrival: on a lake with a ``labels`` table (``store.labels``) a set's
TX_FRAUD is each transaction's label in force at the set's cut-off C (the latest whose LABEL_TIME
<= C; unlabelled: 0, genuine, as a fraud team treats a transaction nobody reported), C being
``label_cutoff`` unless given. On a lake without one, TX_FRAUD is the transactions' own (the
simulator's truth), as before. The simulator's TX_FRAUD_SCENARIO, the known-fraud rule of the test
sets and the features that count known frauds (the terminal risk windows, with their delay) stay on
the truth.
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
from fraudflow.store import labels, offline
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
    labels_as_of: dt.datetime | None = None,
) -> str:
    """The SQL of a training or test set over tables ``transactions`` and ``features``.

    With ``labels_as_of`` (a cut-off C), also over table ``labels``: each transaction's TX_FRAUD is
    its label in force at C (``store.labels.latest_sql``), 0 when none had arrived by then.
    """
    check_dialect(dialect)
    first, last = split_days(start, kind, days, delay)
    label = f"t.{schema.TX_FRAUD}" if labels_as_of is None else f"COALESCE(l.{schema.TX_FRAUD}, 0) AS {schema.TX_FRAUD}"
    cols = ",\n  ".join(
        [
            f"f.{schema.TRANSACTION_ID}",
            f"f.{schema.TX_DATETIME}",
            f"t.{schema.CUSTOMER_ID}",
            f"t.{schema.TERMINAL_ID}",
            f"t.{schema.PARTITION_COLUMN}",
            *(f"f.{name}" for name in features),
            label,
            f"t.{schema.TX_FRAUD_SCENARIO}",
        ]
    )
    ctes: list[str] = []
    joins = [
        f"FROM features AS f\nJOIN transactions AS t\n  ON f.{schema.TRANSACTION_ID} = t.{schema.TRANSACTION_ID}"
        f" AND f.{schema.PARTITION_COLUMN} = t.{schema.PARTITION_COLUMN}"
    ]
    where = f"t.{schema.PARTITION_COLUMN} BETWEEN DATE '{first}' AND DATE '{last}'"
    order = f"ORDER BY f.{schema.TX_DATETIME}, f.{schema.TRANSACTION_ID}"
    if labels_as_of is not None:
        known = labels.latest_sql(labels_as_of).replace("\n", "\n  ")
        ctes.append(f"known_labels AS (\n  {known}\n)")
        joins.append(f"LEFT JOIN known_labels AS l ON t.{schema.TRANSACTION_ID} = l.{schema.TRANSACTION_ID}")
    if kind == "test":
        known_until = last - dt.timedelta(days=delay + 1)
        ctes.append(
            f"known_frauds AS (\n"
            f"  SELECT {schema.CUSTOMER_ID}, MIN({schema.PARTITION_COLUMN}) AS first_fraud_date\n"
            f"  FROM transactions\n"
            f"  WHERE {schema.TX_FRAUD} = 1"
            f" AND {schema.PARTITION_COLUMN} BETWEEN DATE '{start}' AND DATE '{known_until}'\n"
            f"  GROUP BY {schema.CUSTOMER_ID}\n)"
        )
        joins.append(f"LEFT JOIN known_frauds AS k ON t.{schema.CUSTOMER_ID} = k.{schema.CUSTOMER_ID}")
        where += (
            f"\n  AND (k.first_fraud_date IS NULL"
            f" OR k.first_fraud_date > t.{schema.PARTITION_COLUMN} - INTERVAL '{delay + 1}' DAY)"
        )
    with_ = f"WITH {', '.join(ctes)}\n" if ctes else ""
    sql = f"{with_}SELECT\n  {cols}\n{chr(10).join(joins)}\nWHERE {where}\n{order}"
    if dialect == "duckdb":
        return sql
    return sqlglot.transpile(sql, read="duckdb", write=DIALECTS[dialect], pretty=True)[0]


def label_cutoff(start: dt.date, kind: Kind = "train", days: int = SPLIT_DAYS, delay: int = DELAY_DAYS) -> dt.datetime:
    """The default cut-off of a set's labels: the end of its last day plus ``delay`` days, when the
    protocol deems them mature (a training set's: the first test day, 00:00, when its model is fitted)."""
    last = split_days(start, kind, days, delay)[1]
    return dt.datetime.combine(last + dt.timedelta(days=delay + 1), dt.time())


def labels_cutoff_of(
    lake: Lake,
    start: dt.date,
    kind: Kind,
    days: int,
    delay: int,
    labels_as_of: dt.datetime | None,
) -> dt.datetime | None:
    """The labels cut-off a set of ``lake`` uses: ``labels_as_of``, else ``label_cutoff``, when the
    lake has a labels table; None (the transactions' TX_FRAUD) when it has none."""
    if not labels.exists(lake):
        if labels_as_of is not None:
            raise ConfigError(f"{lake.url} has no labels table: a labels cut-off needs one (`fraudflow labels`)")
        return None
    return labels_as_of or label_cutoff(start, kind, days, delay)


def training_set_query(
    lake: Lake,
    start: dt.date,
    *,
    kind: Kind = "train",
    days: int = SPLIT_DAYS,
    delay: int = DELAY_DAYS,
    dialect: str = "duckdb",
    labels_as_of: dt.datetime | None = None,
) -> str:
    """The set's SQL over the lake's features (``query_features``) and labels (``labels_cutoff_of``)."""
    names = query_features(lake).names
    cutoff = labels_cutoff_of(lake, start, kind, days, delay, labels_as_of)
    return training_set_sql(start, names, kind=kind, days=days, delay=delay, dialect=dialect, labels_as_of=cutoff)


def query_features(lake: Lake) -> FeatureSet:
    """The feature set a query over the lake selects: the registered one, the handbook's while none is."""
    return registry.registered(lake) or HANDBOOK


def connect(lake: Lake) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with views ``transactions``, ``features`` and ``labels`` (when the lake has
    them) over the lake (any fsspec URL)."""
    con = duckdb.connect()
    for table in ("transactions", offline.TABLE):
        if not lake.partitions(table):
            continue
        con.register(f"{table}_dataset", lake.for_sql(lake.dataset(table)))
        con.execute(f"CREATE VIEW {table} AS SELECT * FROM {table}_dataset")
    labels.register(con, lake)
    return con


def training_set(
    data: str | Lake,
    start: dt.date,
    *,
    kind: Kind = "train",
    days: int = SPLIT_DAYS,
    delay: int = DELAY_DAYS,
    version: str | None = None,
    labels_as_of: dt.datetime | None = None,
) -> pa.Table:
    """Run the training-set query on the lake's offline store with DuckDB (labels: ``labels_cutoff_of``)."""
    lake = open_lake(data)
    feature_set = registry.required(lake)
    if version is not None:
        registry.check_version(lake, version)
    cutoff = labels_cutoff_of(lake, start, kind, days, delay, labels_as_of)
    sql = training_set_sql(start, feature_set.names, kind=kind, days=days, delay=delay, labels_as_of=cutoff)
    return connect(lake).sql(sql).to_arrow_table()
