"""The compiled per-customer transaction loop (spec/SIMULATOR.md section 4).

Each customer owns two generators seeded with its id: NumPy's legacy stream (numba's
``np.random`` reproduces it draw for draw, per thread) and Python's ``random.Random`` stream
(``pyrandom``). Customers are independent, so ``prange`` over them is exact in any order.

One pass writes each customer's rows into a slot sized for a Poisson count; the rows are then
compacted into contiguous columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numba
import numpy as np

import fraudflow._numba  # noqa: F401  (threading layer, before any kernel)
from fraudflow.records import SECONDS_PER_DAY as SECONDS_PER_DAY
from fraudflow.simulate.pyrandom import randbelow, seed_state

if TYPE_CHECKING:
    import numpy.typing as npt

    I32 = npt.NDArray[np.int32]
    I64 = npt.NDArray[np.int64]
    F64 = npt.NDArray[np.float64]
    #: TX_TIME_SECONDS (int64), CUSTOMER_ID, TERMINAL_ID (int32), amount (float64), emission index
    #: (int32); plain arrays so that a loop over them has one type
    Columns = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


class Customers(NamedTuple):
    """The kernel's input: a set of customers (ascending ids), their profiles and terminal lists.

        A tuple, so that the compiled loop takes it as one argument. A customer's profile can change
    from given days (``simulate.changes``): it then has several phases.
    """

    ids: np.ndarray  # int64
    lam: np.ndarray  # float64, mean transactions per day, per phase
    mean: np.ndarray  # float64, mean amount, per phase
    std: np.ndarray  # float64, standard deviation of the amount, per phase
    indptr: np.ndarray  # int64, customer i's terminals are terminals[indptr[i] : indptr[i + 1]]
    terminals: np.ndarray  # int32
    # customer i's phases are phase_ptr[i]..phase_ptr[i+1]-1, phase p in force from day phase_day[p]
    # (the first from day 0): a world without changes has one phase per customer
    phase_ptr: np.ndarray  # int64
    phase_day: np.ndarray  # int64


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
    rounded: float = np.rint(amount * 100.0) / 100.0
    return rounded


@numba.njit(cache=True, parallel=True)
def _fill(customers: Customers, from_day: int, to_day: int, slots: I64, out: Columns) -> tuple[I64, I64, I64]:
    """Write customer i's rows into ``slots[i]..slots[i+1]-1`` of ``out``; return the counts it needed."""
    ids, lam, mean, std, indptr, terminals, phase_ptr, phase_day = customers
    out_seconds, out_customer, out_terminal, out_amount, out_seq = out
    n = ids.shape[0]
    emitted = np.zeros(n, dtype=np.int64)
    before = np.zeros(n, dtype=np.int64)
    last = np.full(n, -1, dtype=np.int64)
    for i in numba.prange(n):
        cid = ids[i]
        np.random.seed(cid)
        mt = seed_state(cid)
        lo = indptr[i]
        n_terminals = indptr[i + 1] - lo
        p = slots[i]
        end = slots[i + 1]
        seq = 0
        ph = phase_ptr[i]
        for d in range(to_day):
            while ph + 1 < phase_ptr[i + 1] and phase_day[ph + 1] <= d:
                ph += 1
            k = np.random.poisson(lam[ph])
            for _ in range(k):
                t = int(np.random.normal(43200, 20000))
                if 0 < t < SECONDS_PER_DAY:
                    amount = _draw_amount(mean[ph], std[ph])
                    if n_terminals > 0:
                        terminal = terminals[lo + randbelow(mt, n_terminals)]
                        last[i] = d
                        if d < from_day:
                            before[i] += 1
                        else:
                            if p < end:
                                out_seconds[p] = t + SECONDS_PER_DAY * d
                                out_customer[p] = cid
                                out_terminal[p] = terminal
                                out_amount[p] = amount
                                out_seq[p] = seq
                            p += 1
                        seq += 1
        emitted[i] = p - slots[i]
    return emitted, before, last


@numba.njit(cache=True, parallel=True)
def _compact(src: np.ndarray, slots: I64, counts: I64, offsets: I64, dst: np.ndarray) -> None:
    for i in numba.prange(counts.shape[0]):
        dst[offsets[i] : offsets[i] + counts[i]] = src[slots[i] : slots[i] + counts[i]]


def _run(customers: Customers, from_day: int, to_day: int, capacity: I64) -> tuple[I64, Columns, I64, I64, I64]:
    slots = np.zeros(capacity.shape[0] + 1, dtype=np.int64)
    np.cumsum(capacity, out=slots[1:])
    size = int(slots[-1])
    cols = (
        np.empty(size, np.int64),
        np.empty(size, np.int32),
        np.empty(size, np.int32),
        np.empty(size, np.float64),
        np.empty(size, np.int32),
    )
    emitted, before, last = _fill(customers, from_day, to_day, slots, cols)
    return slots, cols, emitted, before, last


def run_customers(customers: Customers, from_day: int, to_day: int) -> CustomerBatch:
    """Transactions of days ``from_day..to_day-1`` of ``customers``."""
    # One pass into generous slots (the count is Poisson: mean + 8 sd overflows ~never);
    # should a customer overflow, the pass is redone with exact sizes.
    busiest = np.maximum.reduceat(customers.lam, customers.phase_ptr[:-1]) if len(customers.ids) else customers.lam
    m = busiest * (to_day - from_day)
    capacity = np.ceil(m + 8 * np.sqrt(m) + 16).astype(np.int64)
    slots, cols, emitted, before, last = _run(customers, from_day, to_day, capacity)
    if np.any(emitted > capacity):
        slots, cols, emitted, before, last = _run(customers, from_day, to_day, emitted)
    offsets = np.zeros(emitted.shape[0] + 1, dtype=np.int64)
    np.cumsum(emitted, out=offsets[1:])
    out = [np.empty(int(offsets[-1]), dtype=c.dtype) for c in cols]
    for src, dst in zip(cols, out, strict=True):
        _compact(src, slots, emitted, offsets, dst)
    seconds, customer, terminal, amount, seq = out
    return CustomerBatch(
        seconds,
        customer,
        terminal,
        amount,
        seq,
        n_before=int(before.sum()),
        last_day=int(last.max()) if last.size else -1,
    )
