"""One contract, every online store: memory, SQLite (WAL, a file) and a real redis-server: the log
(``record``, ``catch_up``, labels), bounded by time; answers; several processes sharing one log."""

from __future__ import annotations

import datetime as dt
import itertools
import multiprocessing
import sqlite3
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis

from fraudflow.errors import ConfigError, LakeError
from fraudflow.records import Transaction, TxColumns, to_us
from fraudflow.store.online import interface
from fraudflow.store.online.connect import open_store
from fraudflow.store.online.interface import CaughtUp, OnlineStore, answers_window
from fraudflow.store.online.memory import MemoryStore
from fraudflow.store.online.redis import RedisStore
from fraudflow.store.online.sqlite import SQLiteStore

DAY = 86_400_000_000
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


KEEP_US = 40 * DAY  # the log's history in these tests


def batch(*txs: Transaction) -> TxColumns:
    return TxColumns.of(txs)


def log_of(caught: CaughtUp) -> dict[int, tuple[str, int]]:
    """seq -> ("T", tx_id) or ("L", tx_id) of caught-up entries."""
    entries = {int(s): ("T", int(i)) for s, i in zip(caught.seqs, caught.txs.tx_id, strict=True)}
    return entries | {int(s): ("L", int(i)) for s, i in zip(caught.label_seqs, caught.label_ids, strict=True)}


def test_record_numbers_transactions_in_arrival_order(store: OnlineStore) -> None:
    # tx 1 arrives late (its time before tx 2's): the log keeps the arrival order, and each time
    with store.record(batch(tx(2, 60, amount=20.5), tx(1, 30, amount=0.1 + 0.2)), since=0, keep_us=KEEP_US) as rec:
        assert rec.seqs.tolist() == [1, 2] and rec.new.tolist() == [True, True]
        assert rec.answers == [None, None] and rec.fraud.tolist() == [0, 0]
        assert len(rec.caught_up.seqs) == 0 and rec.caught_up.last_seq == 0  # its own are not caught up
        rec.answer(['{"a":2}', '{"a":1}'])
    with store.record(batch(tx(3, 90, customer=7)), since=2, keep_us=KEEP_US) as rec:
        assert rec.seqs.tolist() == [3]
        rec.answer(['{"a":3}'])
    caught = store.catch_up(0)
    assert caught.seqs.tolist() == [1, 2, 3] and caught.txs.tx_id.tolist() == [2, 1, 3]
    assert caught.txs.ts_us.tolist() == [to_us(T0) + 60_000_000, to_us(T0) + 30_000_000, to_us(T0) + 90_000_000]
    assert caught.txs.customer.tolist() == [1, 1, 7] and caught.txs.terminal.tolist() == [2, 2, 2]
    assert caught.txs.amount.tolist() == [20.5, 0.1 + 0.2, 10.0] and caught.last_seq == 3  # exactly
    assert store.catch_up(2).seqs.tolist() == [3] and store.catch_up(3).last_seq == 3
    assert list(store.answers()) == [(1, 2, '{"a":2}'), (2, 1, '{"a":1}'), (3, 3, '{"a":3}')]


def test_a_recorded_transaction_keeps_its_seq_and_first_answer(store: OnlineStore) -> None:
    with store.record(batch(tx(5, 0), tx(6, 1), tx(5, 0)), since=0, keep_us=KEEP_US) as rec:
        # repeated within the batch: appended once, the later occurrence is not new
        assert rec.seqs.tolist() == [1, 2, 1] and rec.new.tolist() == [True, True, False]
        rec.answer(['{"first":5}', '{"first":6}', '{"second":5}'])
    with store.record(batch(tx(7, 2), tx(5, 0, amount=99.0)), since=2, keep_us=KEEP_US) as rec:
        assert rec.seqs.tolist() == [3, 1] and rec.new.tolist() == [True, False]
        assert rec.answers == [None, '{"first":5}']
        rec.answer(['{"first":7}', '{"again":5}'])  # a duplicate's answer is not stored over the first
    assert dict((i, a) for _, i, a in store.answers()) == {5: '{"first":5}', 6: '{"first":6}', 7: '{"first":7}'}
    assert store.catch_up(0).txs.amount.tolist() == [10.0, 10.0, 10.0]  # tx 5 was appended once


