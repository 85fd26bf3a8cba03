"""Fraud scenarios (spec/SIMULATOR.md section 6), applied one day at a time.

A day's labels depend on start days up to 27 days earlier (scenario 2) and on the sample of each
start day's candidates (scenario 3), which spans up to 14 days. ``FraudPlan`` computes, once per
run, what every output day needs, by re-running the kernel only for the few compromised
customers; each day is then labelled independently, so days can be written in parallel and a
continued world gets exactly the labels of one longer run.

Changes of the world (``simulate.changes``, docs/WORLD_CHANGES.md) act here too: the number of
terminals a start day compromises, a scenario 4 (cards used just under the amount rule), and the
spending shifts, under which a day's scenario 3 and 4 choices are those made in the world as it
is on that day (so a change never alters a day before it).
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from fraudflow.simulate.changes import (
    UNDER_THRESHOLD_SEED,
    CompromisedTerminals,
    SpendingShift,
    UnderThresholdFrauds,
    WorldChange,
    latest,
)
from fraudflow.simulate.kernel import SECONDS_PER_DAY, CustomerBatch

LARGE_AMOUNT = 220.0
TERMINAL_DAYS = 28
CUSTOMER_DAYS = 14
N_COMPROMISED_TERMINALS = 2
N_COMPROMISED_CUSTOMERS = 3
AMOUNT_FACTOR = 5.0
N_SCENARIOS = 5  # 0: genuine, 1-3: the handbook's, 4: ``UnderThresholdFrauds``


def compromised(day: int, n: int, k: int) -> np.ndarray:
    """First ``k`` entries of ``RandomState(day).permutation(n)``."""
    return np.random.RandomState(day).permutation(n)[:k]


@dataclass
class FraudPlan:
    """What the fraud scenarios need for days ``from_day..to_day-1`` of one run."""

    n_terminals: int
    last_start: int  # start days are 0..last_start (max(TX_TIME_DAYS) - 1)
    changes: tuple[WorldChange, ...] = ()
    # (day, customer, seq) -> times chosen by scenario 3
    chosen: dict[int, dict[tuple[int, int], int]] = field(default_factory=dict)
    # (day, customer, seq) -> amount set by scenario 4 (the latest start day's)
    under: dict[int, dict[tuple[int, int], float]] = field(default_factory=dict)
    _terminals: dict[int, np.ndarray] = field(default_factory=dict)

    def terminals_for_day(self, day: int) -> np.ndarray:
        starts = range(max(0, day - TERMINAL_DAYS + 1), min(day, self.last_start) + 1)
        parts = [self._start_terminals(s) for s in starts]
        return np.unique(np.concatenate(parts)) if parts else np.empty(0, dtype=np.int64)

    def _start_terminals(self, s: int) -> np.ndarray:
        if s not in self._terminals:
            change = latest(self.changes, CompromisedTerminals, s)
            count = N_COMPROMISED_TERMINALS if change is None else change.count  # type: ignore[union-attr]
            self._terminals[s] = compromised(s, self.n_terminals, count)
        return self._terminals[s]


@dataclass(frozen=True)
class _Window:
    """A start day's compromised customers and how many days their cards stay compromised."""

    start: int
    victims: np.ndarray
    days: int


def plan_frauds(
    n_customers: int,
    n_terminals: int,
    from_day: int,
    to_day: int,
    max_day: int,
    run: Callable[[np.ndarray, int, int], CustomerBatch],
    changes: tuple[WorldChange, ...] = (),
) -> FraudPlan:
    """Plan the scenarios for output days ``from_day..to_day-1``.

    ``run(customer_ids, to_day, as_of)`` returns those customers' transactions of days
    ``0..to_day-1`` in the world with the spending shifts in force on day ``as_of``.
    """
    plan = FraudPlan(n_terminals=n_terminals, last_start=max_day - 1, changes=changes)
    shift_days = sorted(
        {c.from_day for c in changes if isinstance(c, SpendingShift) and from_day < c.from_day < to_day}
    )
    eras = list(zip([from_day, *shift_days], [*shift_days, to_day], strict=True))
    chosen: dict[int, dict[tuple[int, int], int]] = defaultdict(lambda: defaultdict(int))
    under: dict[int, dict[tuple[int, int], float]] = defaultdict(dict)
    for lo, hi in eras:
        _plan_era(plan, n_customers, lo, hi, to_day, run, chosen, under)
    plan.chosen = {d: dict(v) for d, v in chosen.items()}
    plan.under = {d: dict(v) for d, v in under.items()}
    return plan


