"""Metrics against straightforward reference computations on small data."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudflow.training.metrics import at_alert_budget, card_precision_at_k, performance


def reference_cp(days, customers, labels, scores, k):
    """The protocol as prose: per day, max per card, drop detected cards, top k, count frauds."""
    detected: set[int] = set()
    precisions = []
    for day in sorted(set(days)):
        cards: dict[int, tuple[float, int]] = {}
        for d, c, y, s in zip(days, customers, labels, scores, strict=True):
            if d == day and c not in detected:
                best_s, best_y = cards.get(c, (-np.inf, 0))
                cards[c] = (max(best_s, s), max(best_y, y))
        ranked = sorted(cards.items(), key=lambda kv: -kv[1][0])[:k]
        precisions.append(sum(y for _, (_, y) in ranked) / k)
        detected |= {c for c, (_, y) in ranked if y}
    return float(np.mean(precisions)), precisions


@given(st.data())
@settings(max_examples=60, deadline=None)
def test_card_precision_equals_the_reference(data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 80))
    days = np.array(data.draw(st.lists(st.integers(0, 4), min_size=n, max_size=n)))
    customers = np.array(data.draw(st.lists(st.integers(0, 12), min_size=n, max_size=n)))
    labels = np.array(data.draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)))
    # distinct scores: ties between cards are ranked arbitrarily by the protocol
    scores = np.array(data.draw(st.permutations(range(n)))) / n
    k = data.draw(st.integers(1, 6))
    got = card_precision_at_k(days, customers, labels, scores, k)
    mean, per_day = reference_cp(days.tolist(), customers.tolist(), labels.tolist(), scores.tolist(), k)
    assert got.per_day == pytest.approx(per_day)
    assert got.mean == pytest.approx(mean)


def test_a_card_found_on_one_day_is_not_counted_again() -> None:
    days = np.array([0, 0, 1, 1])
    cards = np.array([7, 8, 7, 8])
    labels = np.array([1, 0, 1, 1])
    scores = np.array([0.9, 0.1, 0.9, 0.2])
    cp = card_precision_at_k(days, cards, labels, scores, k=1)
    # day 0: card 7 (fraud) is found; day 1: card 7 is left out, card 8 (fraud) comes first
    assert cp.per_day == [1.0, 1.0] and cp.detected == 2


def test_the_bound_is_the_perfect_ranking() -> None:
    days = np.repeat([0, 1], 5)
    cards = np.tile(np.arange(5), 2)
    labels = np.array([1, 1, 0, 0, 0, 1, 1, 1, 0, 0])
    perf = performance(days, cards, labels, np.linspace(0, 1, 10), k=2)
    # perfect: day 0 finds cards 0 and 1; day 1 has only card 2 left that is fraudulent
    assert perf.card_precision_bound_per_day == [1.0, 0.5]
    assert perf.to_json()["card_precision_at_2_bound_per_day"] == [1.0, 0.5]
    assert 0 <= perf.auc_roc <= 1 and 0 <= perf.average_precision <= 1


def test_alert_budget() -> None:
    labels = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 1])
    scores = np.array([0.9, 0.8, 0.7, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.05])
    b = at_alert_budget(labels, scores, budget=0.3)
    assert (b.alerts, b.precision, b.recall, b.threshold) == (3, pytest.approx(2 / 3), pytest.approx(2 / 3), 0.7)
