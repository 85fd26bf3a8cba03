"""Drift of a feature against a reference sample: the population stability index and the KS statistic.

PSI compares the shares of two samples in fixed bins: the bins are cut at the reference's deciles
(its 10 %, 20 %, ..., 90 % quantiles, repeated values merged, so a feature that is 0 nine times in
ten gets two bins, ``<= 0`` and ``> 0``), the outer bins open-ended so every value falls in one.
A value equal to an edge belongs to the bin below it. ``PSI = sum((a - e) * ln(a / e))`` over the
bins, ``e`` the reference's share and ``a`` the sample's, each floored at ``EPSILON`` so that an
empty bin adds a large but finite term instead of an infinite one.

The two-sample Kolmogorov-Smirnov statistic is the largest distance between the two empirical
distribution functions, computed exactly over every value of either sample.

Common readings, and the defaults of ``monitor.Thresholds``: PSI below 0.1 is stable, 0.1 to 0.2 a
moderate shift, above 0.2 a significant one; KS above 0.1 is a shift that matters at the sizes of
a day of traffic (at 1,000 transactions a day against a week of training, the 0.1 % critical
value of the test is about 0.065, so 0.1 is not crossed by chance).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: the reference's quantiles the bins are cut at
QUANTILES = np.linspace(0.1, 0.9, 9)
#: the floor of a bin's share in the PSI sum (an empty bin would make it infinite)
EPSILON = 1e-4


@dataclass(frozen=True)
class Reference:
    """A feature's reference sample: its values, sorted, and the PSI bins cut at its deciles."""

    values: np.ndarray  # sorted, finite
    edges: np.ndarray  # interior bin edges, increasing
    shares: np.ndarray  # the reference's share in each of the len(edges) + 1 bins

    @classmethod
    def of(cls, values: np.ndarray) -> Reference:
        finite = np.sort(np.asarray(values, dtype=np.float64)[np.isfinite(values)])
        if len(finite) == 0:
            return cls(finite, np.empty(0), np.ones(1))
        edges = np.unique(np.quantile(finite, QUANTILES))
        return cls(finite, edges, bin_shares(finite, edges))


def bin_shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The share of ``values`` in each bin cut at ``edges`` (a value equal to an edge: the bin below)."""
    counts = np.bincount(np.searchsorted(edges, values, side="left"), minlength=len(edges) + 1)
    shares: np.ndarray = counts / max(len(values), 1)
    return shares


def psi(reference: Reference, values: np.ndarray) -> float:
    """The population stability index of ``values`` (finite ones) against the reference's bins."""
    finite = values[np.isfinite(values)]
    if len(finite) == 0 or len(reference.values) == 0:
        return float("nan")
    expected = np.maximum(reference.shares, EPSILON)
    actual = np.maximum(bin_shares(finite, reference.edges), EPSILON)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def ks(reference: Reference, values: np.ndarray) -> float:
    """The two-sample Kolmogorov-Smirnov statistic of ``values`` (finite ones) against the reference."""
    sample = np.sort(values[np.isfinite(values)])
    if len(sample) == 0 or len(reference.values) == 0:
        return float("nan")
    points = np.concatenate([reference.values, sample])
    below_ref = np.searchsorted(reference.values, points, side="right") / len(reference.values)
    below_sample = np.searchsorted(sample, points, side="right") / len(sample)
    return float(np.max(np.abs(below_ref - below_sample)))
