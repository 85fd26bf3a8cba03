"""Compact, order-independent fingerprints of the lake's tables.

The handbook's dataset is the oracle, but a user's clone does not have it: the fingerprints,
derived once from it and committed (``tests/golden/``), let any machine check exactness. A day's
transactions are hashed as a multiset (rows sorted canonically, ids left out, since the
handbook's ids of same-second rows are not reproducible).
"""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa

from fraudflow import schema as s
from fraudflow.features.definitions import FeatureSet

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


def _column(table: pa.Table, name: str) -> np.ndarray:
    a = table.column(name).to_numpy()
    if a.dtype.kind == "M":
        return a.astype("datetime64[ns]").view(np.int64)
    return a.astype(np.float64 if name == s.TX_AMOUNT else np.int64)


def transactions_fingerprint(table: pa.Table) -> dict[str, dict[str, int | str]]:
    """Per day (``TX_TIME_DAYS``): rows, frauds and a SHA-256 of the canonical rows."""
    cols = {c: _column(table, c) for c in HASHED}
    order = np.lexsort(tuple(cols[c] for c in reversed((s.TX_TIME_DAYS, *SORT_KEY))))
    cols = {c: a[order] for c, a in cols.items()}
    days = cols[s.TX_TIME_DAYS]
    bounds = np.flatnonzero(np.diff(days)) + 1
    result: dict[str, dict[str, int | str]] = {}
    for lo, hi in zip(np.concatenate([[0], bounds]), np.concatenate([bounds, [len(days)]]), strict=True):
        h = hashlib.sha256()
        for c in HASHED:
            h.update(np.ascontiguousarray(cols[c][lo:hi]).astype("<i8" if c != s.TX_AMOUNT else "<f8").tobytes())
        result[str(int(days[lo]))] = {
            "rows": int(hi - lo),
            "frauds": int(cols[s.TX_FRAUD][lo:hi].sum()),
            "sha256": h.hexdigest(),
        }
    return result


def features_fingerprint(transactions: pa.Table, features: pa.Table, fs: FeatureSet) -> dict[str, dict[str, object]]:
    """Per day: rows, a SHA-256 of the integer features and the sum of each float feature.

    Rows are matched by TRANSACTION_ID and put in the canonical order of the transactions
    fingerprint. Rows of a customer with two transactions in the same second are counted but
    left out of the hash and sums: their customer features depend on which of the two comes
    first, which the handbook's ids do not fix (spec/FEATURES.md, "the exception").
    """
    ids = transactions.column(s.TRANSACTION_ID).to_numpy()
    fids = features.column(s.TRANSACTION_ID).to_numpy()
    pos = np.argsort(fids)
    at = pos[np.searchsorted(fids[pos], ids)]
    if not np.array_equal(fids[at], ids):
        raise ValueError("features do not cover every transaction")
    cols = {c: _column(transactions, c) for c in (s.TX_TIME_DAYS, *SORT_KEY)}
    order = np.lexsort(tuple(cols[c] for c in reversed((s.TX_TIME_DAYS, *SORT_KEY))))
    cols = {c: a[order] for c, a in cols.items()}
    names = fs.names
    feats = {f.name: features.column(f.name).to_numpy()[at][order].astype(f.dtype) for f in fs.features}
    pair = cols[s.CUSTOMER_ID] * 2**40 + cols[s.TX_TIME_SECONDS]
    _, inverse, counts = np.unique(pair, return_inverse=True, return_counts=True)
    tied = counts[inverse] > 1
    days = cols[s.TX_TIME_DAYS]
    bounds = np.flatnonzero(np.diff(days)) + 1
    result: dict[str, dict[str, object]] = {}
    for lo, hi in zip(np.concatenate([[0], bounds]), np.concatenate([bounds, [len(days)]]), strict=True):
        keep = ~tied[lo:hi]
        h = hashlib.sha256()
        sums: dict[str, float] = {}
        for n in names:
            v = feats[n][lo:hi][keep]
            if v.dtype.kind in "iu":
                h.update(v.astype("<i8").tobytes())
            else:
                sums[n] = float(np.sum(v))
        result[str(int(days[lo]))] = {
            "rows": int(hi - lo),
            "tied_rows": int((~keep).sum()),
            "sha256_integer_features": h.hexdigest(),
            "sums": sums,
        }
    return result
