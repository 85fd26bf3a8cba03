"""A batch of one transaction (one request at light load) is answered by ``Scorer._answer_one``:
the same answer, stored answer and prediction as the batch's way (``Scorer._answers``) gives it."""

from __future__ import annotations

import datetime as dt
import random
import re
from pathlib import Path

import pytest

from fraudflow.records import Transaction
from fraudflow.serving.engine import Scorer
from tests.serving.conftest import WORLD


def transactions(n: int) -> list[Transaction]:
    """``n`` transactions after the world's last day, on its customers and terminals, amounts and
    times of every kind (whole seconds and not, cents and not, a zero)."""
    rng = random.Random(3)
    start = dt.datetime.combine(WORLD.start_date + dt.timedelta(days=WORLD.nb_days), dt.time())
    txs = []
    for i in range(n):
        at = start + dt.timedelta(seconds=60 * i, microseconds=rng.choice([0, 1, 250_000, 999_999]))
        amount = rng.choice([0.0, 12.5, round(rng.uniform(1, 300), 2), rng.uniform(1, 1000), 1e6])
        customer, terminal = rng.randrange(WORLD.n_customers), rng.randrange(WORLD.n_terminals)
        txs.append(Transaction(10**9 + i, at, customer, terminal, amount))
    return txs


def answered_one_at_a_time(root: Path, txs: list[Transaction], threshold: float) -> tuple[list[str], list[str]]:
    """Each transaction scored alone (in order) by a scorer on a memory store: the answers' texts and
    the store's (their time served, which differs between two runs, checked and left out)."""
    scorer = Scorer.from_lake(root, online="memory://", threshold=threshold)
    bodies = [scorer.score([tx])[0].body for tx in txs]
    stored = []
    for _, _, answer in scorer.store.answers():
        at = re.search(r'"at":"([^"]*)"', answer)
        assert at is not None and dt.datetime.fromisoformat(at.group(1)) > dt.datetime(2026, 1, 1)
        stored.append(answer.replace(at.group(0), '"at":"…"'))
    return bodies, stored


@pytest.mark.parametrize("threshold", [0.5, 0.0], ids=["some-alerts", "every-alert"])
def test_a_transaction_alone_is_answered_as_the_batch_way_answers_it(
    served_lake: Path, monkeypatch: pytest.MonkeyPatch, threshold: float
) -> None:
    txs = transactions(200)
    fast = answered_one_at_a_time(served_lake, txs, threshold)
    monkeypatch.setattr(Scorer, "_answer_one", Scorer._answers)
    assert answered_one_at_a_time(served_lake, txs, threshold) == fast
    assert len(fast[1]) == len(txs) and all('"served":' in answer for answer in fast[1])
    assert any('"alert":true' in body for body in fast[0])
