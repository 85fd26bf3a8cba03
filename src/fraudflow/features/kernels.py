"""The compiled engine's loops: window counts and sums over each entity's rows, in O(rows).

Rows arrive in time order (ties by TRANSACTION_ID). They are grouped by entity with a stable
sort, so each entity's rows stay in that order; two pointers then slide over each group. Sums
slide with Neumaier's compensated summation, so they stay exact to a few ulps whatever the
number of rows an entity has (a difference of plain running totals would not).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numba
import numpy as np

import fraudflow._numba  # noqa: F401  (threading layer, before any kernel)

if TYPE_CHECKING:
    import numpy.typing as npt

    I64 = npt.NDArray[np.int64]
    F64 = npt.NDArray[np.float64]


def group_by_entity(entity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(order, starts)``: row indices grouped by entity (stable), and each group's first index."""
    n = len(entity)
    if n and entity.min() >= 0 and entity.max() < 4 * n + 1024:
        order, starts = _counting_sort(entity.astype(np.int64), int(entity.max()) + 1)
        return order, starts
    order = np.argsort(entity, kind="stable")
    sorted_ids = entity[order]
    starts = (
        np.flatnonzero(np.concatenate([[True], sorted_ids[1:] != sorted_ids[:-1]]))
        if n
        else np.empty(0, dtype=np.int64)
    )
    return order, np.append(starts, n).astype(np.int64)


@numba.njit(cache=True)
def _counting_sort(keys: I64, n_keys: int) -> tuple[I64, I64]:
    counts = np.zeros(n_keys + 1, dtype=np.int64)
    for k in keys:
        counts[k + 1] += 1
    pos = np.cumsum(counts)
    order = np.empty(keys.shape[0], dtype=np.int64)
    fill = pos[:-1].copy()
    for i in range(keys.shape[0]):
        order[fill[keys[i]]] = i
        fill[keys[i]] += 1
    # group starts: only the keys that occur
    present = np.flatnonzero(counts[1:] > 0)
    starts = np.empty(present.shape[0] + 1, dtype=np.int64)
    for j in range(present.shape[0]):
        starts[j] = pos[present[j]]
    starts[present.shape[0]] = keys.shape[0]
    return order, starts


@numba.njit(cache=True, inline="always")
def compensated_add(s: float, c: float, x: float) -> tuple[float, float]:
    """Neumaier's step: ``x`` added to the sum ``s`` whose lost low-order part is ``c`` (the total is s + c)."""
    t = s + x
    if abs(s) >= abs(x):
        c += (s - t) + x
    else:
        c += (x - t) + s
    return t, c


@numba.njit(cache=True, parallel=True)
def window_count_sum(order: I64, starts: I64, ts: I64, values: F64, lo_us: I64, hi_us: I64) -> tuple[I64, F64]:
    """Count and sum of ``values`` over same-entity rows with ts in (t - lo_us[j], t - hi_us[j]].

    ``ts`` and ``values`` are grouped by entity (``starts``), each group in time order; ``order``
    maps them back to the caller's rows, where the results ``[window, row]`` are written. When
    ``hi_us[j] == 0`` the window ends at the current row itself: later rows, even with the same
    timestamp, are out (the spec's ordering rule).
    """
    n = ts.shape[0]
    n_windows = lo_us.shape[0]
    counts = np.zeros((n_windows, n), dtype=np.int64)
    sums = np.zeros((n_windows, n), dtype=np.float64)
    for g in numba.prange(starts.shape[0] - 1):
        a = starts[g]
        b = starts[g + 1]
        for j in range(n_windows):
            lo = a  # first row in the window
            hi = a  # one past the last row in the window
            s = 0.0
            c = 0.0
            for i in range(a, b):
                t = ts[i]
                if hi_us[j] == 0:
                    end = i + 1
                else:
                    end = hi
                    while end < b and ts[end] <= t - hi_us[j]:
                        end += 1
                while hi < end:  # rows entering the window
                    s, c = compensated_add(s, c, values[hi])
                    hi += 1
                while lo < hi and ts[lo] <= t - lo_us[j]:  # rows leaving it
                    s, c = compensated_add(s, c, -values[lo])
                    lo += 1
                if lo == hi:  # empty: restart the sum so no residue carries over
                    s = 0.0
                    c = 0.0
                counts[j, order[i]] = hi - lo
                sums[j, order[i]] = s + c
    return counts, sums