def _plan_era(
    plan: FraudPlan,
    n_customers: int,
    lo: int,
    hi: int,
    horizon: int,
    run: Callable[[np.ndarray, int, int], CustomerBatch],
    chosen: dict[int, dict[tuple[int, int], int]],
    under: dict[int, dict[tuple[int, int], float]],
) -> None:
    """Scenarios 3 and 4 for output days ``lo..hi-1``, chosen in the world as it is on day ``lo``."""
    last = min(hi - 1, plan.last_start)
    third = [
        _Window(s, compromised(s, n_customers, N_COMPROMISED_CUSTOMERS), CUSTOMER_DAYS)
        for s in range(max(0, lo - CUSTOMER_DAYS + 1), last + 1)
    ]
    fourth = _under_threshold_windows(plan.changes, n_customers, lo, last)
    windows = third + [w for w, _ in fourth]
    if not windows:
        return
    ids = np.unique(np.concatenate([w.victims for w in windows]))
    history = run(ids, min(horizon, max(w.start + w.days for w in windows)), lo)
    days = history.seconds // SECONDS_PER_DAY
    # the history is customer by customer, each in day order: slice a customer's window directly
    first = np.searchsorted(history.customer, ids, side="left")
    end = np.searchsorted(history.customer, ids, side="right")

    def candidates(w: _Window) -> np.ndarray:
        at = np.searchsorted(ids, w.victims)
        parts = [
            np.arange(a, b)[(days[a:b] >= w.start) & (days[a:b] < w.start + w.days)]
            for a, b in zip(first[at], end[at], strict=True)
        ]
        rows = np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)
        # candidates in TRANSACTION_ID order: time, then customer, then emission
        return rows[np.lexsort((history.seq[rows], history.customer[rows], history.seconds[rows]))]

    def key(r: int) -> tuple[int, tuple[int, int]]:
        return int(days[r]), (int(history.customer[r]), int(history.seq[r]))

    for w in third:
        rows = candidates(w)
        picks = random.Random(w.start).sample(range(len(rows)), len(rows) // 3)
        for r in rows[picks]:
            d, k = key(r)
            if lo <= d < hi:
                chosen[d][k] += 1
    for w, change in fourth:
        rows = candidates(w)
        rs = np.random.RandomState(UNDER_THRESHOLD_SEED + w.start)
        under_picks = rs.permutation(len(rows))[: int(len(rows) * change.share)]
        amounts = np.round(rs.uniform(change.low, change.high, size=len(under_picks)), 2)
        for r, a in zip(rows[under_picks], amounts, strict=True):
            d, k = key(r)
            if lo <= d < hi:
                under[d][k] = float(a)


def _under_threshold_windows(
    changes: tuple[WorldChange, ...], n_customers: int, lo: int, last: int
) -> list[tuple[_Window, UnderThresholdFrauds]]:
    """Scenario 4's start days whose windows reach day ``lo`` or later, up to ``last``."""
    if not any(isinstance(c, UnderThresholdFrauds) for c in changes):
        return []
    longest = max(c.days for c in changes if isinstance(c, UnderThresholdFrauds))
    out = []
    for s in range(max(0, lo - longest + 1), last + 1):
        change = latest(changes, UnderThresholdFrauds, s)
        if isinstance(change, UnderThresholdFrauds) and change.customers and s + change.days > lo:
            k = N_COMPROMISED_CUSTOMERS
            victims = compromised(s, n_customers, k + change.customers)[k:]
            out.append((_Window(s, victims, change.days), change))
    return out


def label_day(
    day: int,
    customer: np.ndarray,
    terminal: np.ndarray,
    seq: np.ndarray,
    amount: np.ndarray,
    plan: FraudPlan,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return ``(amount, fraud, scenario)`` for one day's transactions."""
    scenario = np.where(amount > LARGE_AMOUNT, 1, 0).astype(np.int64)
    scenario[np.isin(terminal, plan.terminals_for_day(day))] = 2
    amount = amount.copy()
    keys = customer.astype(np.int64) << 32 | seq.astype(np.int64)
    chosen = plan.chosen.get(day)
    if chosen:
        wanted = {c << 32 | s: n for (c, s), n in chosen.items()}
        hit = np.flatnonzero(np.isin(keys, np.fromiter(wanted, dtype=np.int64)))
        for r in hit:
            for _ in range(wanted[int(keys[r])]):
                amount[r] *= AMOUNT_FACTOR  # one multiplication per choice, as the spec applies them
            scenario[r] = 3
    under = plan.under.get(day)
    if under:
        values = {c << 32 | s: a for (c, s), a in under.items()}
        hit = np.flatnonzero(np.isin(keys, np.fromiter(values, dtype=np.int64)))
        for r in hit:
            amount[r] = values[int(keys[r])]
            scenario[r] = 4
    fraud = (scenario > 0).astype(np.int64)
    return amount, fraud, scenario