def test_recorded_but_unanswered_comes_back_with_its_seq(store: OnlineStore) -> None:
    with store.record(batch(tx(1, 0), tx(2, 1)), since=0, keep_us=KEEP_US):
        pass  # the process dies before the answers are stored: no answer given
    with store.record(batch(tx(3, 2)), since=0, keep_us=KEEP_US) as rec:
        rec.answer(['{"x":3}'])
    with store.record(batch(tx(2, 1), tx(4, 3)), since=3, keep_us=KEEP_US) as rec:
        assert rec.seqs.tolist() == [2, 4] and rec.new.tolist() == [False, True] and rec.answers == [None, None]
        rec.answer(['{"x":2}', '{"x":4}'])
    assert [(seq, i) for seq, i, _ in store.answers()] == [(2, 2), (3, 3), (4, 4)]


def test_an_exception_stores_no_answer(store: OnlineStore) -> None:
    with pytest.raises(RuntimeError), store.record(batch(tx(1, 0)), since=0, keep_us=KEEP_US) as rec:
        rec.answer(['{"x":1}'])
        raise RuntimeError("the model failed")
    assert list(store.answers()) == []
    with store.record(batch(tx(1, 0)), since=0, keep_us=KEEP_US) as rec:  # sent again: scored then
        assert rec.answers == [None] and rec.seqs.tolist() == [1]  # SQLite rolled the append back too
        rec.answer(['{"x":1}'])
    assert list(store.answers()) == [(1, 1, '{"x":1}')]


def test_labels_are_logged_and_returned_with_their_transactions(store: OnlineStore) -> None:
    with store.record(batch(tx(1, 0)), since=0, keep_us=KEEP_US) as rec:
        assert rec.fraud.tolist() == [0]
    store.add_labels({2: 1})  # a label may come before its transaction
    with store.record(batch(tx(2, 1)), since=1, keep_us=KEEP_US) as rec:
        assert rec.fraud.tolist() == [1] and rec.seqs.tolist() == [3] and log_of(rec.caught_up) == {2: ("L", 2)}
    store.add_labels({1: 1, 2: 0})
    caught = store.catch_up(0)
    assert log_of(caught) == {1: ("T", 1), 2: ("L", 2), 3: ("T", 2), 4: ("L", 1), 5: ("L", 2)}
    assert caught.fraud.tolist() == [1, 0]  # each transaction's label now
    assert caught.label_ids.tolist() == [2, 1, 2] and caught.labels.tolist() == [1, 1, 0]
    with store.record(batch(tx(9, 5)), since=3, keep_us=KEEP_US) as rec:
        assert rec.caught_up.label_ids.tolist() == [1, 2] and rec.caught_up.last_seq == 5


def test_the_log_forgets_entries_older_than_its_history(store: OnlineStore) -> None:
    with store.record(batch(tx(1, 0), tx(2, 1)), since=0, keep_us=KEEP_US) as rec:
        rec.answer(["{}", None])
    store.add_labels({1: 1})
    later = 40 * 86_400 + 1  # seconds: past the history of tx 1 and tx 2 (and of the label)
    with store.record(batch(tx(3, later)), since=0, keep_us=KEEP_US) as rec:
        assert rec.caught_up.seqs.tolist() == [1, 2]  # read before the trim
    assert store.catch_up(0).seqs.tolist() == [4] and store.catch_up(0).label_seqs.tolist() == []
    # their answer and label went with them: the store stays bounded (idempotency lasts the history)
    assert list(store.answers()) == []
    with store.record(batch(tx(1, 0), tx(2, 1)), since=4, keep_us=KEEP_US) as rec:
        # forgotten: appended again, as new (out of every window now)
        assert rec.new.tolist() == [True, True] and rec.answers == [None, None] and rec.seqs.tolist() == [5, 6]
        assert rec.fraud.tolist() == [0, 0]


ANSWERS_US = 2 * DAY  # the answers' window in these tests, shorter than the log's


