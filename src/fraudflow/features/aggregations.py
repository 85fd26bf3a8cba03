"""The aggregations a feature can use: one object each, its rule written in every engine's form.

A feature (``definitions.Feature``) names its aggregation; the object of that name in
``AGGREGATIONS`` checks the feature's fields and computes its value in three forms:

- ``sql``: an SQL expression over the generated query's columns (``features.sql``: DuckDB, Spark),
- ``compiled``: a NumPy column over a whole table (``features.compiled``),
- ``online``: one value for an arriving transaction (``features.online``).

Each engine hands its forms what they read through one small interface, ``Inputs``: a window's
count and total and the features before, in the engine's own terms (SQL text, NumPy columns,
numbers), plus the row's own values (``SqlInputs``, ``CompiledInputs``, ``OnlineInputs``). The
windows (which rows, ties by (time, id), the delay) are the engines' machinery, the same for every
window aggregation; an aggregation only says what it makes of them, or of the row itself. Adding
an aggregation is one class here, listed in ``AGGREGATIONS``, and its case in
tests/features/test_aggregations.py, which checks that its three forms agree.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

import numpy as np

from fraudflow import schema as s
from fraudflow.records import CUSTOMER, NIGHT_LAST_HOUR, TERMINAL, US_PER_DAY, US_PER_HOUR

if TYPE_CHECKING:
    import numpy.typing as npt

    from fraudflow.features.definitions import Feature

    I64 = npt.NDArray[np.int64]
    F64 = npt.NDArray[np.float64]

#: The columns a window can sum: the amount, and the fraud label (known only after a delay).
WINDOW_COLUMNS = (s.TX_AMOUNT, s.TX_FRAUD)
#: The columns a row feature can read: the arriving transaction's own values (not its label).
ROW_COLUMNS = (s.TX_AMOUNT,)
#: Monday = 0, so a day is in the weekend when its weekday is at least this.
SATURDAY = 5
#: SQL's weekend test, in each dialect (their ``dayofweek`` numbers Sunday 0 or 1).
WEEKEND_SQL = {
    "duckdb": f"dayofweek({s.TX_DATETIME}) IN (0, 6)",
    "spark": f"dayofweek({s.TX_DATETIME}) IN (1, 7)",
}


_Count = TypeVar("_Count", covariant=True)
_Value = TypeVar("_Value", covariant=True)


class Inputs(Protocol[_Count, _Value]):
    """What every engine gives its forms, in its own terms (SQL text, NumPy columns, numbers)."""

    def count(self, f: Feature) -> _Count:
        """The number of transactions in ``f``'s window."""
        ...

    def total(self, f: Feature) -> _Value:
        """The sum of ``f.column`` over ``f``'s window, 0 when it is empty."""
        ...

    def feature(self, name: str) -> _Value:
        """An earlier feature of the set."""
        ...

    def variance(self, f: Feature) -> _Value:
        """The population variance of ``f.column`` over ``f``'s window, 0 when it is empty (each
        engine by a stable method: not from a sum of squares)."""
        ...

    def first_marked(self, f: Feature) -> _Value:
        """The time (µs since the epoch) of the earliest transaction of ``f``'s window whose ``f.column``
        is above 0 (a known fraud); NaN (SQL: NULL) when none is."""
        ...

    def last_marked(self, f: Feature) -> _Value:
        """The same for the latest such transaction."""
        ...

    def count_since_first_marked(self, f: Feature) -> _Count:
        """The number of transactions of ``f``'s window at or after the time of its earliest one whose
        ``f.column`` is above 0 (a known fraud; same-time ones whatever their ids); 0 when none is."""
        ...

    def count_above(self, f: Feature) -> _Count:
        """The number of transactions in ``f``'s window whose value of ``f.of`` (as each arrived)
        is above ``f.threshold``."""
        ...

    def count_unexplained(self, f: Feature) -> _Count:
        """The number of transactions in ``f``'s window whose ``f.column`` is above 0 (a known fraud),
        whose amount is at most ``f.limit`` and whose value of ``f.of`` (as each arrived) is at most
        ``f.threshold``."""
        ...

    def maximum(self, f: Feature) -> _Value:
        """The largest value of ``f.of`` (as each transaction arrived) over ``f``'s window, 0 when
        it is empty."""
        ...


