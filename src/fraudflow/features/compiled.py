"""The compiled feature engine: a feature set over a whole table, in O(rows), with numba kernels.

Every window feature's count and sum come from ``kernels.window_count_sum``: one pass per entity
and summed column, all the windows over that column at once. Each feature is then its
aggregation's compiled form (``features.aggregations``) over those arrays and the rows' columns.
A spread (``std``, ``zscore``) reads the window's variance, ``kernels.window_variance``. A window
over a derived value (``count_above``, ``max``) reads that feature's column, computed before it (it
is an earlier feature): a count above a threshold (or of frauds the amount rules do not explain)
is the window sum of an indicator, a maximum ``kernels.window_max``. The count of a window's rows
since its first known fraud is ``kernels.window_count_since_marked``.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from fraudflow import schema
from fraudflow.features import kernels
from fraudflow.features.definitions import Feature, FeatureSet
from fraudflow.records import US_PER_DAY


def compute(tx: pa.Table, feature_set: FeatureSet) -> pa.Table:
    """Features of every row of ``tx`` (time-ordered, ties by TRANSACTION_ID), in that order."""
    tx = tx.combine_chunks()
    arrays = _Arrays(tx, feature_set)
    for f in feature_set.features:
        arrays.features[f.name] = f.rule.compiled(f, arrays)
    return pa.Table.from_arrays(
        [
            tx[schema.TRANSACTION_ID],
            tx[schema.TX_DATETIME],
            *(schema.arrow_array(arrays.features[n]) for n in feature_set.names),
        ],
        names=[schema.TRANSACTION_ID, schema.TX_DATETIME, *feature_set.names],
    )


class _Arrays:
    """One table's columns, window aggregates and features so far (``aggregations.CompiledInputs``)."""

    def __init__(self, tx: pa.Table, feature_set: FeatureSet) -> None:
        self.tx = tx
        self.ts_us = schema.timestamps_us(tx[schema.TX_DATETIME])
        self.windows = _windows(tx, self.ts_us, [f for f in feature_set.features if f.is_window and not f.rule.derived])
        self.features: dict[str, np.ndarray] = {}
        self._groups: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._variances: dict[tuple[str, int, int], np.ndarray] = {}

    def column(self, name: str) -> np.ndarray:
        return schema.numpy_column(self.tx[name])

    def count(self, f: Feature) -> np.ndarray:
        return self.windows[f.name][0]

    def total(self, f: Feature) -> np.ndarray:
        return self.windows[f.name][1]

    def variance(self, f: Feature) -> np.ndarray:
        key = (f.entity or "", f.history_days, f.delay_days)  # a std and a z-score share it
        if key not in self._variances:
            order, starts = self._group(f.entity or "")
            lo, hi = _bounds_us(f)
            values = self.column(f.column or "").astype(np.float64)[order]
            ts = self.ts_us[order]
            self._variances[key] = kernels.window_variance(order, starts, ts, values, int(lo[0]), int(hi[0]))
        return self._variances[key]

    def feature(self, name: str) -> np.ndarray:
        return self.features[name]

    def first_marked(self, f: Feature) -> np.ndarray:
        return -self._latest_marked(f, -self.ts_us.astype(np.float64))

    def last_marked(self, f: Feature) -> np.ndarray:
        return self._latest_marked(f, self.ts_us.astype(np.float64))

    def _latest_marked(self, f: Feature, times: np.ndarray) -> np.ndarray:
        """The largest of ``times`` (exact: below 2**53 µs) over the window's rows whose column is
        above 0, NaN when none: a window maximum where the others are -inf (0 when it is empty)."""
        order, starts = self._group(f.entity or "")
        lo, hi = _bounds_us(f)
        values = np.where(self.column(f.column or "") > 0, times, -np.inf)[order]
        latest = kernels.window_max(order, starts, self.ts_us[order], values, int(lo[0]), int(hi[0]))
        out: np.ndarray = np.where(np.isinf(latest) | (latest == 0), np.nan, latest)
        return out

    def count_above(self, f: Feature) -> np.ndarray:
        return self._window_count(f, self.features[f.of or ""] > f.threshold)

    def _window_count(self, f: Feature, counted: np.ndarray) -> np.ndarray:
        """How many of ``f``'s window's rows are ``counted``: the window sum of the indicator."""
        order, starts = self._group(f.entity or "")
        lo, hi = _bounds_us(f)
        _, sums = kernels.window_count_sum(order, starts, self.ts_us[order], counted.astype(np.float64)[order], lo, hi)
        counts: np.ndarray = sums[0].astype(np.int64)  # a sum of ones and zeros: exact
        return counts

    def count_since_first_marked(self, f: Feature) -> np.ndarray:
        order, starts = self._group(f.entity or "")
        lo, hi = _bounds_us(f)
        marked = (self.column(f.column or "") > 0)[order]
        return kernels.window_count_since_marked(order, starts, self.ts_us[order], marked, int(lo[0]), int(hi[0]))

    def count_unexplained(self, f: Feature) -> np.ndarray:
        counted = (
            (self.column(f.column or "") > 0)
            & (self.column(schema.TX_AMOUNT) <= f.limit)
            & (self.features[f.of or ""] <= f.threshold)
        )
        return self._window_count(f, counted)

    def maximum(self, f: Feature) -> np.ndarray:
        order, starts = self._group(f.entity or "")
        lo, hi = _bounds_us(f)
        values = self.features[f.of or ""].astype(np.float64)[order]
        return kernels.window_max(order, starts, self.ts_us[order], values, int(lo[0]), int(hi[0]))

    def _group(self, entity: str) -> tuple[np.ndarray, np.ndarray]:
        if entity not in self._groups:
            self._groups[entity] = kernels.group_by_entity(schema.numpy_column(self.tx[entity]))
        return self._groups[entity]


