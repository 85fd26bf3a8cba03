"""Fraud scenarios (spec/SIMULATOR.md section 6), applied one day at a time.

A day's labels depend on start days up to 27 days earlier (scenario 2) and on the sample of each
start day's candidates (scenario 3), which spans up to 14 days. ``FraudPlan`` computes, once per
run, what every output day needs, by re-running the kernel only for the few compromised
customers; each day is then labelled independently, so days can be written in parallel and a
continued world gets exactly the labels of one longer run.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from fraudflow.simulate.kernel import SECONDS_PER_DAY, CustomerBatch

LARGE_AMOUNT = 220.0
TERMINAL_DAYS = 28
CUSTOMER_DAYS = 14
N_COMPROMISED_TERMINALS = 2
N_COMPROMISED_CUSTOMERS = 3
AMOUNT_FACTOR = 5.0


def compromised(day: int, n: int, k: int) -> np.ndarray:
    """First ``k`` entries of ``RandomState(day).permutation(n)``."""
    return np.random.RandomState(day).permutation(n)[:k]


@dataclass
class FraudPlan:
    """What the fraud scenarios need for days ``from_day..to_day-1`` of one run."""

    n_terminals: int
    last_start: int  # start days are 0..last_start (max(TX_TIME_DAYS) - 1)
    # (day, customer, seq) -> times chosen by scenario 3
    chosen: dict[int, dict[tuple[int, int], int]] = field(default_factory=dict)
    _terminals: dict[int, np.ndarray] = field(default_factory=dict)

    def terminals_for_day(self, day: int) -> np.ndarray:
        starts = range(max(0, day - TERMINAL_DAYS + 1), min(day, self.last_start) + 1)
        parts = [self._start_terminals(s) for s in starts]
        return np.unique(np.concatenate(parts)) if parts else np.empty(0, dtype=np.int64)

    def _start_terminals(self, s: int) -> np.ndarray:
        if s not in self._terminals:
            self._terminals[s] = compromised(s, self.n_terminals, N_COMPROMISED_TERMINALS)
        return self._terminals[s]


def plan_frauds(
    n_customers: int,
    n_terminals: int,
    from_day: int,
    to_day: int,
    max_day: int,
    run: Callable[[np.ndarray, int], CustomerBatch],
) -> FraudPlan:
    """Plan the scenarios for output days ``from_day..to_day-1``.

    ``run(customer_ids, to_day)`` returns those customers' transactions of days ``0..to_day-1``.
    """
    plan = FraudPlan(n_terminals=n_terminals, last_start=max_day - 1)
    starts = list(range(max(0, from_day - CUSTOMER_DAYS + 1), min(to_day - 1, plan.last_start) + 1))
    if not starts:
        return plan
    victims = {s: compromised(s, n_customers, N_COMPROMISED_CUSTOMERS) for s in starts}
    ids = np.unique(np.concatenate(list(victims.values())))
    history = run(ids, min(to_day, starts[-1] + CUSTOMER_DAYS))
    chosen: dict[int, dict[tuple[int, int], int]] = defaultdict(lambda: defaultdict(int))
    days = history.seconds // SECONDS_PER_DAY
    # the history is customer by customer, each in day order: slice a customer's window directly
    first = np.searchsorted(history.customer, ids, side="left")
    last = np.searchsorted(history.customer, ids, side="right")
    for s in starts:
        at = np.searchsorted(ids, victims[s])
        rows = np.concatenate(
            [
                np.arange(a, b)[(days[a:b] >= s) & (days[a:b] < s + CUSTOMER_DAYS)]
                for a, b in zip(first[at], last[at], strict=True)
            ]
        )
        # candidates in TRANSACTION_ID order: time, then customer, then emission
        rows = rows[np.lexsort((history.seq[rows], history.customer[rows], history.seconds[rows]))]
        picks = random.Random(s).sample(range(len(rows)), len(rows) // 3)
        for r in rows[picks]:
            d = int(days[r])
            if from_day <= d < to_day:
                chosen[d][(int(history.customer[r]), int(history.seq[r]))] += 1
    plan.chosen = {d: dict(v) for d, v in chosen.items()}
    return plan


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
    chosen = plan.chosen.get(day)
    if chosen:
        keys = customer.astype(np.int64) << 32 | seq.astype(np.int64)
        wanted = {c << 32 | s: n for (c, s), n in chosen.items()}
        hit = np.flatnonzero(np.isin(keys, np.fromiter(wanted, dtype=np.int64)))
        for r in hit:
            for _ in range(wanted[int(keys[r])]):
                amount[r] *= AMOUNT_FACTOR  # one multiplication per choice, as the spec applies them
            scenario[r] = 3
    fraud = (scenario > 0).astype(np.int64)
    return amount, fraud, scenario
