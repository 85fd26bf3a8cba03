"""The compiled per-customer transaction loop (spec/SIMULATOR.md section 4).

Each customer owns two generators seeded with its id: NumPy's legacy stream (numba's
``np.random`` reproduces it draw for draw, per thread) and Python's ``random.Random`` stream
(``pyrandom``). Customers are independent, so ``prange`` over them is exact in any order.

Two passes over a list of customers: ``count`` sizes the output, ``fill`` writes it. Both draw the
same numbers; the first skips the terminal choice, which does not touch NumPy's stream.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from fraudflow.simulate.pyrandom import randbelow, seed_state

SECONDS_PER_DAY = 86400


@dataclass(frozen=True)
class CustomerBatch:
    """Transactions of a set of customers, customer by customer, each in emission order."""

    seconds: np.ndarray  # int64, TX_TIME_SECONDS
    customer: np.ndarray  # int32
    terminal: np.ndarray  # int32
    amount: np.ndarray  # float64, before fraud scenario 3
    seq: np.ndarray  # int32, emission index within the customer's whole history
    n_before: int  # transactions of these customers before ``from_day``
    last_day: int  # last day index with a transaction (any day < to_day), -1 if none

    def __len__(self) -> int:
        return int(self.seconds.shape[0])


@numba.njit(cache=True, inline="always")
def _draw_amount(mean: float, std: float) -> float:
    amount = np.random.normal(mean, std)
    if amount < 0:
        amount = np.random.uniform(0, 2 * mean)
    # NumPy's round(x, 2): rint on the scaled value, then divide
    return np.rint(amount * 100.0) / 100.0


@numba.njit(cache=True, parallel=True)
def _count(ids, lam, mean, std, indptr, from_day, to_day):  # type: ignore[no-untyped-def]
    n = ids.shape[0]
    before = np.zeros(n, dtype=np.int64)
    emitted = np.zeros(n, dtype=np.int64)
    last = np.full(n, -1, dtype=np.int64)
    for i in numba.prange(n):
        np.random.seed(ids[i])
        has_terminal = indptr[i + 1] > indptr[i]
        for d in range(to_day):
            k = np.random.poisson(lam[i])
            for _ in range(k):
                t = int(np.random.normal(43200, 20000))
                if 0 < t < SECONDS_PER_DAY:
                    _draw_amount(mean[i], std[i])
                    if has_terminal:
                        last[i] = d
                        if d < from_day:
                            before[i] += 1
                        else:
                            emitted[i] += 1
    return before, emitted, last


@numba.njit(cache=True, parallel=True)
def _fill(ids, lam, mean, std, indptr, terminals, from_day, to_day, offsets,  # type: ignore[no-untyped-def]
          out_seconds, out_customer, out_terminal, out_amount, out_seq):
    for i in numba.prange(ids.shape[0]):
        cid = ids[i]
        np.random.seed(cid)
        mt = seed_state(cid)
        lo = indptr[i]
        n_terminals = indptr[i + 1] - lo
        p = offsets[i]
        seq = 0
        for d in range(to_day):
            k = np.random.poisson(lam[i])
            for _ in range(k):
                t = int(np.random.normal(43200, 20000))
                if 0 < t < SECONDS_PER_DAY:
                    amount = _draw_amount(mean[i], std[i])
                    if n_terminals > 0:
                        terminal = terminals[lo + randbelow(mt, n_terminals)]
                        if d >= from_day:
                            out_seconds[p] = t + SECONDS_PER_DAY * d
                            out_customer[p] = cid
                            out_terminal[p] = terminal
                            out_amount[p] = amount
                            out_seq[p] = seq
                            p += 1
                        seq += 1


def run_customers(
    ids: np.ndarray,
    lam: np.ndarray,
    mean: np.ndarray,
    std: np.ndarray,
    indptr: np.ndarray,
    terminals: np.ndarray,
    from_day: int,
    to_day: int,
) -> CustomerBatch:
    """Transactions of days ``from_day..to_day-1`` of customers ``ids`` (profiles aligned)."""
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    before, emitted, last = _count(ids, lam, mean, std, indptr, from_day, to_day)
    offsets = np.zeros(ids.shape[0] + 1, dtype=np.int64)
    np.cumsum(emitted, out=offsets[1:])
    total = int(offsets[-1])
    seconds = np.empty(total, dtype=np.int64)
    customer = np.empty(total, dtype=np.int32)
    terminal = np.empty(total, dtype=np.int32)
    amount = np.empty(total, dtype=np.float64)
    seq = np.empty(total, dtype=np.int32)
    _fill(ids, lam, mean, std, indptr, terminals, from_day, to_day, offsets,
          seconds, customer, terminal, amount, seq)
    return CustomerBatch(
        seconds, customer, terminal, amount, seq,
        n_before=int(before.sum()),
        last_day=int(last.max()) if last.size else -1,
    )