def _bounds_us(f: Feature) -> tuple[np.ndarray, np.ndarray]:
    """The window as the kernels take it: how far back and the delay, in µs."""
    return (
        np.array([f.history_days * US_PER_DAY], dtype=np.int64),
        np.array([f.delay_days * US_PER_DAY], dtype=np.int64),
    )


def _window_key(f: Feature, features: list[Feature]) -> tuple[str, str, int, int]:
    """(entity, column, history, delay); a count shares the pass of a sum over the same window."""
    column = f.column
    if column is None:
        same = [
            g.column
            for g in features
            if g.column and (g.entity, g.history_days, g.delay_days) == (f.entity, f.history_days, f.delay_days)
        ]
        column = same[0] if same else schema.TX_AMOUNT
    return (f.entity or "", column, f.history_days, f.delay_days)


def _windows(tx: pa.Table, ts: np.ndarray, features: list[Feature]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Count and sum of every window feature (by name), one kernel pass per (entity, column)."""
    keys = {f.name: _window_key(f, features) for f in features}
    out = {}
    for entity in sorted({k[0] for k in keys.values()}):
        order, starts = kernels.group_by_entity(schema.numpy_column(tx[entity]))
        ts_sorted = ts[order]
        for column in sorted({k[1] for k in keys.values() if k[0] == entity}):
            windows = sorted({k for k in keys.values() if k[:2] == (entity, column)})
            values = schema.numpy_column(tx[column]).astype(np.float64)[order]
            lo = np.array([w[2] * US_PER_DAY for w in windows], dtype=np.int64)
            hi = np.array([w[3] * US_PER_DAY for w in windows], dtype=np.int64)
            counts, sums = kernels.window_count_sum(order, starts, ts_sorted, values, lo, hi)
            by_window = {w: (counts[j], sums[j]) for j, w in enumerate(windows)}
            out.update({name: by_window[k] for name, k in keys.items() if k in by_window})
    return out