class SqlInputs(Inputs[str, str], Protocol):
    """The SQL engine's: expressions over its query's columns (the row's are the lake's columns)."""

    @property
    def dialect(self) -> str: ...

    @property
    def ts_us(self) -> str:
        """The column of TX_DATETIME in microseconds since the epoch."""
        ...


class CompiledInputs(Inputs["I64", np.ndarray], Protocol):
    """The compiled engine's: a column for every row of one table."""

    @property
    def ts_us(self) -> I64:
        """TX_DATETIME in microseconds since the epoch."""
        ...

    def column(self, name: str) -> np.ndarray:
        """A column of the transactions."""
        ...


class OnlineInputs(Inputs[int, float], Protocol):
    """The online engine's: values for one arriving transaction."""

    @property
    def amount(self) -> float: ...

    @property
    def ts_us(self) -> int: ...


class Aggregation(ABC):
    """One kind of feature: which fields it takes, and its value in each engine's form."""

    name: ClassVar[str]
    #: the stored column's type, "int64" or "float64"
    dtype: ClassVar[str] = "float64"
    #: an aggregate over the entity's transactions in a window, else a value of the row itself
    window: ClassVar[bool] = False
    #: it reads ``Feature.column``
    reads_column: ClassVar[bool] = True
    #: it divides by an earlier feature, named by ``Feature.of``
    divides: ClassVar[bool] = False
    #: ``Feature.column`` names an earlier feature of the set (a quotient's numerator), not a column
    column_is_feature: ClassVar[bool] = False
    #: a window over the derived value ``Feature.of`` (an earlier row feature) of each transaction
    derived: ClassVar[bool] = False
    #: it compares with ``Feature.threshold``
    thresholded: ClassVar[bool] = False
    #: it reads the variance of ``Feature.column`` over its window (``Inputs.variance``)
    reads_variance: ClassVar[bool] = False
    #: it reads the times of the window's first and last known frauds (``Inputs.first_marked``, ...)
    reads_marked: ClassVar[bool] = False
    #: it reads how many of the window's transactions are at or after its first known fraud
    #: (``Inputs.count_since_first_marked``)
    reads_since: ClassVar[bool] = False
    #: it compares the amount with ``Feature.limit``
    limited: ClassVar[bool] = False
    #: a window over the known labels: its column must be TX_FRAUD
    over_labels: ClassVar[bool] = False
    #: its derived value ``of`` may be built from windows of another entity than its own (the
    #: reference engine then takes each event's value from the caller: ``features.online``)
    reads_other_entities: ClassVar[bool] = False

    def problem(self, f: Feature) -> str | None:
        """What is wrong with ``f``'s fields for this aggregation, if anything."""
        if (f.of is not None) != (self.divides or self.derived):
            return (
                "a ratio, and only a ratio or a window over a derived value, names the feature it "
                "divides by or reads (of=...)"
            )
        if (f.threshold is not None) != self.thresholded:
            return "a count_above or unexplained_frauds, and only those, has a threshold"
        if (f.limit is not None) != self.limited:
            return "an unexplained_frauds, and only it, has an amount limit (limit=...)"
        return None

    @abstractmethod
    def sql(self, f: Feature, q: SqlInputs) -> str:
        """The SQL expression of ``f``."""

    @abstractmethod
    def compiled(self, f: Feature, c: CompiledInputs) -> np.ndarray:
        """``f`` for every row, as a column of ``dtype``."""

    @abstractmethod
    def online(self, f: Feature, r: OnlineInputs) -> float:
        """``f`` for one transaction (an int for the int64 aggregations)."""


