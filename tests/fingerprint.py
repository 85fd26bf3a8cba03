"""Compact, order-independent fingerprints of the lake's tables.

The handbook's dataset is the oracle, but a user's clone does not have it: the fingerprints,
derived once from it and committed (``tests/golden/``), let any machine check exactness. A day's
rows are hashed in a canonical order (sorted by content, ids left out, since the handbook's ids of
same-second rows are not reproducible).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import numpy as np
import pyarrow as pa

from fraudflow import schema as s
from fraudflow.features.definitions import Feature, FeatureSet

#: The columns hashed, in this order; the rows are sorted by the first four of SORT_KEY.
HASHED = (
    s.TX_DATETIME,
    s.CUSTOMER_ID,
    s.TERMINAL_ID,
    s.TX_AMOUNT,
    s.TX_TIME_SECONDS,
    s.TX_TIME_DAYS,
    s.TX_FRAUD,
    s.TX_FRAUD_SCENARIO,
)
SORT_KEY = (s.TX_TIME_SECONDS, s.CUSTOMER_ID, s.TERMINAL_ID, s.TX_AMOUNT)

#: Float features are hashed as integers in units of 1e-6 (a mean as its window's sum, see
#: ``quantise``); two computations that agree within 1e-9 relative give the same integers as long
#: as no value lies near a rounding boundary, which ``tests/golden/derive.py`` checks on the oracle.
SCALE = 10**6


def _column(table: pa.Table, name: str) -> np.ndarray:
    a: np.ndarray = table.column(name).to_numpy()
    if a.dtype.kind == "M":
        return a.astype("datetime64[ns]").view(np.int64)
    return a.astype(np.float64 if name == s.TX_AMOUNT else np.int64)


def _canonical(table: pa.Table, names: tuple[str, ...]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The columns ``names`` sorted by day, then SORT_KEY, and that order (indices of ``table``)."""
    cols = {c: _column(table, c) for c in dict.fromkeys((s.TX_TIME_DAYS, *SORT_KEY, *names))}
    order = np.lexsort(tuple(cols[c] for c in reversed((s.TX_TIME_DAYS, *SORT_KEY))))
    return {c: a[order] for c, a in cols.items()}, order


def _day_bounds(days: np.ndarray) -> Iterator[tuple[int, int]]:
    bounds = np.flatnonzero(np.diff(days)) + 1
    yield from zip(np.concatenate([[0], bounds]), np.concatenate([bounds, [len(days)]]), strict=True)


def transactions_fingerprint(table: pa.Table) -> dict[str, dict[str, int | str]]:
    """Per day (``TX_TIME_DAYS``): rows, frauds and a SHA-256 of the canonical rows."""
    cols, _ = _canonical(table, HASHED)
    days = cols[s.TX_TIME_DAYS]
    result: dict[str, dict[str, int | str]] = {}
    for lo, hi in _day_bounds(days):
        h = hashlib.sha256()
        for c in HASHED:
            h.update(np.ascontiguousarray(cols[c][lo:hi]).astype("<i8" if c != s.TX_AMOUNT else "<f8").tobytes())
        result[str(int(days[lo]))] = {
            "rows": int(hi - lo),
            "frauds": int(cols[s.TX_FRAUD][lo:hi].sum()),
            "sha256": h.hexdigest(),
        }
    return result


def _count_of(f: Feature, fs: FeatureSet) -> Feature | None:
    """The count feature over the same window as the mean ``f``, when the set has one."""
    window = (f.entity, f.window_days, f.delay_days)
    return next(
        (g for g in fs.features if g.aggregation == "count" and (g.entity, g.window_days, g.delay_days) == window), None
    )


def quantise(values: dict[str, np.ndarray], fs: FeatureSet) -> tuple[dict[str, np.ndarray], float]:
    """Each feature as int64, and the smallest distance of a float to a rounding boundary.

    Integers are kept. A mean whose count is in the set is hashed as its window sum (mean x count;
    the mean itself when the count is 0) in units of 1e-6: amounts are whole cents and labels 0
    or 1, so that sum is a whole number of units, half a unit from any boundary, where the mean
    itself (m cents / n rows) lies exactly on one for some n. Other floats are rounded to 1e-6.
    The distance is in units (0.5 at best); noise of 1e-9 relative moves these values by far
    less than 1e-3 units.
    """
    out: dict[str, np.ndarray] = {}
    margin = 0.5
    for f in fs.features:
        v = values[f.name]
        if f.dtype == "int64":
            out[f.name] = v.astype(np.int64)
            continue
        count = _count_of(f, fs) if f.aggregation == "mean" else None
        # an empty window's mean is 0 by definition: hashed as it is, so a wrong one still shows
        per = 1 if count is None else np.where(values[count.name] == 0, 1, values[count.name])
        scaled = v.astype(np.float64) * per * SCALE
        out[f.name] = np.rint(scaled).astype(np.int64)
        if len(scaled):
            margin = min(margin, 0.5 - float(np.max(np.abs(scaled - out[f.name]))))
    return out, margin


