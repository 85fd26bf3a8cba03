"""Online features: the same definitions, computed for one arriving transaction from entity state.

Each entity (customer, terminal) keeps its recent transactions as events ``(ts_us, tx_id, amount,
fraud)`` in (time, id) order; fraud labels are the ones known so far (feedback), 0 otherwise. For
a transaction at ``t`` with id ``i``, a window with delay 0 holds the events ordered before
``(t, i)`` with ``ts > t - window`` plus the transaction itself; a delayed window holds the events
with ``t - (delay + window) < ts <= t - delay``. That is the batch engine's rule row for row, so a
replay of the lake through this path gives the offline store's values (tested on the handbook).
Each feature is its aggregation's online form (``features.aggregations``) over these windows.

A window over a derived value (``count_above``, ``max``) reads each of its events' value of that
feature as the event arrived: given in ``derived`` (by TRANSACTION_ID) when the caller kept it, else
computed here, as the reference, from the entity's events before it in (time, id) order (what it
saw when events arrive in that order). A derived value built from the other entity's windows (read
by ``unexplained_frauds``) cannot be computed from one entity's events: the caller must keep it.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from fraudflow import schema
from fraudflow.errors import FeatureError
from fraudflow.features.definitions import Feature, FeatureSet
from fraudflow.records import EMPTY, ENTITIES, US_PER_DAY, Events


class OnlineFeatures:
    """Computes a feature set's values for one transaction from its entities' events."""

    def __init__(self, feature_set: FeatureSet) -> None:
        self.feature_set = feature_set
        windows = [f for f in feature_set.features if f.is_window]
        self.history_us = {
            kind: max((f.history_days for f in windows if f.entity == kind), default=0) * US_PER_DAY
            for kind in ENTITIES
        }
        self._plan = [(f.name, f, f.rule.online) for f in feature_set.features]
        self._spans = {f.name: _Span.of(f) for f in windows}
        #: the derived values windows read, each computed by the features it is built from
        self.derivations = {
            f.of: OnlineFeatures(FeatureSet(tuple(feature_set.derivation(f.of)), f.of))
            for f in windows
            if f.rule.derived and f.of is not None
        }
        #: the entity kinds whose windows each derived value reads: computed here only from one entity's
        #: events (its own), else always taken from the caller's ``derived``
        self.derived_entities = {
            name: {g.entity for g in feature_set.derivation(name) if g.is_window} for name in self.derivations
        }

    def needs(self, kind: str) -> bool:
        return self.history_us[kind] > 0

    def compute(
        self, tx: Arrival, events: Mapping[str, Events], derived: Mapping[int, Mapping[str, float]] | None = None
    ) -> dict[str, float]:
        """The feature values of ``tx``; ``events[kind]`` are its entities' events, ``derived`` the
        derived values of (some of) them as they arrived, by TRANSACTION_ID."""
        row = _Row(tx, events, self._spans, self, derived or {})
        values = row.values
        for name, f, online in self._plan:
            values[name] = online(f, row)
        return values


class Arrival(Protocol):
    """What the online forms read of an arriving transaction (``records.Transaction`` is one)."""

    @property
    def transaction_id(self) -> int: ...

    @property
    def ts_us(self) -> int: ...

    @property
    def amount(self) -> float: ...


@dataclass(frozen=True, slots=True)
class _Event:
    """An event of an entity, arriving again to compute its derived values."""

    transaction_id: int
    ts_us: int
    amount: float


@dataclass(frozen=True, slots=True)
class _Span:
    """A window feature's events: ts in (t - back_us, t - delay_us], this transaction too if ``current``."""

    entity: str
    back_us: int
    delay_us: int
    current: int  # 1 when the window ends with this transaction (no delay), which it holds
    amounts: bool  # sums TX_AMOUNT (else TX_FRAUD)
    key: tuple[str, int, int]  # (entity, back_us, delay_us): the features of one window share its slice

    @classmethod
    def of(cls, f: Feature) -> _Span:
        entity, back_us, delay_us = f.entity or "", f.history_days * US_PER_DAY, f.delay_days * US_PER_DAY
        return cls(
            entity, back_us, delay_us, int(delay_us == 0), f.column != schema.TX_FRAUD, (entity, back_us, delay_us)
        )


