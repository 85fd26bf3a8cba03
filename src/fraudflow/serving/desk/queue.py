"""The alert queue: a day's alerted cards, ranked by their highest score, and those an analyst reviewed.

A card is alerted on a day when one of its transactions is (its highest score of the day is at
least the threshold): the unit CP@k counts and investigators check. A card is reviewed when one of
its alerted transactions has, as its label in force, an analyst's verdict (``SOURCE = 'analyst'``);
an undone verdict (``analyst-undo``, see ``verdicts``) puts the card back in the queue.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from fraudflow.serving.desk.served import Served, day_number

#: the source of an analyst's verdict, and of its undoing
ANALYST = "analyst"
UNDO = "analyst-undo"


@dataclass(frozen=True)
class Label:
    """A transaction's label in force."""

    fraud: int
    source: str
    analyst: str | None
    time: dt.datetime


@dataclass(frozen=True)
class Card:
    """A card alerted on a day, as the queue lists it."""

    customer: int
    score: float  # its highest of the day
    model_id: str  # the model of its highest-scored transaction
    transactions: int  # of the day
    alerted: list[int]  # its alerted transactions' ids
    alerted_amount: float
    first_alert: dt.datetime
    verdict: Label | None  # the analyst's verdict in force (None: to review)


@dataclass(frozen=True)
class Queue:
    """A day's alerted cards: ``open`` (to review, highest score first) and ``reviewed`` (newest verdict first)."""

    day: dt.date
    open: list[Card]
    reviewed: list[Card]
    min_score: float
    alerted_cards: int  # before the score filter


def build(served: Served, day: dt.date, labels: Mapping[int, Label], min_score: float = 0.0) -> Queue:
    """The queue of ``day`` from the answers ``served`` and the labels in force."""
    rows = served.take(np.flatnonzero(served.day == day_number(day)))
    alerted_customers = np.unique(rows.customer[rows.alert])
    cards = [_card(rows, int(c), labels) for c in alerted_customers.tolist()]
    cards.sort(key=lambda c: (-c.score, c.customer))
    shown = [c for c in cards if c.score >= min_score]
    reviewed = sorted((c for c in shown if c.verdict is not None), key=lambda c: c.verdict.time, reverse=True)  # type: ignore[union-attr]
    return Queue(day, [c for c in shown if c.verdict is None], reviewed, min_score, len(cards))


def _card(rows: Served, customer: int, labels: Mapping[int, Label]) -> Card:
    mine = np.flatnonzero(rows.customer == customer)
    alerted = mine[rows.alert[mine]]
    top = mine[int(np.argmax(rows.score[mine]))]
    ids = rows.tx_id[alerted].tolist()
    verdicts = [labels[i] for i in ids if i in labels and labels[i].source == ANALYST]
    return Card(
        customer=customer,
        score=float(rows.score[top]),
        model_id=str(rows.model_id[top]),
        transactions=len(mine),
        alerted=ids,
        alerted_amount=float(rows.amount[alerted].sum()),
        first_alert=_time(int(rows.ts_us[alerted].min())),
        verdict=max(verdicts, key=lambda label: label.time) if verdicts else None,
    )


def _time(us: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=us)