def test_an_answer_is_forgotten_after_its_window_while_its_entry_stays(store: OnlineStore) -> None:
    with store.record(batch(tx(1, 0), tx(2, 3600)), since=0, keep_us=KEEP_US, answers_us=ANSWERS_US) as rec:
        rec.answer(['{"first":1}', '{"first":2}'])
    store.add_labels({1: 1})
    later = 2 * 86_400 + 1800  # seconds: tx 1 is past the answers' window, tx 2 not yet
    with store.record(batch(tx(3, later)), since=3, keep_us=KEEP_US, answers_us=ANSWERS_US) as rec:
        rec.answer(['{"first":3}'])
    assert dict((i, a) for _, i, a in store.answers()) == {2: '{"first":2}', 3: '{"first":3}'}
    caught = store.catch_up(0)  # the log still holds tx 1, its label, and tx 2
    assert log_of(caught) == {1: ("T", 1), 2: ("T", 2), 3: ("L", 1), 4: ("T", 3)}
    with store.record(batch(tx(1, 0), tx(2, 3600)), since=4, keep_us=KEEP_US, answers_us=ANSWERS_US) as rec:
        # tx 1 sent again: its seq and label, no answer (answered anew); tx 2 gets its first answer
        assert rec.seqs.tolist() == [1, 2] and rec.new.tolist() == [False, False]
        assert rec.answers == [None, '{"first":2}'] and rec.fraud.tolist() == [1, 0]
        rec.answer(['{"again":1}', None])
    # an answer already out of the window is not stored
    assert dict((i, a) for _, i, a in store.answers()) == {2: '{"first":2}', 3: '{"first":3}'}
    assert store.catch_up(0).seqs.tolist() == [1, 2, 4]  # nothing appended again


def test_answers_go_after_their_window_as_the_stream_goes_on(store: OnlineStore) -> None:
    """A transaction an hour for 6 days: the answers held are those of the last 2 days, the log's 6."""
    for hour in range(6 * 24):
        with store.record(batch(tx(hour + 1, hour * 3600)), since=0, keep_us=KEEP_US, answers_us=ANSWERS_US) as rec:
            rec.answer([f'{{"h":{hour}}}'])
    held = sorted(i for _, i, _ in store.answers())
    # within a minute of the window's edge a store may still hold one (SQLite forgets a minute at a time)
    assert held == list(range(6 * 24 - 48, 6 * 24 + 1)) or held == list(range(6 * 24 - 47, 6 * 24 + 1))
    assert len(store.catch_up(0).seqs) == 6 * 24


class Clock:
    """This host's clock as the stores read it (``interface.time``), set by the test."""

    def __init__(self, at: dt.datetime) -> None:
        self.at = at

    def time_ns(self) -> int:
        return to_us(self.at) * 1000


