"""The batch SQL of a feature set, generated from its definitions (DuckDB or Spark SQL).

Windows are RANGE frames over the transaction time in microseconds. A frame that ends at the
current row also holds later rows of the same entity with the same timestamp (SQL peers); the
spec's window never does, so their count and sum are taken back out, from one small window over
(entity, timestamp) ordered by TRANSACTION_ID. Each distinct window aggregate is computed once
in an inner query and the features are derived from those columns.
"""

from __future__ import annotations

from fraudflow import schema as s
from fraudflow.errors import ConfigError
from fraudflow.features.definitions import Feature, FeatureSet
from fraudflow.records import NIGHT_LAST_HOUR, US_PER_DAY

TS = "TS_US"
INPUT = (s.TRANSACTION_ID, s.TX_DATETIME, s.CUSTOMER_ID, s.TERMINAL_ID, s.TX_AMOUNT, s.TX_FRAUD)

#: The only expressions the dialects spell differently (Spark's timestamps are read in UTC).
DIALECTS: dict[str, dict[str, str]] = {
    "duckdb": {
        "epoch_us": f"epoch_us({s.TX_DATETIME})",
        "weekend": f"dayofweek({s.TX_DATETIME}) IN (0, 6)",  # Sunday = 0
    },
    "spark": {
        "epoch_us": f"unix_micros({s.TX_DATETIME})",
        "weekend": f"dayofweek({s.TX_DATETIME}) IN (1, 7)",  # Sunday = 1
    },
}


def _frame(f: Feature) -> str:
    lo = (f.window_days + f.delay_days) * US_PER_DAY - 1
    hi = "CURRENT ROW" if f.delay_days == 0 else f"{f.delay_days * US_PER_DAY} PRECEDING"
    return f"PARTITION BY {f.entity} ORDER BY {TS} RANGE BETWEEN {lo} PRECEDING AND {hi}"


def _peers(entity: str) -> str:
    return f"PARTITION BY {entity}, {TS} ORDER BY {s.TRANSACTION_ID} ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING"


def _key(f: Feature) -> str:
    return f"{f.entity}_{f.window_days}_{f.delay_days}"


def _aggregates(fs: FeatureSet) -> dict[str, str]:
    """Inner columns: name -> window aggregate, each distinct one once."""
    cols: dict[str, str] = {}
    for f in fs.features:
        if not f.is_window:
            continue
        k = _key(f)
        cols[f"N_{k}"] = f"COUNT(*) OVER ({_frame(f)})"
        if f.delay_days == 0:
            cols[f"N_{f.entity}_PEERS"] = f"COUNT(*) OVER ({_peers(f.entity or '')})"
        if f.aggregation != "count":
            cols[f"S_{f.column}_{k}"] = f"COALESCE(SUM({f.column}) OVER ({_frame(f)}), 0)"
            if f.delay_days == 0:
                cols[f"S_{f.column}_{f.entity}_PEERS"] = f"COALESCE(SUM({f.column}) OVER ({_peers(f.entity or '')}), 0)"
    return cols


def _count(f: Feature) -> str:
    n = f"N_{_key(f)}"
    return f"({n} - N_{f.entity}_PEERS)" if f.delay_days == 0 else n


def _sum(f: Feature) -> str:
    total = f"S_{f.column}_{_key(f)}"
    return f"({total} - S_{f.column}_{f.entity}_PEERS)" if f.delay_days == 0 else total


def expression(f: Feature, fs: FeatureSet | None = None, dialect: str = "duckdb") -> str:
    """The SQL expression of one feature over the inner query's columns."""
    if f.aggregation == "ratio":
        assert fs is not None, "a ratio needs its feature set"
        den = expression(fs.features[fs.names.index(f.of or "")], fs, dialect)
        return f"CASE WHEN ({den}) = 0 THEN 0.0 ELSE CAST({f.column} AS DOUBLE) / ({den}) END"
    if f.aggregation == "value":
        return f"CAST({f.column} AS DOUBLE)"
    if f.aggregation == "weekend":
        return f"CAST({DIALECTS[dialect]['weekend']} AS BIGINT)"
    if f.aggregation == "night":
        return f"CAST(hour({s.TX_DATETIME}) <= {NIGHT_LAST_HOUR} AS BIGINT)"
    if f.aggregation == "count":
        return f"CAST({_count(f)} AS BIGINT)"
    if f.aggregation == "sum":
        return f"CAST({_sum(f)} AS DOUBLE)"
    n = _count(f)
    return f"CASE WHEN {n} = 0 THEN 0.0 ELSE CAST({_sum(f)} AS DOUBLE) / {n} END"


def features_sql(fs: FeatureSet, source: str = "tx", dialect: str = "duckdb") -> str:
    """SELECT TRANSACTION_ID, TX_DATETIME and every feature of ``fs`` from relation ``source``."""
    if dialect not in DIALECTS:
        raise ConfigError(f"unknown feature SQL dialect {dialect!r}; expected one of {sorted(DIALECTS)}")
    inner = ",\n    ".join(f"{expr} AS {name}" for name, expr in _aggregates(fs).items())
    inner = f",\n    {inner}" if inner else ""
    cols = ",\n  ".join(f"{expression(f, fs, dialect)} AS {f.name}" for f in fs.features)
    return (
        f"WITH base AS (SELECT {', '.join(INPUT)}, {DIALECTS[dialect]['epoch_us']} AS {TS} FROM {source}),\n"
        f"agg AS (SELECT *{inner}\n  FROM base)\n"
        f"SELECT {s.TRANSACTION_ID}, {s.TX_DATETIME},\n  {cols}\nFROM agg"
    )