class RowAggregation(Aggregation):
    """A value of the transaction itself: no entity, window or delay."""

    def problem(self, f: Feature) -> str | None:
        if f.entity or f.window_days or f.delay_days:
            return "a row feature has no entity, window or delay"
        if self.reads_column and f.column not in ROW_COLUMNS:
            return f"column must be one of {ROW_COLUMNS}"
        return super().problem(f)


class WindowAggregation(Aggregation):
    """An aggregate of one entity's transactions in ``(t - (delay + window) days, t - delay days]``.

    With no delay the window ends at this transaction: earlier ones in (time, id) order and itself.
    """

    window = True

    def problem(self, f: Feature) -> str | None:
        if self.over_labels and f.column != s.TX_FRAUD:
            return f"column must be {s.TX_FRAUD}, got {f.column!r}"
        if f.entity not in (CUSTOMER, TERMINAL):
            return f"entity must be {CUSTOMER} or {TERMINAL}, got {f.entity!r}"
        if self.reads_column and f.column not in WINDOW_COLUMNS:
            return f"column must be one of {WINDOW_COLUMNS}, got {f.column!r}"
        if f.window_days < 1 or f.delay_days < 0:
            return "window_days must be >= 1 and delay_days >= 0"
        if f.delay_days == 0 and f.column == s.TX_FRAUD:
            return "a window over TX_FRAUD needs a delay: labels are not known at scoring time"
        return super().problem(f)


class Value(RowAggregation):
    """The column's value (the amount)."""

    name = "value"

    def sql(self, f: Feature, q: SqlInputs) -> str:
        return f"CAST({f.column} AS DOUBLE)"

    def compiled(self, f: Feature, c: CompiledInputs) -> np.ndarray:
        return c.column(f.column or "").astype(np.float64)

    def online(self, f: Feature, r: OnlineInputs) -> float:
        return r.amount


class Weekend(RowAggregation):
    """1 when the transaction falls on a Saturday or a Sunday, else 0."""

    name = "weekend"
    dtype = "int64"
    reads_column = False

    def sql(self, f: Feature, q: SqlInputs) -> str:
        return f"CAST({WEEKEND_SQL[q.dialect]} AS BIGINT)"

    def compiled(self, f: Feature, c: CompiledInputs) -> np.ndarray:
        return (_weekday(c.ts_us) >= SATURDAY).astype(np.int64)

    def online(self, f: Feature, r: OnlineInputs) -> float:
        return 1 if _weekday(r.ts_us) >= SATURDAY else 0


class Night(RowAggregation):
    """1 when the transaction's hour is 0..NIGHT_LAST_HOUR (06:59:59 is night), else 0."""

    name = "night"
    dtype = "int64"
    reads_column = False

    def sql(self, f: Feature, q: SqlInputs) -> str:
        return f"CAST(hour({s.TX_DATETIME}) <= {NIGHT_LAST_HOUR} AS BIGINT)"

    def compiled(self, f: Feature, c: CompiledInputs) -> np.ndarray:
        return (_hour(c.ts_us) <= NIGHT_LAST_HOUR).astype(np.int64)

    def online(self, f: Feature, r: OnlineInputs) -> float:
        return 1 if _hour(r.ts_us) <= NIGHT_LAST_HOUR else 0


class Ratio(RowAggregation):
    """The column divided by the earlier feature ``of``; 0 when that is 0."""

    name = "ratio"
    divides = True

    def sql(self, f: Feature, q: SqlInputs) -> str:
        return _sql_quotient(f.column or "", f"({q.feature(f.of or '')})")

    def compiled(self, f: Feature, c: CompiledInputs) -> np.ndarray:
        return _array_quotient(c.column(f.column or ""), c.feature(f.of or ""))

    def online(self, f: Feature, r: OnlineInputs) -> float:
        den = r.feature(f.of or "")
        return r.amount / den if den != 0 else 0.0