def _order_dependent(fs: FeatureSet) -> dict[str, tuple[str, bool]]:
    """Features whose value in a same-entity, same-second tie depends on the tie's order.

    Each maps to its entity and whether it only grows along the tie (then the tie's maximum is
    its last row's value in any order); one that does not is left out for tied rows.
    """
    result: dict[str, tuple[str, bool]] = {}
    for f in fs.features:
        if f.is_window and f.delay_days == 0:
            result[f.name] = (str(f.entity), f.aggregation != "mean" or _count_of(f, fs) is not None)
        elif f.of is not None and f.of in result:
            result[f.name] = (result[f.of][0], False)
    return result


def _hash_ties_order_free(values: np.ndarray, cols: dict[str, np.ndarray], fs: FeatureSet) -> np.ndarray:
    """Make the order-dependent features of tied rows order-free, in place; return the tied rows."""
    tied = np.zeros(len(values), bool)
    dependent = _order_dependent(fs)
    for entity in sorted({e for e, _ in dependent.values()}):
        key = cols[entity] * 2**40 + cols[s.TX_TIME_SECONDS]
        _, group, counts = np.unique(key, return_inverse=True, return_counts=True)
        rows = np.flatnonzero(counts[group] > 1)
        tied[rows] = True
        for j, name in enumerate(fs.names):
            if dependent.get(name, ("", False))[0] != entity:
                continue
            top = np.zeros(len(counts), np.int64)
            if dependent[name][1]:
                top[:] = np.iinfo(np.int64).min
                np.maximum.at(top, group[rows], values[rows, j])
            values[rows, j] = top[group[rows]]
    return tied


def _matched(transactions: pa.Table, features: pa.Table, fs: FeatureSet) -> dict[str, np.ndarray]:
    """Each feature's values in the row order of ``transactions`` (matched by TRANSACTION_ID)."""
    ids = transactions.column(s.TRANSACTION_ID).to_numpy()
    fids = features.column(s.TRANSACTION_ID).to_numpy()
    pos = np.argsort(fids)
    at = pos[np.searchsorted(fids[pos], ids).clip(0, max(len(fids) - 1, 0))]
    if len(fids) != len(ids) or not np.array_equal(fids[at], ids):
        raise ValueError("features do not match the transactions one to one")
    return {f.name: features.column(f.name).to_numpy()[at] for f in fs.features}


def features_fingerprint(transactions: pa.Table, features: pa.Table, fs: FeatureSet) -> dict[str, dict[str, object]]:
    """Per day: rows, tied rows and a SHA-256 of every feature of every row, in canonical order.

    Rows are matched by TRANSACTION_ID and put in the canonical order of the transactions
    fingerprint. Every feature is hashed as an integer (``quantise``), so two computations that
    agree within 1e-9 give the same hash. A customer's features in a tie (two of its transactions
    in the same second) depend on which row of the tie comes first, which ids do not fix (the
    handbook's are not reproducible, and it processed 10 ties in swapped order, spec/FEATURES.md):
    for tied rows each such feature is hashed as its maximum over the tie, which is the value of
    the tie's last row whatever the order (a count, or a mean hashed as its window sum). Every
    other feature of tied rows (amount, calendar, terminal) is hashed as it is.
    """
    cols, order = _canonical(transactions, (s.CUSTOMER_ID, s.TERMINAL_ID))
    quantised, _ = quantise(_matched(transactions, features, fs), fs)
    values = np.column_stack([quantised[n][order] for n in fs.names])
    tied = _hash_ties_order_free(values, cols, fs)
    days = cols[s.TX_TIME_DAYS]
    result: dict[str, dict[str, object]] = {}
    for lo, hi in _day_bounds(days):
        digest = hashlib.sha256(np.ascontiguousarray(values[lo:hi]).astype("<i8").tobytes()).hexdigest()
        result[str(int(days[lo]))] = {"rows": int(hi - lo), "tied_rows": int(tied[lo:hi].sum()), "sha256": digest}
    return result
