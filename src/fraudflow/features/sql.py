"""The batch SQL of a feature set, generated from its definitions (DuckDB dialect).

Windows are RANGE frames over the transaction time in microseconds. A frame that ends at the
current row also holds later rows of the same entity with the same timestamp (SQL peers); the
spec's window never does, so their count and sum are taken back out, from one small window over
(entity, timestamp) ordered by TRANSACTION_ID. Each distinct window aggregate is computed once
in an inner query and the features are derived from those columns.
"""

from __future__ import annotations

from fraudflow import schema as s
from fraudflow.features.definitions import Feature, FeatureSet

US_PER_DAY = 86_400_000_000
TS = "TS_US"
INPUT = (s.TRANSACTION_ID, s.TX_DATETIME, s.CUSTOMER_ID, s.TERMINAL_ID, s.TX_AMOUNT, s.TX_FRAUD)


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


def expression(f: Feature, fs: FeatureSet | None = None) -> str:
    """The SQL expression of one feature over the inner query's columns."""
    if f.aggregation == "ratio":
        assert fs is not None, "a ratio needs its feature set"
        den = expression(fs.features[fs.names.index(f.of or "")], fs)
        return f"CASE WHEN ({den}) = 0 THEN 0.0 ELSE CAST({f.column} AS DOUBLE) / ({den}) END"
    if f.aggregation == "value":
        return f"CAST({f.column} AS DOUBLE)"
    if f.aggregation == "weekend":
        return f"CAST(dayofweek({s.TX_DATETIME}) IN (0, 6) AS BIGINT)"  # DuckDB: Sunday = 0
    if f.aggregation == "night":
        return f"CAST(hour({s.TX_DATETIME}) <= 6 AS BIGINT)"
    if f.aggregation == "count":
        return f"CAST({_count(f)} AS BIGINT)"
    if f.aggregation == "sum":
        return f"CAST({_sum(f)} AS DOUBLE)"
    n = _count(f)
    return f"CASE WHEN {n} = 0 THEN 0.0 ELSE CAST({_sum(f)} AS DOUBLE) / {n} END"


def features_sql(fs: FeatureSet, source: str = "tx") -> str:
    """SELECT TRANSACTION_ID, TX_DATETIME and every feature of ``fs`` from relation ``source``."""
    inner = ",\n    ".join(f"{expr} AS {name}" for name, expr in _aggregates(fs).items())
    inner = f",\n    {inner}" if inner else ""
    cols = ",\n  ".join(f"{expression(f, fs)} AS {f.name}" for f in fs.features)
    return (
        f"WITH base AS (SELECT {', '.join(INPUT)}, epoch_us({s.TX_DATETIME}) AS {TS} FROM {source}),\n"
        f"agg AS (SELECT *{inner}\n  FROM base)\n"
        f"SELECT {s.TRANSACTION_ID}, {s.TX_DATETIME},\n  {cols}\nFROM agg"
    )
