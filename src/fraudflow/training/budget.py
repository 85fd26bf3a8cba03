"""The alert threshold from a budget of cards a day.

Investigators check a fixed number of cards a day (CP@100 assumes 100). A transaction is alerted
when its score is at least the threshold, so a card is alerted on a day when its highest score that
day is: the threshold is the ``n``-th highest of the card-day maxima of the days it is chosen on,
``n`` the budget times the number of days, so that on average ``cards_per_day`` cards a day are
alerted there. When cards tie across the ``n``-th, the threshold is the next higher score (at most
the budget, fewer by the tied cards), unless the tie is at the top; when there are fewer cards than
the budget, every card is alerted. ``training.workflow.train`` chooses it on every transaction of
the held-out test week of the model's own split (as the service scores them: cards with known
frauds too) and stores it in the model's ``metadata.json`` under ``alert_budget``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from fraudflow import schema
from fraudflow.errors import ConfigError
from fraudflow.training.protocol import K

#: the default budget: the K of CP@K
CARDS_PER_DAY = K
#: where a model's ``metadata.json`` keeps its budget
METADATA_KEY = "alert_budget"


@dataclass(frozen=True)
class CardBudget:
    """A threshold chosen for a budget of cards a day, and what it alerted on the days it was chosen on."""

    cards_per_day: float
    threshold: float
    alerted_cards_per_day: float  # the mean over the days, at the threshold
    first_day: str
    last_day: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def alerted_cards(table: pa.Table, scores: np.ndarray, threshold: float) -> np.ndarray:
    """Cards alerted each day (a card once a day, whatever its number of alerted transactions), by day."""
    days, maxima = _card_day_maxima(table, scores)
    per_day: np.ndarray = np.array([int((maxima[days == d] >= threshold).sum()) for d in np.unique(days)])
    return per_day


def choose(table: pa.Table, scores: np.ndarray, cards_per_day: float = CARDS_PER_DAY) -> CardBudget:
    """The threshold that alerts ``cards_per_day`` cards a day on average over ``table``'s days
    (``table``: the transactions scored, with their day and customer)."""
    if not cards_per_day > 0:
        raise ConfigError(f"the alert budget must be a positive number of cards a day, got {cards_per_day}")
    if len(scores) == 0:
        raise ConfigError("no transactions to choose an alert threshold on")
    days, maxima = _card_day_maxima(table, scores)
    n_days = len(np.unique(days))
    ranked = np.sort(maxima)[::-1]
    n = max(1, round(cards_per_day * n_days))
    threshold = float(ranked[min(n, len(ranked)) - 1])
    if n < len(ranked) and ranked[n] == threshold:  # cards tied across the budget: the next score up
        above = ranked[:n][ranked[:n] > threshold]
        threshold = float(above[-1]) if len(above) else threshold
    alerted = float((maxima >= threshold).sum()) / n_days
    return CardBudget(float(cards_per_day), threshold, alerted, str(days.min()), str(days.max()))


def stored(metadata: Mapping[str, Any]) -> CardBudget | None:
    """The budget a model's metadata holds; None for a model saved before budgets were stored."""
    entry = metadata.get(METADATA_KEY)
    return None if entry is None else CardBudget(**entry)


def _card_day_maxima(table: pa.Table, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each (day, card)'s highest score: the days and the maxima, one entry per card-day."""
    days = table[schema.PARTITION_COLUMN].to_numpy()
    customers = table[schema.CUSTOMER_ID].to_numpy()
    order = np.lexsort((customers, days))
    days, customers, ordered = days[order], customers[order], scores[order]
    first = np.flatnonzero(np.r_[True, (days[1:] != days[:-1]) | (customers[1:] != customers[:-1])])
    return days[first], np.maximum.reduceat(ordered, first)
