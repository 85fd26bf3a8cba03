"""Online features: the same definitions, computed for one arriving transaction from entity state.

Each entity (customer, terminal) keeps its recent transactions as events ``(ts_us, tx_id, amount,
fraud)`` in (time, id) order; fraud labels are the ones known so far (feedback), 0 otherwise. For
a transaction at ``t`` with id ``i``, a window with delay 0 holds the events ordered before
``(t, i)`` with ``ts > t - window`` plus the transaction itself; a delayed window holds the events
with ``t - (delay + window) < ts <= t - delay``. That is the batch engine's rule row for row, so a
replay of the lake through this path gives the offline store's values (tested on the handbook).
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

from fraudflow import schema as s
from fraudflow.features.definitions import CUSTOMER, TERMINAL, FeatureSet
from fraudflow.features.kernels import US_PER_DAY, US_PER_HOUR

ENTITIES = (CUSTOMER, TERMINAL)
EPOCH = dt.datetime(1970, 1, 1)
ONE_US = dt.timedelta(microseconds=1)


class Events:
    """One entity's recent transactions, in (time, id) order, as columns.

    ``frauds`` (the labels known so far, 0 until one arrives) are looked up only when a window
    over TX_FRAUD asks for them: customer windows never do.
    """

    __slots__ = ("_frauds", "_labels", "amounts", "ids", "ts")

    def __init__(
        self,
        ts: list[int],
        ids: list[int],
        amounts: list[float],
        frauds: list[int] | None = None,
        labels: Mapping[int, int] | None = None,
    ) -> None:
        self.ts = ts  # microseconds since the epoch
        self.ids = ids  # TRANSACTION_ID
        self.amounts = amounts  # TX_AMOUNT
        self._frauds = frauds
        self._labels = labels

    @property
    def frauds(self) -> list[int]:
        if self._frauds is None:
            labels = self._labels or {}
            self._frauds = [labels.get(i, 0) for i in self.ids] if labels else [0] * len(self.ids)
        return self._frauds

    @classmethod
    def from_rows(cls, rows: Sequence[tuple[int, int, float, int]]) -> Events:
        if not rows:
            return EMPTY
        ts, ids, amounts, frauds = zip(*rows, strict=True)
        return cls(list(ts), list(ids), list(amounts), list(frauds))


EMPTY = Events([], [], [], [])


@dataclass(frozen=True)
class Transaction:
    """One arriving transaction, in the lake's columns."""

    transaction_id: int
    tx_datetime: dt.datetime  # naive
    customer_id: int
    terminal_id: int
    amount: float

    @cached_property
    def ts_us(self) -> int:
        return to_us(self.tx_datetime)

    def entity(self, kind: str) -> int:
        return self.customer_id if kind == CUSTOMER else self.terminal_id


def to_us(value: dt.datetime) -> int:
    return (value - EPOCH) // ONE_US


class OnlineFeatures:
    """Computes a feature set's values for one transaction from its entities' events."""

    def __init__(self, fs: FeatureSet) -> None:
        self.fs = fs
        self.windows = [f for f in fs.features if f.is_window]
        self.history_us = {
            kind: max((f.history_days for f in self.windows if f.entity == kind), default=0) * US_PER_DAY
            for kind in ENTITIES
        }
        # the plan, resolved once: (name, aggregation, entity, lower bound, delay, uses amounts, of)
        self._plan = [
            (
                f.name,
                f.aggregation,
                f.entity or "",
                f.history_days * US_PER_DAY,
                f.delay_days * US_PER_DAY,
                f.column in (None, s.TX_AMOUNT),
                f.of or "",
            )
            for f in fs.features
        ]

    def needs(self, kind: str) -> bool:
        return self.history_us[kind] > 0

    def compute(self, tx: Transaction, events: Mapping[str, Events]) -> dict[str, float]:
        """The feature values of ``tx``; ``events[kind]`` are its entities' events."""
        t = tx.ts_us
        amount = float(tx.amount)
        values: dict[str, float] = {}
        bounds: dict[tuple[str, int, int], tuple[int, int]] = {}
        day = t // US_PER_DAY
        for name, aggregation, entity, back_us, delay_us, amounts, of in self._plan:
            if aggregation == "value":
                values[name] = amount
            elif aggregation == "weekend":
                values[name] = 1 if (day + 3) % 7 >= 5 else 0
            elif aggregation == "night":
                values[name] = 1 if (t // US_PER_HOUR) % 24 <= 6 else 0
            elif aggregation == "ratio":
                den = values[of]
                values[name] = amount / den if den != 0 else 0.0
            else:
                ev = events.get(entity, EMPTY)
                key = (entity, back_us, delay_us)
                if key not in bounds:  # a count and a mean over one window share its bounds
                    bounds[key] = _bounds(ev, t, tx.transaction_id, back_us, delay_us)
                start, end = bounds[key]
                current = delay_us == 0  # the window ends with this transaction, which it holds
                n = end - start + (1 if current else 0)
                if aggregation == "count":
                    values[name] = n
                    continue
                if amounts:
                    total = sum(ev.amounts[start:end]) + (amount if current else 0.0)
                else:
                    total = float(sum(ev.frauds[start:end]))
                values[name] = total if aggregation == "sum" else (total / n if n else 0.0)
        return values


def _bounds(ev: Events, t: int, tx_id: int, back_us: int, delay_us: int) -> tuple[int, int]:
    """Slice of ``ev`` in the window: ts in (t - back, t - delay], or before (t, tx_id) if no delay."""
    start = bisect_right(ev.ts, t - back_us)
    if delay_us == 0:
        end = bisect_left(ev.ts, t)
        while end < len(ev.ts) and ev.ts[end] == t and ev.ids[end] < tx_id:
            end += 1  # same time, earlier id: it came first
        return start, end
    return start, max(start, bisect_right(ev.ts, t - delay_us))
