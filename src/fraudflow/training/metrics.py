"""Fraud metrics: AUC ROC, Average Precision, Card Precision@k (and its bound), alert budgets.

Card Precision@k follows spec/EVALUATION.md: for each test day, in day order, each customer's
maximum score and maximum label; customers already detected (fraudulent and in the top k of an
earlier day) are left out; the k highest are ranked and their fraudulent customers counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from fraudflow.training.protocol import K


@dataclass(frozen=True)
class CardPrecision:
    mean: float
    per_day: list[float]
    detected: int  # compromised cards found in the top k over the days


def card_precision_at_k(
    days: np.ndarray, customers: np.ndarray, labels: np.ndarray, scores: np.ndarray, k: int = K
) -> CardPrecision:
    """CP@k over the test days of ``days`` (any sortable day values)."""
    order = np.lexsort((customers, days))
    days, customers, labels, scores = days[order], customers[order], labels[order], scores[order]
    # one row per (day, customer): its maximum score and label
    first = np.flatnonzero(np.r_[True, (days[1:] != days[:-1]) | (customers[1:] != customers[:-1])])
    card_day = days[first]
    card = customers[first]
    card_score = np.maximum.reduceat(scores, first)
    card_label = np.maximum.reduceat(labels, first)
    detected = np.empty(0, dtype=card.dtype)
    per_day = []
    for lo, hi in _runs(card_day):
        keep = ~np.isin(card[lo:hi], detected)
        cards, s, y = card[lo:hi][keep], card_score[lo:hi][keep], card_label[lo:hi][keep]
        top = np.argsort(-s, kind="stable")[:k]
        per_day.append(float(y[top].sum()) / k)
        detected = np.concatenate([detected, cards[top][y[top] == 1]])
    return CardPrecision(float(np.mean(per_day)) if per_day else 0.0, per_day, len(detected))


def _runs(values: np.ndarray) -> list[tuple[int, int]]:
    bounds = np.flatnonzero(values[1:] != values[:-1]) + 1
    starts = np.r_[0, bounds]
    ends = np.r_[bounds, len(values)]
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


@dataclass(frozen=True)
class AlertBudget:
    budget: float  # share of transactions flagged
    threshold: float
    precision: float
    recall: float
    alerts: int


def at_alert_budget(labels: np.ndarray, scores: np.ndarray, budget: float = 0.01) -> AlertBudget:
    """Precision and recall when the ``budget`` share of highest scores raises an alert."""
    n_alerts = max(1, round(budget * len(scores)))
    top = np.argsort(-scores, kind="stable")[:n_alerts]
    hits = float(labels[top].sum())
    frauds = float(labels.sum())
    return AlertBudget(budget, float(scores[top].min()), hits / n_alerts, hits / frauds if frauds else 0.0, n_alerts)


@dataclass(frozen=True)
class Performance:
    """Scores judged on one test set: the handbook's three metrics, and CP@k's perfect-ranking bound."""

    auc_roc: float
    average_precision: float
    card_precision: float  # CP@k, the mean over the test days
    card_precision_bound: float  # CP@k of the perfect ranking (the labels as scores)
    card_precision_per_day: list[float]
    card_precision_bound_per_day: list[float]
    k: int
    #: CP@k of the oracle knowing only what was observable (``training.ceiling``); NaN when not judged
    card_precision_observable: float = float("nan")

    def to_json(self) -> dict[str, Any]:
        """The figures under the names metrics files and JSON output give them (``metric_names``)."""
        auc, ap, cp, bound = metric_names(self.k)
        figures: dict[str, Any] = {
            auc: self.auc_roc,
            ap: self.average_precision,
            cp: self.card_precision,
            bound: self.card_precision_bound,
            f"{cp}_per_day": self.card_precision_per_day,
            f"{bound}_per_day": self.card_precision_bound_per_day,
        }
        if self.card_precision_observable == self.card_precision_observable:  # not NaN
            figures[f"{cp}_observable"] = self.card_precision_observable
        return figures


def metric_names(k: int = K) -> tuple[str, str, str, str]:
    """The names of AUC ROC, average precision, CP@k and its bound in metrics files and JSON output."""
    return "auc_roc", "average_precision", f"card_precision_at_{k}", f"card_precision_at_{k}_bound"


def performance(
    days: np.ndarray, customers: np.ndarray, labels: np.ndarray, scores: np.ndarray, k: int = K
) -> Performance:
    """The handbook's three metrics, CP@k per day, and CP@k's perfect-ranking bound."""
    cp = card_precision_at_k(days, customers, labels, scores, k)
    bound = card_precision_at_k(days, customers, labels, labels.astype(np.float64), k)
    both = len(np.unique(labels)) == 2
    return Performance(
        auc_roc=float(roc_auc_score(labels, scores)) if both else float("nan"),
        average_precision=float(average_precision_score(labels, scores)) if both else float("nan"),
        card_precision=cp.mean,
        card_precision_bound=bound.mean,
        card_precision_per_day=cp.per_day,
        card_precision_bound_per_day=bound.per_day,
        k=k,
    )