def test_a_transaction_dated_years_ahead_makes_no_store_forget_its_history(
    store: OnlineStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What is forgotten moves with the newest transaction's time, but never past this host's clock
    and a day: one transaction dated 1,000 days ahead forgets nothing of the log (it used to trim it
    all), the answers stay, and a label entry after it takes a time no later than that limit (so it
    is forgotten with the others, not kept until then)."""
    clock = Clock(T0 + dt.timedelta(hours=1))
    monkeypatch.setattr(interface, "time", clock)
    with store.record(batch(tx(1, 0), tx(2, 3600), tx(3, 7200)), 0, KEEP_US, ANSWERS_US) as rec:
        rec.answer(['{"a":1}', '{"a":2}', '{"a":3}'])
    store.add_labels({1: 1})
    with store.record(batch(tx(99, 1000 * 86_400.0)), 4, KEEP_US, ANSWERS_US) as rec:
        rec.answer(['{"a":99}'])
    held = {1: ("T", 1), 2: ("T", 2), 3: ("T", 3), 4: ("L", 1), 5: ("T", 99)}
    assert log_of(store.catch_up(0)) == held
    assert sorted(i for _, i, _ in store.answers()) == [1, 2, 3, 99]
    store.add_labels({2: 0})
    clock.at = T0 + dt.timedelta(days=60)  # 60 days on: the log's 40 days reach back to day 20
    with store.record(batch(tx(100, 60 * 86_400.0)), 6, KEEP_US, ANSWERS_US) as rec:
        rec.answer(['{"a":100}'])
    assert log_of(store.catch_up(0)) == {5: ("T", 99), 7: ("T", 100)}


def test_the_answers_window_is_at_most_the_logs() -> None:
    assert answers_window(None, KEEP_US) == DAY and answers_window(None, DAY // 2) == DAY // 2  # default: 1 day
    assert answers_window(KEEP_US, KEEP_US) == KEEP_US
    with pytest.raises(
        ConfigError, match=r"^an answers window of 41 days is longer than the online store's log \(40 days"
    ):
        answers_window(KEEP_US + DAY, KEEP_US)
    with pytest.raises(ConfigError, match="must be positive"):
        answers_window(0, KEEP_US)


def test_load_appends_to_the_log(store: OnlineStore) -> None:
    t = to_us(T0)
    assert store.load([(t, 1, 3, 4, 1.5), (t + 1, 2, 3, 5, 2.5)], {2: 1}) == 2
    caught = store.catch_up(0)
    assert log_of(caught) == {1: ("T", 1), 2: ("T", 2), 3: ("L", 2)} and caught.fraud.tolist() == [0, 1]
    assert caught.txs.customer.tolist() == [3, 3] and caught.txs.amount.tolist() == [1.5, 2.5]
    store.load([(t + 1, 2, 3, 5, 2.5), (t + 2, 6, 3, 5, 1.0)], {})  # tx 2 is held already
    assert log_of(store.catch_up(3)) == {4: ("T", 6)}


@pytest.fixture(params=["sqlite", "redis"])
def shared(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], OnlineStore]]:
    """Opens store objects on one SQLite file or one Redis database, as several processes would."""
    where = str(tmp_path / "shared.sqlite") if request.param == "sqlite" else request.getfixturevalue("redis_url")
    opened: list[OnlineStore] = []

    def open_one() -> OnlineStore:
        opened.append(_open(request.param, where, f"shared-{tmp_path.name}"))
        return opened[-1]

    open_one().clear()
    yield open_one
    for each in opened:
        each.close()


def _open(kind: str, where: str, namespace: str) -> OnlineStore:
    return SQLiteStore(where) if kind == "sqlite" else RedisStore(where, namespace=namespace)


def test_each_store_object_catches_up_with_the_others(shared: Callable[[], OnlineStore]) -> None:
    a, b = shared(), shared()
    with a.record(batch(tx(1, 0), tx(2, 1)), since=0, keep_us=KEEP_US) as rec:
        rec.answer(["{}", "{}"])
    with b.record(batch(tx(3, 2, customer=9), tx(1, 0)), since=0, keep_us=KEEP_US) as rec:
        assert rec.seqs.tolist() == [3, 1] and rec.answers == [None, "{}"]
        assert log_of(rec.caught_up) == {1: ("T", 1), 2: ("T", 2)}
        rec.answer(["{}", None])
    b.add_labels({2: 1})
    with a.record(batch(tx(4, 3)), since=2, keep_us=KEEP_US) as rec:
        assert log_of(rec.caught_up) == {3: ("T", 3), 4: ("L", 2)} and rec.seqs.tolist() == [5]
        assert rec.caught_up.txs.customer.tolist() == [9]
    assert log_of(a.catch_up(0)) == log_of(b.catch_up(0))


PROCESSES = 4
BATCHES = 40


def _replica(kind: str, where: str, namespace: str, worker: int, start: Any, results: Any) -> None:
    """One service process: appends batches for the shared customers and terminals, holds what it
    caught up, and checks that each new transaction's seq comes right after what it holds."""
    try:
        store = _open(kind, where, namespace)
        rng = np.random.default_rng(worker)
        held: dict[int, tuple[str, int]] = {}
        since, gaps = 0, 0
        start.wait()
        for b in range(BATCHES):
            n = int(rng.integers(1, 12))
            txs = [
                tx(worker * 100_000 + b * 100 + j, b * 60 + j, int(rng.integers(0, 5)), int(rng.integers(0, 3)))
                for j in range(n)
            ]
            with store.record(batch(*txs), since, KEEP_US) as rec:
                held |= log_of(rec.caught_up)
                # the entries before this batch's are exactly those held: its features see all of them
                gaps += set(range(1, int(rec.seqs.min()))) != held.keys()
                held |= {int(s): ("T", t.transaction_id) for s, t in zip(rec.seqs, txs, strict=True)}
                rec.answer(["{}"] * n)
            if b % 10 == 9:
                store.add_labels({txs[0].transaction_id: 1})
            time.sleep(0.001)  # the next requests arrive
            since = max(held)
        start.wait()  # every process has appended all its batches
        held |= log_of(store.catch_up(since))
        store.close()
        results.put((worker, gaps, sorted(held.items())))
    except BaseException:
        results.put((worker, -1, traceback.format_exc()))


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_four_processes_share_one_log(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    where = str(tmp_path / "replicas.sqlite") if kind == "sqlite" else request.getfixturevalue("redis_url")
    namespace = f"replicas-{tmp_path.name}"
    _open(kind, where, namespace).clear()
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Barrier(PROCESSES, timeout=60), ctx.Queue()
    procs = [ctx.Process(target=_replica, args=(kind, where, namespace, w, start, results)) for w in range(PROCESSES)]
    for p in procs:
        p.start()
    got = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
    errors = [held for _, gaps, held in got if gaps < 0]
    assert not errors, errors[0]
    assert [gaps for _, gaps, _ in got] == [0] * PROCESSES
    reader = _open(kind, where, namespace)
    log = log_of(reader.catch_up(0))
    reader.close()
    assert sorted(log) == list(range(1, len(log) + 1))  # unique, without gaps
    sent = [i for i, (kind_, _) in log.items() if kind_ == "T"]
    assert len(sent) == len({log[i][1] for i in sent})  # each transaction once
    assert sum(1 for k, _ in log.values() if k == "L") == PROCESSES * BATCHES // 10
    workers = [log[i][1] // 100_000 for i in sorted(sent)]
    assert sum(a != b for a, b in itertools.pairwise(workers)) > 2 * PROCESSES  # they did append at once
    for _, _, held in got:
        assert dict(held) == log  # every process reconstructs the same log


def test_the_log_stays_bounded(store: OnlineStore) -> None:
    """A long stream (a transaction a day for 120 days, a label every tenth): the log, and the
    answers, hold only the entries of the last ``keep_us``, whatever the store has seen."""
    keep = 10 * DAY
    for day in range(120):
        with store.record(batch(tx(day + 1, day * 86_400, customer=day % 3)), since=0, keep_us=keep) as rec:
            rec.answer(["{}"])
        if day % 10 == 9:
            store.add_labels({day + 1: 1})
        held = store.catch_up(0)
        newest = to_us(T0) + day * DAY
        assert held.txs.ts_us.min() > newest - keep and len(held.seqs) == min(day + 1, 10)
        assert len(held.label_seqs) <= 1
        assert [tx_id for _, tx_id, _ in store.answers()] == held.txs.tx_id.tolist()  # they go with them


def test_meta(store: OnlineStore) -> None:
    assert store.get_meta("w") is None
    store.set_meta("w", "2018-09-30")
    assert store.get_meta("w") == "2018-09-30"


def test_the_log_survives_reopening(tmp_path: Path, redis_url: str) -> None:
    for make in (lambda: SQLiteStore(str(tmp_path / "s.sqlite")), lambda: RedisStore(redis_url, "persist")):
        first = make()
        first.clear()
        with first.record(batch(tx(1, 0)), since=0, keep_us=KEEP_US) as rec:
            rec.answer(['{"x":1}'])
        first.add_labels({1: 1})
        first.close()
        again = make()
        assert log_of(again.catch_up(0)) == {1: ("T", 1), 2: ("L", 1)} and list(again.answers()) == [(1, 1, '{"x":1}')]
        with again.record(batch(tx(1, 0), tx(2, 1)), since=2, keep_us=KEEP_US) as rec:
            assert rec.answers == ['{"x":1}', None] and rec.seqs.tolist() == [1, 3]  # the seqs go on
        again.close()


def test_a_store_from_before_the_log_is_refused(tmp_path: Path, redis_url: str) -> None:
    """A store the per-transaction service wrote (each entity's events, answers outside the log)
    would give features without those events: it is refused, saying what to do."""
    old = tmp_path / "old.sqlite"
    with sqlite3.connect(old) as con:
        con.execute("CREATE TABLE events (kind INTEGER, entity INTEGER, ts INTEGER, tx_id INTEGER, amount REAL)")
        con.execute("CREATE TABLE answers (tx_id INTEGER PRIMARY KEY, answer TEXT NOT NULL)")
    with pytest.raises(LakeError, match=r"earlier fraudflow.*move it aside"):
        SQLiteStore(str(old))
    client = redis.Redis.from_url(redis_url)
    client.delete("old:answer_seqs")
    client.hset("old:answers", "1", "{}")  # an answer without its seq
    with pytest.raises(LakeError, match=r"earlier fraudflow.*delete its keys"):
        RedisStore(redis_url, "old")


def test_open_store_urls(tmp_path: Path) -> None:
    assert isinstance(open_store(None, str(tmp_path)), SQLiteStore)
    assert (tmp_path / "online.sqlite").exists()
    assert isinstance(open_store("memory://"), MemoryStore)
    with pytest.raises(ConfigError, match="unknown online store"):
        open_store("postgres://x")
