"""One contract, every online store: memory, SQLite (WAL, a file) and a real redis-server."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from fraudflow.errors import ConfigError
from fraudflow.records import CUSTOMER, TERMINAL, Transaction, to_us
from fraudflow.store.online.connect import open_store
from fraudflow.store.online.interface import OnlineStore
from fraudflow.store.online.memory import MemoryStore
from fraudflow.store.online.redis import RedisStore
from fraudflow.store.online.sqlite import SQLiteStore

DAY = 86_400_000_000
KEEP = {CUSTOMER: 30 * DAY, TERMINAL: 37 * DAY}
T0 = dt.datetime(2018, 10, 1, 12, 0, 0)


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OnlineStore]:
    if request.param == "memory":
        opened: OnlineStore = MemoryStore()
    elif request.param == "sqlite":
        opened = SQLiteStore(str(tmp_path / "online.sqlite"))
    else:
        opened = RedisStore(request.getfixturevalue("redis_url"), namespace=f"test-{tmp_path.name}")
    opened.clear()
    yield opened
    opened.close()


def tx(i: int, seconds: float, customer: int = 1, terminal: int = 2, amount: float = 10.0) -> Transaction:
    return Transaction(i, T0 + dt.timedelta(seconds=seconds), customer, terminal, amount)


def test_commit_then_events_in_time_order(store: OnlineStore) -> None:
    assert store.commit(tx(2, 60, amount=20.5), '{"a":2}', KEEP)
    assert store.commit(tx(1, 30, amount=10.25), '{"a":1}', KEEP)  # arrives late: placed in time order
    ev = store.events(CUSTOMER, 1, 0)
    assert ev.ids == [1, 2] and ev.amounts == [10.25, 20.5] and ev.frauds == [0, 0]
    assert ev.ts == [to_us(T0) + 30_000_000, to_us(T0) + 60_000_000]
    assert store.events(TERMINAL, 2, 0).ids == [1, 2]
    assert store.events(CUSTOMER, 1, to_us(T0) + 30_000_000).ids == [2]  # strictly after since_us
    assert store.events(CUSTOMER, 99, 0).ids == []


def test_a_transaction_is_committed_once(store: OnlineStore) -> None:
    assert store.commit(tx(5, 0), '{"first":true}', KEEP)
    assert not store.commit(tx(5, 0, amount=99.0), '{"second":true}', KEEP)
    assert store.answer(5) == '{"first":true}'
    assert store.events(CUSTOMER, 1, 0).amounts == [10.0]
    assert store.answer(6) is None
    assert list(store.answers()) == [(5, '{"first":true}')]


def test_labels_arrive_before_or_after(store: OnlineStore) -> None:
    store.add_labels({7: 1})
    store.commit(tx(7, 0), "{}", KEEP)
    store.commit(tx(8, 1), "{}", KEEP)
    store.add_labels({8: 1})
    assert store.events(TERMINAL, 2, 0).frauds == [1, 1]


def test_history_is_trimmed_per_entity(store: OnlineStore) -> None:
    store.commit(tx(1, 0), "{}", KEEP)
    store.commit(tx(2, 31 * 86_400), "{}", KEEP)  # 31 days later: the customer forgets tx 1
    assert store.events(CUSTOMER, 1, 0).ids == [2]
    assert store.events(TERMINAL, 2, 0).ids == [1, 2]  # terminals keep 37 days


def test_load_and_meta(store: OnlineStore) -> None:
    t = to_us(T0)
    n = store.load([(t, 1, 3, 4, 1.5), (t + 1, 2, 3, 5, 2.5)], {2: 1})
    assert n == 2
    assert store.events(CUSTOMER, 3, 0).ids == [1, 2]
    assert store.events(TERMINAL, 5, 0).frauds == [1]
    assert store.get_meta("w") is None
    store.set_meta("w", "2018-09-30")
    assert store.get_meta("w") == "2018-09-30"


def test_state_survives_reopening(tmp_path: Path, redis_url: str) -> None:
    for make in (lambda: SQLiteStore(str(tmp_path / "s.sqlite")), lambda: RedisStore(redis_url, "persist")):
        first = make()
        first.clear()
        first.commit(tx(1, 0), '{"x":1}', KEEP)
        first.close()
        again = make()
        assert again.answer(1) == '{"x":1}' and again.events(CUSTOMER, 1, 0).ids == [1]
        again.close()


def test_open_store_urls(tmp_path: Path) -> None:
    assert isinstance(open_store(None, str(tmp_path)), SQLiteStore)
    assert (tmp_path / "online.sqlite").exists()
    assert isinstance(open_store("memory://"), MemoryStore)
    with pytest.raises(ConfigError, match="unknown online store"):
        open_store("postgres://x")