class Quotient(RowAggregation):
    """The earlier feature named by ``column`` divided by the earlier feature ``of``; 0 when that is 0
    (e.g. the customer's mean amount of the last 7 days over its mean before them)."""

    name = "quotient"
    divides = True
    reads_column = False
    column_is_feature = True

    def problem(self, f: Feature) -> str | None:
        if not f.column:
            return "a quotient names the earlier feature it divides (column=...)"
        return super().problem(f)

    def sql(self, f: Feature, q: SqlInputs) -> str:
        return _sql_quotient(f"({q.feature(f.column or '')})", f"({q.feature(f.of or '')})")

    def compiled(self, f: Feature, c: CompiledInputs) -> np.ndarray:
        return _array_quotient(c.feature(f.column or ""), c.feature(f.of or ""))

    def online(self, f: Feature, r: OnlineInputs) -> float:
        den = r.feature(f.of or "")
        return r.feature(f.column or "") / den if den != 0 else 0.0


class Count(WindowAggregation):
    """The number of transactions in the window (never 0 without a delay: the row itself)."""

    name = "count"
    dtype = "int64"
    reads_column = False

    def sql(self, f: Feature, q: SqlInputs) -> str:
        return f"CAST({q.count(f)} AS BIGINT)"

    def compiled(self, f: Feature, c: CompiledInputs) -> np.ndarray:
        return c.count(f)

    def online(self, f: Feature, r: OnlineInputs) -> float:
        return r.count(f)


class Sum(WindowAggregation):
    """The sum of the column over the window; 0 when it is empty."""

    name = "sum"

    def sql(self, f: Feature, q: SqlInputs) -> str:
        return f"CAST({q.total(f)} AS DOUBLE)"

    def compiled(self, f: Feature, c: CompiledInputs) -> np.ndarray:
        return c.total(f)

    def online(self, f: Feature, r: OnlineInputs) -> float:
        return r.total(f)


class Mean(WindowAggregation):
    """The mean of the column over the window; 0 when it is empty (a terminal with no history is not risky)."""

    name = "mean"

    def sql(self, f: Feature, q: SqlInputs) -> str:
        return _sql_quotient(q.total(f), q.count(f))

    def compiled(self, f: Feature, c: CompiledInputs) -> np.ndarray:
        return _array_quotient(c.total(f), c.count(f))

    def online(self, f: Feature, r: OnlineInputs) -> float:
        n = r.count(f)
        return r.total(f) / n if n != 0 else 0.0


class SpreadAggregation(WindowAggregation):
    """The spread of the amounts in the window: their population variance (divided by n, not n - 1:
    0 for one transaction), which every engine computes by a stable method of its own (``Inputs.variance``),
    never as a difference of sums of squares, whose cancellation grows with the amounts' mean square
    over their variance. A standard deviation at most ``NOISE`` of the mean is taken as 0."""

    reads_variance = True

    def problem(self, f: Feature) -> str | None:
        if f.column != s.TX_AMOUNT:
            return f"column must be {s.TX_AMOUNT}, got {f.column!r}"
        return super().problem(f)


class Std(SpreadAggregation):
    """The population standard deviation of the amount over the window; 0 when it is empty, for one
    transaction, or for equal amounts (rounding noise, see ``NOISE``)."""

    name = "std"

    def sql(self, f: Feature, q: SqlInputs) -> str:
        return _sql_std(f"({_sql_quotient(q.total(f), q.count(f))})", q.variance(f))

    def compiled(self, f: Feature, c: CompiledInputs) -> np.ndarray:
        return _array_std(_array_quotient(c.total(f), c.count(f)), c.variance(f))

    def online(self, f: Feature, r: OnlineInputs) -> float:
        n = r.count(f)
        return _std(r.total(f) / n if n != 0 else 0.0, r.variance(f))


