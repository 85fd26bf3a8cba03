"""The detectable ceiling of CP@k: what an oracle knowing only what was observable could reach.

The perfect-ranking bound scores every fraud 1, even those that carry no signal when they happen.
The observable oracle scores 1 only the frauds it could have seen, by this rule (strict), on the
simulator's scenarios (``TX_FRAUD_SCENARIO``):

- scenario 1 (an amount above the fixed limit): always observable;
- scenario 3 (a compromised card, a third of its amounts multiplied by 5): always observable, the
  amount stands out of the card's own history;
- scenario 2 (a compromised terminal, all its transactions fraudulent for 28 days): observable only
  once the terminal has a labelled fraud, that is a fraud (of any scenario) at least ``DELAY_DAYS``
  (7) days older and less than ``COMPROMISE_DAYS`` (28) days older; a compromise's first week of
  frauds is invisible (no label yet, nothing else changes);
- a fraud of any other scenario: observable.

Everything else scores 0, and the oracle is credited only with the cards that have an observable
fraud that day: its CP@k is ``card_precision_at_k`` with the observable frauds as labels and scores
(cards already detected left out, as for a model).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fraudflow import schema
from fraudflow.lake import Lake
from fraudflow.records import US_PER_DAY
from fraudflow.training.metrics import card_precision_at_k
from fraudflow.training.protocol import DELAY_DAYS, K

#: how long a compromised terminal stays compromised (the simulator's scenario 2)
COMPROMISE_DAYS = 28
TERMINAL_SCENARIO = 2


def observable(test: pa.Table, history: pa.Table) -> np.ndarray:
    """Which transactions of ``test`` are observable frauds (bool), by the module's rule.

    ``history``: transactions (TX_DATETIME, TERMINAL_ID, TX_FRAUD) covering the
    ``COMPROMISE_DAYS`` before ``test``'s first day, ``test``'s days too or not.
    """
    fraud: np.ndarray = test[schema.TX_FRAUD].to_numpy() == 1
    scenario = test[schema.TX_FRAUD_SCENARIO].to_numpy()
    seen: np.ndarray = fraud.copy()
    on_terminal = np.flatnonzero(fraud & (scenario == TERMINAL_SCENARIO))
    if not len(on_terminal):
        return seen
    known = history[schema.TX_FRAUD].to_numpy() == 1  # the labels a model's terminal windows see
    known_ts = schema.timestamps_us(history[schema.TX_DATETIME])[known]
    known_terminal = history[schema.TERMINAL_ID].to_numpy()[known]
    order = np.lexsort((known_ts, known_terminal))
    known_ts, known_terminal = known_ts[order], known_terminal[order]
    ts = schema.timestamps_us(test[schema.TX_DATETIME])
    terminal = test[schema.TERMINAL_ID].to_numpy()
    for i in on_terminal:
        lo, hi = (
            np.searchsorted(known_terminal, terminal[i], "left"),
            np.searchsorted(known_terminal, terminal[i], "right"),
        )
        times = known_ts[lo:hi]
        labelled = times[(times <= ts[i] - DELAY_DAYS * US_PER_DAY) & (times > ts[i] - COMPROMISE_DAYS * US_PER_DAY)]
        seen[i] = len(labelled) > 0
    return seen


def observable_in_lake(lake: Lake, test: pa.Table) -> np.ndarray:
    """``observable`` over the lake's transactions of the ``COMPROMISE_DAYS`` before ``test`` and its days."""
    bounds = pc.min_max(test[schema.PARTITION_COLUMN])
    first, last = bounds["min"].as_py(), bounds["max"].as_py()
    wanted = [d for d in lake.partitions("transactions") if first - dt.timedelta(days=COMPROMISE_DAYS) <= d <= last]
    columns = [schema.TX_DATETIME, schema.TERMINAL_ID, schema.TX_FRAUD]
    return observable(test, lake.read_partitions("transactions", wanted, columns=columns))


def observable_card_precision(days: np.ndarray, customers: np.ndarray, seen: np.ndarray, k: int = K) -> float:
    """CP@k of the oracle scoring the observable frauds ``seen`` 1 and everything else 0."""
    flags = seen.astype(np.int64)
    return card_precision_at_k(days, customers, flags, flags.astype(np.float64), k).mean
