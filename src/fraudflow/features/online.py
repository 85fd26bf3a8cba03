"""Online features: the same definitions, computed for one arriving transaction from entity state.

Each entity (customer, terminal) keeps its recent transactions as events ``(ts_us, tx_id, amount,
fraud)`` in (time, id) order; fraud labels are the ones known so far (feedback), 0 otherwise. For
a transaction at ``t`` with id ``i``, a window with delay 0 holds the events ordered before
``(t, i)`` with ``ts > t - window`` plus the transaction itself; a delayed window holds the events
with ``t - (delay + window) < ts <= t - delay``. That is the batch engine's rule row for row, so a
replay of the lake through this path gives the offline store's values (tested on the handbook).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Mapping

from fraudflow import schema as s
from fraudflow.features.definitions import FeatureSet
from fraudflow.records import CUSTOMER as CUSTOMER
from fraudflow.records import EMPTY as EMPTY
from fraudflow.records import ENTITIES as ENTITIES
from fraudflow.records import EPOCH as EPOCH
from fraudflow.records import NIGHT_LAST_HOUR
from fraudflow.records import ONE_US as ONE_US
from fraudflow.records import TERMINAL as TERMINAL
from fraudflow.records import US_PER_DAY as US_PER_DAY
from fraudflow.records import US_PER_HOUR as US_PER_HOUR
from fraudflow.records import Events as Events
from fraudflow.records import Transaction as Transaction
from fraudflow.records import to_us as to_us


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
                values[name] = 1 if (t // US_PER_HOUR) % 24 <= NIGHT_LAST_HOUR else 0
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
