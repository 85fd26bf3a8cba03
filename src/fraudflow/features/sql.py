"""The batch SQL of a feature set, generated from its definitions (DuckDB or Spark SQL).

Windows are RANGE frames over the transaction time in microseconds. A frame that ends at the
current row also holds later rows of the same entity with the same timestamp (SQL peers); the
spec's window never does, so their count and sum are taken back out, from one small window over
(entity, timestamp) ordered by TRANSACTION_ID. Each feature is its aggregation's SQL form
(``features.aggregations``) over an inner query holding each window aggregate the forms ask for,
once. A window over a derived value (``count_above``, ``max``) reads that value from a second
layer: the derived feature's expression as a column (``V_<name>``) over the first, then the windows
over it; ties are handled the same way (a count takes the later peers back out, a maximum is the
larger of the window before this timestamp and this timestamp's peers up to this row). The count
of a window's rows since its first known fraud (a start that depends on the data) is read in that
second layer too, from two running counts of the first.
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
    layers = ""
    last = "agg"
    if query.derived_windows:
        values = "".join(f", {query.feature(name)} AS {_value_column(name)}" for name in query.derived_values)
        over = ",\n    ".join(f"{expr} AS {name}" for name, expr in query.derived_windows.items())
        layers = f",\nder AS (SELECT *{values}\n  FROM agg),\nagg2 AS (SELECT *,\n    {over}\n  FROM der)"
        last = "agg2"
    return (
        f"WITH base AS (SELECT {', '.join(schema.INPUT_COLUMNS)}, {EPOCH_US[dialect]} AS {TS} FROM {source}),\n"
        f"agg AS (SELECT *{inner}\n  FROM base){layers}\n"
        f"SELECT {schema.TRANSACTION_ID}, {schema.TX_DATETIME},\n  {cols}\nFROM {last}"
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
        self.derived_values: list[str] = []  # the derived features windows read, as columns of a second layer
        self.derived_windows: dict[str, str] = {}  # its column -> window aggregate over them
        self.expressions: dict[str, str] = {}
        for f in feature_set.features:
            self.expressions[f.name] = f.rule.sql(f, self)

    def feature(self, name: str) -> str:
        return self.expressions[name]

    @property
    def ts_us(self) -> str:
        return TS

    def first_marked(self, f: Feature) -> str:
        return self._marked(f, "MIN")

    def last_marked(self, f: Feature) -> str:
        return self._marked(f, "MAX")

    def _marked(self, f: Feature, extreme: str) -> str:
        """The time of the window's first or last row whose column is above 0: NULL when none (the
        window has a delay, so no peers)."""
        marked = f"CASE WHEN {f.column} > 0 THEN {TS} END"
        return self._window(f"{extreme}_MARKED_{f.column}_{_key(f)}", f"{extreme}({marked}) OVER ({_frame(f)})")

    def count_since_first_marked(self, f: Feature) -> str:
        """The window's rows from its first marked one's time on: the entity's rows up to the window's
        end less those before that time, from two running counts of the first layer (rows of an
        earlier time, rows up to this time) read in the second at the window's last and first marked
        rows (the window has a delay: no peers). 0 when none is marked."""
        order = f"PARTITION BY {f.entity} ORDER BY {TS} RANGE BETWEEN UNBOUNDED PRECEDING AND"
        before = self._window(f"NB_{f.entity}_BEFORE", f"COUNT(*) OVER ({order} 1 PRECEDING)")
        through = self._window(f"NB_{f.entity}_THROUGH", f"COUNT(*) OVER ({order} CURRENT ROW)")
        marked = f"CASE WHEN {f.column} > 0 THEN {before} END"
        first = self._derived(f"NB_BEFORE_FIRST_MARKED_{f.column}_{_key(f)}", f"MIN({marked}) OVER ({_frame(f)})")
        last = self._derived(f"NB_THROUGH_{_key(f)}", f"MAX({through}) OVER ({_frame(f)})")
        return f"COALESCE({last} - {first}, 0)"

    def count_unexplained(self, f: Feature) -> str:
        """Over labels, so with a delay: no peers."""
        v = self._value(f)
        amount = f"{schema.TX_AMOUNT} <= CAST({f.limit!r} AS DOUBLE)"
        rule = f"{f.column} > 0 AND {amount} AND {v} <= CAST({f.threshold!r} AS DOUBLE)"
        counted = f"CASE WHEN {rule} THEN 1 ELSE 0 END"
        name = f"U_{f.column}_{_derived_key(f)}_{_number(f.limit)}"
        return self._derived(name, f"COALESCE(SUM({counted}) OVER ({_frame(f)}), 0)")

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

    def variance(self, f: Feature) -> str:
        """VAR_POP over the window (stable in both engines); without a delay, the frame's later peers
        are out: the variances of the rows of earlier times and of this time's peers up to this row,
        merged (Chan et al.: the two parts' squared deviations, plus their means' gap weighted)."""
        column = f.column or ""
        if f.delay_days:
            return self._window(f"VAR_{column}_{_key(f)}", f"COALESCE(VAR_POP({column}) OVER ({_frame(f)}), 0.0)")
        parts = {"B": _frame(f, before=True), "P": _peers(f, upto=True)}
        key = {"B": _key(f), "P": f"{f.entity}_UPTO"}
        n, mean, var = (
            {
                p: self._window(f"{stat}_{column}_{key[p]}", f"COALESCE({agg}({column}) OVER ({frame}), {zero})")
                for p, frame in parts.items()
            }
            for stat, agg, zero in (("BN", "COUNT", "0"), ("BM", "AVG", "0.0"), ("BV", "VAR_POP", "0.0"))
        )
        gap = f"({mean['P']} - {mean['B']})"
        total = f"({n['B']} + {n['P']})"
        return (
            f"(({var['B']} * {n['B']} + {var['P']} * {n['P']} + {gap} * {gap} * {n['B']} * {n['P']} / {total})"
            f" / {total})"
        )

    def count_above(self, f: Feature) -> str:
        v = self._value(f)
        above = f"CASE WHEN {v} > CAST({f.threshold!r} AS DOUBLE) THEN 1 ELSE 0 END"
        n = self._derived(f"A_{_derived_key(f)}", f"COALESCE(SUM({above}) OVER ({_frame(f)}), 0)")
        if f.delay_days:
            return n
        peers = self._derived(f"A_{_derived_key(f, peers=True)}", f"COALESCE(SUM({above}) OVER ({_peers(f)}), 0)")
        return f"({n} - {peers})"

    def maximum(self, f: Feature) -> str:
        v = self._value(f)
        if f.delay_days:
            return self._derived(f"M_{_derived_key(f)}", f"COALESCE(MAX({v}) OVER ({_frame(f)}), 0.0)")
        before = self._derived(f"M_{_derived_key(f)}", f"MAX({v}) OVER ({_frame(f, before=True)})")
        upto = self._derived(f"M_{_derived_key(f, peers=True)}", f"MAX({v}) OVER ({_peers(f, upto=True)})")
        return f"GREATEST(COALESCE({before}, {upto}), {upto})"

    def _value(self, f: Feature) -> str:
        """The column of the derived value ``f`` reads, in the second layer."""
        if f.of not in self.derived_values:
            self.derived_values.append(f.of or "")
        return _value_column(f.of or "")

    def _window(self, name: str, aggregate: str) -> str:
        self.windows[name] = aggregate
        return name

    def _derived(self, name: str, aggregate: str) -> str:
        self.derived_windows[name] = aggregate
        return name


def _frame(f: Feature, before: bool = False) -> str:
    """The window's RANGE frame (its later peers included); ``before``: only the rows of an earlier
    timestamp (times are integers)."""
    lo = f.history_days * US_PER_DAY - 1
    hi = "CURRENT ROW" if f.delay_days == 0 else f"{f.delay_days * US_PER_DAY} PRECEDING"
    if before:
        hi = "1 PRECEDING"
    return f"PARTITION BY {f.entity} ORDER BY {TS} RANGE BETWEEN {lo} PRECEDING AND {hi}"


def _peers(f: Feature, upto: bool = False) -> str:
    """The rows after this one with its entity and timestamp: in the SQL frame, not in the window;
    ``upto``: the rows of its timestamp up to this one instead (in the window)."""
    rows = "UNBOUNDED PRECEDING AND CURRENT ROW" if upto else "1 FOLLOWING AND UNBOUNDED FOLLOWING"
    return f"PARTITION BY {f.entity}, {TS} ORDER BY {schema.TRANSACTION_ID} ROWS BETWEEN {rows}"


def _key(f: Feature) -> str:
    return f"{f.entity}_{f.window_days}_{f.delay_days}"


def _value_column(name: str) -> str:
    return f"V_{name}"


def _number(x: float | None) -> str:
    """A number as part of a column's name."""
    return repr(x).replace(".", "_").replace("-", "M")


def _derived_key(f: Feature, peers: bool = False) -> str:
    """A second-layer column's name: the value read, the window (or the peers of its entity), the threshold."""
    threshold = "" if f.threshold is None else "_" + _number(f.threshold)
    return f"{f.of}_{f.entity}_PEERS{threshold}" if peers else f"{f.of}_{_key(f)}{threshold}"