class _Row:
    """One transaction, its entities' events and its features so far (``aggregations.OnlineInputs``)."""

    __slots__ = (
        "_derived",
        "_engine",
        "_events",
        "_slices",
        "_spans",
        "amount",
        "transaction_id",
        "ts_us",
        "values",
    )

    def __init__(
        self,
        tx: Arrival,
        events: Mapping[str, Events],
        spans: Mapping[str, _Span],
        engine: OnlineFeatures,
        derived: Mapping[int, Mapping[str, float]],
    ) -> None:
        self.amount = float(tx.amount)
        self.ts_us = tx.ts_us
        self.transaction_id = tx.transaction_id
        self.values: dict[str, float] = {}
        self._events = events
        self._spans = spans
        self._slices: dict[tuple[str, int, int], tuple[int, int]] = {}
        self._engine = engine
        self._derived = derived

    def count_above(self, f: Feature) -> int:
        threshold = f.threshold if f.threshold is not None else 0.0
        return sum(1 for v in self._derived_values(f) if v > threshold)

    def maximum(self, f: Feature) -> float:
        return max(self._derived_values(f), default=0.0)

    def _derived_values(self, f: Feature) -> list[float]:
        """The values of ``f.of`` in ``f``'s window: its events' as they arrived, and this one's."""
        span = self._spans[f.name]
        name = f.of or ""
        start, end = self._slices.get(span.key) or self._slice(span)
        ev = self._events.get(span.entity, EMPTY)
        values = [self._derived_value(name, span.entity, ev, j) for j in range(start, end)]
        return [*values, self.values[name]] if span.current else values

    def _derived_value(self, name: str, entity: str, ev: Events, j: int) -> float:
        known = self._derived.get(ev.ids[j])
        if known is not None and name in known:
            return known[name]
        if not self._engine.derived_entities[name] <= {entity}:
            raise FeatureError(
                f"the derived value {name!r} of transaction {ev.ids[j]} reads windows of "
                f"{sorted(str(e) for e in self._engine.derived_entities[name])}: the caller keeps it (derived=...)"
            )
        event = _Event(ev.ids[j], ev.ts[j], ev.amounts[j])
        return self._engine.derivations[name].compute(event, {entity: ev})[name]

    def count_unexplained(self, f: Feature) -> int:
        span = self._spans[f.name]
        start, end = self._slices.get(span.key) or self._slice(span)
        ev = self._events.get(span.entity, EMPTY)
        limit = f.limit if f.limit is not None else math.inf
        threshold = f.threshold if f.threshold is not None else math.inf
        return sum(
            1
            for j in range(start, end)
            if ev.frauds[j] > 0
            and ev.amounts[j] <= limit
            and self._derived_value(f.of or "", span.entity, ev, j) <= threshold
        )

    def feature(self, name: str) -> float:
        return self.values[name]

    def count(self, f: Feature) -> int:
        span = self._spans[f.name]
        start, end = self._slices.get(span.key) or self._slice(span)
        return end - start + span.current

    def total(self, f: Feature) -> float:
        span = self._spans[f.name]
        start, end = self._slices.get(span.key) or self._slice(span)
        ev = self._events.get(span.entity, EMPTY)
        if span.amounts:
            return sum(ev.amounts[start:end]) + (self.amount if span.current else 0.0)
        return float(sum(ev.frauds[start:end]))

    def variance(self, f: Feature) -> float:
        """By the two-pass method: the mean, then the mean squared deviation from it."""
        span = self._spans[f.name]
        start, end = self._slices.get(span.key) or self._slice(span)
        amounts = self._events.get(span.entity, EMPTY).amounts[start:end]
        amounts = [*amounts, self.amount] if span.current else amounts
        if not amounts:
            return 0.0
        mean = math.fsum(amounts) / len(amounts)
        return math.fsum((a - mean) * (a - mean) for a in amounts) / len(amounts)

    def first_marked(self, f: Feature) -> float:
        return min(self._marked(f), default=math.nan)

    def last_marked(self, f: Feature) -> float:
        return max(self._marked(f), default=math.nan)

    def count_since_first_marked(self, f: Feature) -> int:
        marked = self._marked(f)
        if not marked:
            return 0
        span = self._spans[f.name]
        start, end = self._slices.get(span.key) or self._slice(span)
        first = min(marked)
        return sum(1 for t in self._events.get(span.entity, EMPTY).ts[start:end] if t >= first)

    def _marked(self, f: Feature) -> list[float]:
        """The times of the window's events with a known fraud (the window has a delay: not this one)."""
        span = self._spans[f.name]
        start, end = self._slices.get(span.key) or self._slice(span)
        ev = self._events.get(span.entity, EMPTY)
        return [float(t) for t, fraud in zip(ev.ts[start:end], ev.frauds[start:end], strict=True) if fraud > 0]

    def _slice(self, span: _Span) -> tuple[int, int]:
        """The entity's events in the window (without this transaction), as a slice; kept for the
        window's other features."""
        ev = self._events.get(span.entity, EMPTY)
        found = self._slices[span.key] = _bounds(ev, self.ts_us, self.transaction_id, span.back_us, span.delay_us)
        return found


def _bounds(ev: Events, t: int, tx_id: int, back_us: int, delay_us: int) -> tuple[int, int]:
    """Slice of ``ev`` in the window: ts in (t - back, t - delay], or before (t, tx_id) if no delay."""
    start = bisect_right(ev.ts, t - back_us)
    if delay_us == 0:
        end = bisect_left(ev.ts, t)
        while end < len(ev.ts) and ev.ts[end] == t and ev.ids[end] < tx_id:
            end += 1  # same time, earlier id: it came first
        return start, end
    return start, max(start, bisect_right(ev.ts, t - delay_us))
