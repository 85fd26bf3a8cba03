"""The batch SQL of a feature set, generated from its definitions (DuckDB or Spark SQL).

Windows are RANGE frames over the transaction time in microseconds. A frame that ends at the
current row also holds later rows of the same entity with the same timestamp (SQL peers); the
spec's window never does, so their count and sum are taken back out, from one small window over
(entity, timestamp) ordered by TRANSACTION_ID. Each feature is its aggregation's SQL form
(``features.aggregations``) over an inner query holding each window aggregate the forms ask for,
once.
"""

from __future__ import annotations

import pyarrow as pa

from fraudflow import schema
from fraudflow.errors import ConfigError
from fraudflow.features.definitions import Feature, FeatureSet
from fraudflow.records import US_PER_DAY

TS = "TS_US"

#: The time in microseconds, in each dialect (Spark's timestamps are read in UTC).
EPOCH_US = {
    "duckdb": f"epoch_us({schema.TX_DATETIME})",
    "spark": f"unix_micros({schema.TX_DATETIME})",
}


def features_sql(feature_set: FeatureSet, source: str = "tx", dialect: str = "duckdb") -> str:
    """SELECT TRANSACTION_ID, TX_DATETIME and every feature of ``feature_set`` from relation ``source``."""
    query = _Query(feature_set, dialect)
    cols = ",\n  ".join(f"{query.feature(name)} AS {name}" for name in feature_set.names)
    inner = ",\n    ".join(f"{expr} AS {name}" for name, expr in query.windows.items())
    inner = f",\n    {inner}" if inner else ""
    return (
        f"WITH base AS (SELECT {', '.join(schema.INPUT_COLUMNS)}, {EPOCH_US[dialect]} AS {TS} FROM {source}),\n"
        f"agg AS (SELECT *{inner}\n  FROM base)\n"
        f"SELECT {schema.TRANSACTION_ID}, {schema.TX_DATETIME},\n  {cols}\nFROM agg"
    )


def expression(f: Feature, feature_set: FeatureSet | None = None, dialect: str = "duckdb") -> str:
    """The SQL expression of one feature over the inner query's columns (a ratio's set ``feature_set``
    holds the feature it divides by)."""
    return _Query(feature_set or FeatureSet((f,), f.name), dialect).feature(f.name)


def compute_duckdb(tx: pa.Table, feature_set: FeatureSet) -> pa.Table:
    """Features of every row of ``tx`` by DuckDB, in (time, id) order."""
    import duckdb  # only this engine needs it: the compiled one starts without it

    con = duckdb.connect()
    con.register("tx", tx.select(list(schema.INPUT_COLUMNS)))
    sql = f"{features_sql(feature_set)}\nORDER BY {schema.TX_DATETIME}, {schema.TRANSACTION_ID}"
    return con.sql(sql).to_arrow_table()


class _Query:
    """A feature set's SQL in one dialect (``aggregations.SqlInputs``): each feature's expression,
    and the inner query's window columns, each written once, as the expressions ask for them."""

    def __init__(self, feature_set: FeatureSet, dialect: str) -> None:
        if dialect not in EPOCH_US:
            raise ConfigError(f"unknown feature SQL dialect {dialect!r}; expected one of {sorted(EPOCH_US)}")
        self.dialect = dialect
        self.windows: dict[str, str] = {}  # inner column -> window aggregate
        self.expressions: dict[str, str] = {}
        for f in feature_set.features:
            self.expressions[f.name] = f.rule.sql(f, self)

    def feature(self, name: str) -> str:
        return self.expressions[name]

    def count(self, f: Feature) -> str:
        n = self._window(f"N_{_key(f)}", f"COUNT(*) OVER ({_frame(f)})")
        if f.delay_days:
            return n
        return f"({n} - {self._window(f'N_{f.entity}_PEERS', f'COUNT(*) OVER ({_peers(f)})')})"

    def total(self, f: Feature) -> str:
        total = self._window(f"S_{f.column}_{_key(f)}", f"COALESCE(SUM({f.column}) OVER ({_frame(f)}), 0)")
        if f.delay_days:
            return total
        peers = self._window(f"S_{f.column}_{f.entity}_PEERS", f"COALESCE(SUM({f.column}) OVER ({_peers(f)}), 0)")
        return f"({total} - {peers})"

    def _window(self, name: str, aggregate: str) -> str:
        self.windows[name] = aggregate
        return name


def _frame(f: Feature) -> str:
    lo = f.history_days * US_PER_DAY - 1
    hi = "CURRENT ROW" if f.delay_days == 0 else f"{f.delay_days * US_PER_DAY} PRECEDING"
    return f"PARTITION BY {f.entity} ORDER BY {TS} RANGE BETWEEN {lo} PRECEDING AND {hi}"


def _peers(f: Feature) -> str:
    """The rows after this one with its entity and timestamp: in the SQL frame, not in the window."""
    following = "ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING"
    return f"PARTITION BY {f.entity}, {TS} ORDER BY {schema.TRANSACTION_ID} {following}"


def _key(f: Feature) -> str:
    return f"{f.entity}_{f.window_days}_{f.delay_days}"
