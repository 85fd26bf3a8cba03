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

#: The columns hashed, in this order; the rows are sorted by the first four of SORT_KEY.
HASHED = (s.TX_DATETIME, s.CUSTOMER_ID, s.TERMINAL_ID, s.TX_AMOUNT, s.TX_TIME_SECONDS,
          s.TX_TIME_DAYS, s.TX_FRAUD, s.TX_FRAUD_SCENARIO)
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
