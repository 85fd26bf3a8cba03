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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from fraudflow import schema as s
from fraudflow.features.definitions import CUSTOMER, TERMINAL, Feature, FeatureSet
from fraudflow.features.kernels import US_PER_DAY, US_PER_HOUR

#: (ts in microseconds, TRANSACTION_ID, TX_AMOUNT, TX_FRAUD known so far)
Event = tuple[int, int, float, int]
ENTITIES = (CUSTOMER, TERMINAL)
EPOCH = dt.datetime(1970, 1, 1)


@dataclass(frozen=True)
class Transaction:
    """One arriving transaction, in the lake's columns."""

    transaction_id: int
    tx_datetime: dt.datetime  # naive
    customer_id: int
    terminal_id: int
    amount: float

    @property
    def ts_us(self) -> int:
        return to_us(self.tx_datetime)

    def entity(self, kind: str) -> int:
        return self.customer_id if kind == CUSTOMER else self.terminal_id


def to_us(value: dt.datetime) -> int:
    delta = value - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


class OnlineFeatures:
    """Computes a feature set's values for one transaction from its entities' events."""

    def __init__(self, fs: FeatureSet) -> None:
        self.fs = fs
        self.windows = [f for f in fs.features if f.is_window]
        self.history_us = {
            kind: max((f.history_days for f in self.windows if f.entity == kind), default=0) * US_PER_DAY
            for kind in ENTITIES
        }

    def needs(self, kind: str) -> bool:
        return self.history_us[kind] > 0

    def compute(self, tx: Transaction, events: Mapping[str, Sequence[Event]]) -> dict[str, float]:
        """The feature values of ``tx``; ``events[kind]`` are its entities' events, in (time, id) order."""
        t = tx.ts_us
        values: dict[str, float] = {}
        aggregates = {f.name: self._window(f, tx, t, events.get(f.entity or "", ())) for f in self.windows}
        day = t // US_PER_DAY
        for f in self.fs.features:
            if f.aggregation == "value":
                values[f.name] = float(tx.amount)
            elif f.aggregation == "weekend":
                values[f.name] = 1 if (day + 3) % 7 >= 5 else 0
            elif f.aggregation == "night":
                values[f.name] = 1 if (t // US_PER_HOUR) % 24 <= 6 else 0
            elif f.aggregation == "ratio":
                den = values[f.of or ""]
                values[f.name] = float(tx.amount) / den if den != 0 else 0.0
            else:
                n, total = aggregates[f.name]
                if f.aggregation == "count":
                    values[f.name] = n
                elif f.aggregation == "sum":
                    values[f.name] = total
                else:
                    values[f.name] = total / n if n else 0.0
        return values

    @staticmethod
    def _window(f: Feature, tx: Transaction, t: int, events: Sequence[Event]) -> tuple[int, float]:
        value_index = 2 if f.column in (None, s.TX_AMOUNT) else 3
        lo = t - (f.delay_days + f.window_days) * US_PER_DAY
        n, total = 0, 0.0
        if f.delay_days == 0:
            for e in events:
                if e[0] > lo and (e[0], e[1]) < (t, tx.transaction_id):
                    n += 1
                    total += e[value_index]
            current = tx.amount if value_index == 2 else 0.0
            return n + 1, total + current
        hi = t - f.delay_days * US_PER_DAY
        for e in events:
            if lo < e[0] <= hi:
                n += 1
                total += e[value_index]
        return n, total
