"""A transaction dated years ahead does not make the service's windows forget their events: the
transactions after it get the features they get without it (the stores' side:
``tests/store/test_online_contract.py``)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from fraudflow.records import Transaction
from fraudflow.serving.engine import Scorer
from fraudflow.store.online import interface
from tests.serving.test_single_answer import transactions
from tests.store.test_online_contract import Clock


def test_a_transaction_dated_years_ahead_leaves_the_windows_their_events(
    served_lake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Scored on the same customer and terminal as the next ones, 1,000 days ahead of them and of this
    host's clock (set to the traffic's first hour): the windows used to forget every event held (the
    lake's history included), and the next transactions' features came out of empty windows."""
    txs = transactions(40)
    monkeypatch.setattr(interface, "time", Clock(txs[0].tx_datetime + dt.timedelta(hours=1)))
    later = txs[20]
    years_ahead = later.tx_datetime + dt.timedelta(days=1000)
    ahead = Transaction(2 * 10**9, years_ahead, later.customer_id, later.terminal_id, 50.0)
    with_it, plain = (Scorer.from_lake(served_lake, online="memory://") for _ in range(2))
    with_it.score(txs[:20])
    with_it.score([ahead])
    plain.score(txs[:20])
    after, expected = with_it.features(txs[20:]), plain.features(txs[20:])
    assert [f.features for f in after] == [f.features for f in expected]
    assert any(value > 0 for f in expected for name, value in f.features.items() if "NB_TX" in name)