@numba.njit(cache=True, parallel=True)
def window_max(order: I64, starts: I64, ts: I64, values: F64, lo_us: int, hi_us: int) -> F64:
    """The largest of ``values`` over same-entity rows with ts in (t - lo_us, t - hi_us], 0 when none.

    Grouped and ordered as ``window_count_sum`` (with ``hi_us == 0`` the window ends at the row
    itself); a queue of the window's rows whose value no later row in it reaches, so O(rows).
    """
    n = ts.shape[0]
    out = np.zeros(n, dtype=np.float64)
    for g in numba.prange(starts.shape[0] - 1):
        a = starts[g]
        b = starts[g + 1]
        queue = np.empty(b - a, dtype=np.int64)  # row indices, their values decreasing
        head = 0
        tail = 0
        hi = a  # one past the last row in the window
        for i in range(a, b):
            t = ts[i]
            end = i + 1
            if hi_us != 0:
                end = hi
                while end < b and ts[end] <= t - hi_us:
                    end += 1
            while hi < end:  # rows entering the window
                while tail > head and values[queue[tail - 1]] <= values[hi]:
                    tail -= 1
                queue[tail] = hi
                tail += 1
                hi += 1
            while head < tail and ts[queue[head]] <= t - lo_us:  # rows leaving it
                head += 1
            if head < tail:
                out[order[i]] = values[queue[head]]
    return out


@numba.njit(cache=True, inline="always")
def window_bounds(ts: I64, i: int, lo: int, hi: int, b: int, lo_us: int, hi_us: int) -> tuple[int, int]:
    """Row ``i``'s window (ts in (t - lo_us, t - hi_us], or up to the row itself when ``hi_us == 0``)
    as rows ``[lo, hi)`` of its group (ending at ``b``), moved forward from the previous row's."""
    t = ts[i]
    if hi_us == 0:
        hi = i + 1
    else:
        while hi < b and ts[hi] <= t - hi_us:
            hi += 1
    while lo < hi and ts[lo] <= t - lo_us:
        lo += 1
    return lo, hi


@numba.njit(cache=True, parallel=True)
def window_variance(order: I64, starts: I64, ts: I64, values: F64, lo_us: int, hi_us: int) -> F64:
    """The population variance of ``values`` over same-entity rows with ts in (t - lo_us, t - hi_us],
    0 when none; grouped and ordered as ``window_count_sum``.

    Each row's by the corrected two-pass method over its window (its mean, then the squared
    deviations less the square of their sum over n): stable whatever the amounts' size against their
    spread, in O(rows x window).
    """
    n = ts.shape[0]
    out = np.zeros(n, dtype=np.float64)
    for g in numba.prange(starts.shape[0] - 1):
        a = starts[g]
        b = starts[g + 1]
        lo = a
        hi = a
        for i in range(a, b):
            lo, hi = window_bounds(ts, i, lo, hi, b, lo_us, hi_us)
            m = hi - lo
            if m == 0:
                continue
            s = 0.0
            c = 0.0
            for j in range(lo, hi):
                s, c = compensated_add(s, c, values[j])
            mean = (s + c) / m
            squares = 0.0
            deviations = 0.0
            for j in range(lo, hi):
                d = values[j] - mean
                squares += d * d
                deviations += d
            out[order[i]] = (squares - deviations * deviations / m) / m
    return out


@numba.njit(cache=True, parallel=True)
def window_count_since_marked(
    order: I64, starts: I64, ts: I64, marked: npt.NDArray[np.bool_], lo_us: int, hi_us: int
) -> I64:
    """The number of same-entity rows with ts in (t - lo_us, t - hi_us] at or after the time of the
    earliest ``marked`` one among them (same-time rows whatever their order), 0 when none is marked;
    grouped and ordered as ``window_count_sum`` (with ``hi_us == 0`` the window ends at the row itself).

    The earliest marked row of the window only moves forward as the window does, so O(rows) (and the
    same-time rows before it).
    """
    n = ts.shape[0]
    out = np.zeros(n, dtype=np.int64)
    for g in numba.prange(starts.shape[0] - 1):
        a = starts[g]
        b = starts[g + 1]
        lo = a  # first row in the window
        hi = a  # one past the last row in the window
        first = a  # the window's earliest marked row, when below hi
        for i in range(a, b):
            lo, hi = window_bounds(ts, i, lo, hi, b, lo_us, hi_us)
            first = max(first, lo)
            while first < hi and not marked[first]:
                first += 1
            if first < hi:
                since = first
                while since > lo and ts[since - 1] == ts[first]:
                    since -= 1
                out[order[i]] = hi - since
    return out