class ZScore(SpreadAggregation):
    """The transaction's amount less the window's mean, over its standard deviation (``std``); 0 when
    that is 0. Without a delay the window holds the transaction, so it lies within +-sqrt(n - 1)."""

    name = "zscore"

    def sql(self, f: Feature, q: SqlInputs) -> str:
        mean = f"({_sql_quotient(q.total(f), q.count(f))})"
        std = f"({_sql_std(mean, q.variance(f))})"
        return f"CASE WHEN {std} = 0 THEN 0.0 ELSE (CAST({f.column} AS DOUBLE) - {mean}) / {std} END"

    def compiled(self, f: Feature, c: CompiledInputs) -> np.ndarray:
        mean = _array_quotient(c.total(f), c.count(f))
        return _array_quotient(c.column(f.column or "") - mean, _array_std(mean, c.variance(f)))

    def online(self, f: Feature, r: OnlineInputs) -> float:
        n = r.count(f)
        mean = r.total(f) / n if n != 0 else 0.0
        std = _std(mean, r.variance(f))
        return (r.amount - mean) / std if std != 0 else 0.0


class FraudAgeAggregation(WindowAggregation):
    """How long ago (in days, from this transaction) the first or last known fraud of the window
    happened; the window's reach (``delay + window`` days) when it holds none, as if just beyond it."""

    over_labels = True
    reads_marked = True

    def sql(self, f: Feature, q: SqlInputs) -> str:
        age = f"CAST({q.ts_us} - {self.marked(f, q)} AS DOUBLE) / {float(US_PER_DAY)!r}"
        return f"COALESCE({age}, {float(f.history_days)!r})"

    def compiled(self, f: Feature, c: CompiledInputs) -> np.ndarray:
        marked = self.marked(f, c)
        ages = (c.ts_us - marked) / float(US_PER_DAY)
        out: F64 = np.where(np.isnan(marked), float(f.history_days), ages)
        return out

    def online(self, f: Feature, r: OnlineInputs) -> float:
        marked = self.marked(f, r)
        return float(f.history_days) if math.isnan(marked) else (r.ts_us - marked) / float(US_PER_DAY)

    @abstractmethod
    def marked(self, f: Feature, inputs: Any) -> Any:
        """The fraud's time, in the engine's terms."""


class DaysSinceFirstFraud(FraudAgeAggregation):
    """Days since the window's earliest known fraud (a terminal compromised since then, maybe)."""

    name = "days_since_first_fraud"

    def marked(self, f: Feature, inputs: Any) -> Any:
        return inputs.first_marked(f)


class DaysSinceLastFraud(FraudAgeAggregation):
    """Days since the window's latest known fraud."""

    name = "days_since_last_fraud"

    def marked(self, f: Feature, inputs: Any) -> Any:
        return inputs.last_marked(f)


class DerivedWindowAggregation(WindowAggregation):
    """An aggregate over the window of the derived value ``of`` (an earlier row feature, e.g. the
    amount's ratio to the customer's mean): each transaction's value as it was when it arrived,
    computed from the windows of this one's entity (``FeatureSet`` checks it)."""

    derived = True
    reads_column = False


class CountAbove(DerivedWindowAggregation):
    """The number of transactions in the window whose value of ``of`` is above ``threshold``."""

    name = "count_above"
    dtype = "int64"
    thresholded = True

    def sql(self, f: Feature, q: SqlInputs) -> str:
        return f"CAST({q.count_above(f)} AS BIGINT)"

    def compiled(self, f: Feature, c: CompiledInputs) -> np.ndarray:
        return c.count_above(f)

    def online(self, f: Feature, r: OnlineInputs) -> float:
        return r.count_above(f)


class Max(DerivedWindowAggregation):
    """The largest value of ``of`` over the window; 0 when it is empty."""

    name = "max"

    def sql(self, f: Feature, q: SqlInputs) -> str:
        return f"CAST({q.maximum(f)} AS DOUBLE)"

    def compiled(self, f: Feature, c: CompiledInputs) -> np.ndarray:
        return c.maximum(f)

    def online(self, f: Feature, r: OnlineInputs) -> float:
        return r.maximum(f)


