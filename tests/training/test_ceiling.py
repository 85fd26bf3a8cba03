"""The observable oracle's CP@k (``training.ceiling``) on hand-built transactions."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest

from fraudflow import schema as s
from fraudflow.training.ceiling import observable, observable_card_precision
from fraudflow.training.metrics import card_precision_at_k

DAY0 = dt.datetime(2018, 8, 1, 12, 0)


def rows(spec: list[tuple[float, int, int, int]]) -> pa.Table:
    """(days after DAY0, terminal, TX_FRAUD, TX_FRAUD_SCENARIO) per transaction."""
    when = [DAY0 + dt.timedelta(days=d) for d, *_ in spec]
    return pa.table(
        {
            s.TX_DATETIME: pa.array(when, pa.timestamp("ns")),
            s.TERMINAL_ID: [t for _, t, _, _ in spec],
            s.TX_FRAUD: [f for _, _, f, _ in spec],
            s.TX_FRAUD_SCENARIO: [c for _, _, _, c in spec],
        }
    )


def test_a_compromised_terminals_frauds_are_observable_once_one_is_labelled() -> None:
    history = rows([(0, 5, 1, 2), (0, 6, 1, 2), (0, 7, 1, 1), (0, 8, 0, 0)])
    test = rows(
        [
            (3, 5, 1, 2),  # its terminal's first fraud is 3 days old: no label yet
            (7, 5, 1, 2),  # exactly 7 days: labelled
            (28, 6, 1, 2),  # exactly 28 days: another compromise's, out
            (27.5, 6, 1, 2),  # within its 28 days
            (9, 7, 1, 2),  # a label of another scenario on the terminal: it is known risky
            (9, 9, 1, 2),  # terminal 8 and 9 have no fraud known
            (9, 8, 1, 1),  # an amount above the limit
            (9, 8, 1, 3),  # a compromised card's inflated amount
            (9, 5, 0, 0),  # genuine
        ]
    )
    assert observable(test, history).tolist() == [False, True, False, True, True, False, True, True, False]
    assert observable(test.slice(6), history.slice(0, 0)).tolist() == [True, True, False]


def test_the_oracle_is_credited_only_with_cards_it_could_see() -> None:
    """Day 1: cards A (observable fraud), B (unobservable fraud), C (genuine); day 2: A again, D
    (observable), B again. With k = 2 the oracle finds A then D: 0.5 a day; the perfect ranking
    finds A and B, then D (A and B detected already): 0.75."""
    days = np.array([1, 1, 1, 2, 2, 2])
    cards = np.array([1, 2, 3, 1, 4, 2])
    labels = np.array([1, 1, 0, 1, 1, 1])
    seen = np.array([True, False, False, True, True, False])
    assert observable_card_precision(days, cards, seen, k=2) == pytest.approx(0.5)
    assert card_precision_at_k(days, cards, labels, labels.astype(float), k=2).mean == pytest.approx(0.75)
