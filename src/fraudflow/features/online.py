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
from typing import NamedTuple

from fraudflow import schema as s
from fraudflow.features.definitions import CUSTOMER, TERMINAL, Feature, FeatureSet
from fraudflow.features.kernels import US_PER_DAY, US_PER_HOUR

ENTITIES = (CUSTOMER, TERMINAL)
EPOCH = dt.datetime(1970, 1, 1)
ONE_US = dt.timedelta(microseconds=1)


class Events(NamedTuple):
    """One entity's recent transactions, in (time, id) order, as columns."""

    ts: list[int]  # microseconds since the epoch
    ids: list[int]  # TRANSACTION_ID
    amounts: list[float]  # TX_AMOUNT
    frauds: list[int]  # TX_FRAUD known so far (0 until a label arrives)

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

    def needs(self, kind: str) -> bool:
        return self.history_us[kind] > 0

    def compute(self, tx: Transaction, events: Mapping[str, Events]) -> dict[str, float]:
        """The feature values of ``tx``; ``events[kind]`` are its entities' events."""
        t = tx.ts_us
        values: dict[str, float] = {}
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
                n, total = self._window(f, tx, t, events.get(f.entity or "", EMPTY))
                if f.aggregation == "count":
                    values[f.name] = n
                elif f.aggregation == "sum":
                    values[f.name] = total
                else:
                    values[f.name] = total / n if n else 0.0
        return values

    @staticmethod
    def _window(f: Feature, tx: Transaction, t: int, ev: Events) -> tuple[int, float]:
        amounts = f.column in (None, s.TX_AMOUNT)
        column = ev.amounts if amounts else ev.frauds
        start = bisect_right(ev.ts, t - (f.delay_days + f.window_days) * US_PER_DAY)
        if f.delay_days == 0:
            end = bisect_left(ev.ts, t)
            while end < len(ev.ts) and ev.ts[end] == t and ev.ids[end] < tx.transaction_id:
                end += 1  # same time, earlier id: it came first
            return end - start + 1, sum(column[start:end]) + (tx.amount if amounts else 0.0)
        end = bisect_right(ev.ts, t - f.delay_days * US_PER_DAY)
        return max(0, end - start), float(sum(column[start:end]))