class FraudShareSinceFirstFraud(WindowAggregation):
    """The window's known frauds over its transactions at or after the first of them (0 when it holds
    none): how much of a terminal's traffic has been fraudulent since its first known fraud (a
    compromise running since then), within the label-delayed window, so bounded by its reach."""

    name = "fraud_share_since_first_fraud"
    over_labels = True
    reads_marked = True
    reads_since = True

    def sql(self, f: Feature, q: SqlInputs) -> str:
        return _sql_quotient(q.total(f), q.count_since_first_marked(f))

    def compiled(self, f: Feature, c: CompiledInputs) -> np.ndarray:
        return _array_quotient(c.total(f), c.count_since_first_marked(f))

    def online(self, f: Feature, r: OnlineInputs) -> float:
        n = r.count_since_first_marked(f)
        return r.total(f) / n if n != 0 else 0.0


class UnexplainedFrauds(DerivedWindowAggregation):
    """The window's known frauds the amount rules do not explain: whose amount is at most ``limit``
    (a rule like the simulator's scenario 1, every amount above 220 a fraud) and whose derived value
    ``of`` (e.g. the amount's ratio to the customer's 30-day mean, as it arrived) is at most
    ``threshold`` (no spike, as scenario 3's amounts multiplied by 5 make). On a terminal, what is left
    are mostly the frauds of a compromised terminal (scenario 2). The derived value may be built from
    the other entity's windows (a terminal's window reading each transaction's customer ratio)."""

    name = "unexplained_frauds"
    over_labels = True
    dtype = "int64"
    reads_column = True
    thresholded = True
    limited = True
    reads_other_entities = True

    def sql(self, f: Feature, q: SqlInputs) -> str:
        return f"CAST({q.count_unexplained(f)} AS BIGINT)"

    def compiled(self, f: Feature, c: CompiledInputs) -> np.ndarray:
        return c.count_unexplained(f)

    def online(self, f: Feature, r: OnlineInputs) -> float:
        return r.count_unexplained(f)


#: Every aggregation, by the order the definitions list them in their messages.
AGGREGATIONS: tuple[Aggregation, ...] = (
    Value(),
    Weekend(),
    Night(),
    Ratio(),
    Quotient(),
    Count(),
    Sum(),
    Mean(),
    CountAbove(),
    Max(),
    Std(),
    ZScore(),
    DaysSinceFirstFraud(),
    DaysSinceLastFraud(),
    FraudShareSinceFirstFraud(),
    UnexplainedFrauds(),
)
BY_NAME: dict[str, Aggregation] = {a.name: a for a in AGGREGATIONS}

# The rules the forms share: the calendar of a time in microseconds since the epoch (naive, so UTC
# arithmetic), for a scalar or a whole column; a quotient that is 0 when its denominator is.

_Time = TypeVar("_Time", int, "I64")


def _weekday(ts_us: _Time) -> _Time:
    """Monday = 0: 1970-01-01 was a Thursday."""
    return (ts_us // US_PER_DAY + 3) % 7


def _hour(ts_us: _Time) -> _Time:
    return ts_us // US_PER_HOUR % 24


def _array_quotient(num: np.ndarray, den: np.ndarray) -> F64:
    out: F64 = np.zeros(len(num))
    np.divide(num, den, out=out, where=den != 0)
    return out


def _sql_quotient(num: str, den: str) -> str:
    """``den`` is a name or parenthesized."""
    return f"CASE WHEN {den} = 0 THEN 0.0 ELSE CAST({num} AS DOUBLE) / {den} END"


#: A standard deviation at most this share of the mean is rounding noise, taken as 0: equal amounts
#: give exactly 0 in one engine and about 1e-17 of their mean in another (whose mean is an ulp off).
NOISE = 1e-9


def _std(mean: float, variance: float) -> float:
    bound = NOISE * mean
    return math.sqrt(variance) if variance > bound * bound else 0.0


def _array_std(mean: F64, variance: F64) -> F64:
    bound = NOISE * mean
    out: F64 = np.where(variance > bound * bound, np.sqrt(np.maximum(variance, 0.0)), 0.0)
    return out


def _sql_std(mean: str, variance: str) -> str:
    """``mean`` and ``variance`` are names or parenthesized."""
    bound = f"({NOISE!r} * {mean})"
    return f"CASE WHEN {variance} > {bound} * {bound} THEN SQRT({variance}) ELSE 0.0 END"
