"""The SQLite store's ``record`` by batch size (one id by ``= ?``, a few by a ``VALUES`` list, more by
``json_each``) gives what the memory store gives; its answers' window reads the log's newest time
from the batch's lookup, the batch's own new transactions included."""

from __future__ import annotations

import datetime as dt
import os
import random
from pathlib import Path

import pytest

from fraudflow.records import Transaction, TxColumns
from fraudflow.store.online import sqlite as sqlite_store
from fraudflow.store.online.interface import OnlineStore
from fraudflow.store.online.memory import MemoryStore
from fraudflow.store.online.sqlite import SMALL_LOOKUP, SQLiteStore

DAY = 86_400_000_000
KEEP_US = 40 * DAY
ANSWERS_US = 2 * DAY
T0 = dt.datetime(2018, 10, 1, 12, 0, 0)


def tx(i: int, seconds: float) -> Transaction:
    return Transaction(i, T0 + dt.timedelta(seconds=seconds), i % 5, i % 3, 1.5 * i)


def record(store: OnlineStore, txs: list[Transaction], since: int) -> tuple[object, ...]:
    """Records ``txs`` (answering each new one by its TRANSACTION_ID); what ``record`` gave."""
    with store.record(TxColumns.of(txs), since, KEEP_US, ANSWERS_US) as rec:
        seen = (rec.seqs.tolist(), rec.answers, rec.new.tolist(), rec.fraud.tolist(), rec.caught_up.last_seq)
        rec.answer([f'{{"a":{t.transaction_id}}}' for t in txs])
    return seen


def test_batches_of_one_a_few_and_many_give_what_the_memory_store_gives(tmp_path: Path) -> None:
    """Random batches (1, up to ``SMALL_LOOKUP`` and beyond), with TRANSACTION_IDs sent again (within
    a batch and across batches) and labels coming before and after their transactions."""
    rng = random.Random(13)
    sqlite, memory = SQLiteStore(str(tmp_path / "online.sqlite")), MemoryStore()
    since, seconds = 0, 0.0
    sizes = [1, 1, 2, 3, SMALL_LOOKUP, SMALL_LOOKUP + 1, 80, 1, 5, 1]
    try:
        for size in sizes * 4:
            txs = []
            for _ in range(size):
                seconds += rng.choice([0.5, 10.0, 100.0])
                txs.append(tx(rng.randrange(1, 400), seconds))
            assert record(sqlite, txs, since) == record(memory, txs, since)
            since = sqlite.catch_up(0).last_seq
            labels = {rng.randrange(1, 450): rng.randrange(2) for _ in range(3)}
            assert sqlite.add_labels(labels) == memory.add_labels(labels)
        assert list(sqlite.answers()) == list(memory.answers())
    finally:
        sqlite.close()


def test_the_answers_window_counts_the_batchs_own_newest_transaction(tmp_path: Path) -> None:
    """A batch newer than the log, within a minute of this connection's last trim of the log (so the
    log's newest time is not read again): its own time moves the answers' window, which forgets an
    answer it leaves behind (as it does when the log is trimmed in the same batch)."""
    path = str(tmp_path / "online.sqlite")
    first, other = SQLiteStore(path), SQLiteStore(path)
    base = 10 * 86_400.0  # seconds after T0
    try:
        record(first, [tx(1, base + 100)], 0)  # trims the log from 100 s, the answers from 100 s
        record(other, [tx(2, base + 1000)], 0)  # another process: the log's newest is now 1000 s
        late = base + 1030 - ANSWERS_US / 1e6  # a late arrival, in the window from 1000 s, not from 1070 s
        record(first, [tx(3, late)], 0)  # the answers' window moves to 1000 s (not the log's trim)
        record(first, [tx(4, base + 1050)], 0)  # the log trimmed from 1050 s, the answers' window stays
        assert 3 in {i for _, i, _ in first.answers()}
        record(first, [tx(5, base + 1070)], 0)  # 20 s later: no trim of the log; the answers' from 1070 s
        assert sorted(i for _, i, _ in first.answers()) == [1, 2, 4, 5]
    finally:
        first.close()
        other.close()


def test_the_wal_starts_over_under_steady_commits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer committing without pause never lets a passive checkpoint end with every frame copied
    (its commits land meanwhile), so the WAL never started over and its file grew by every commit's
    pages; the checkpoint thread's restart keeps it to a few turns' commits."""
    monkeypatch.setattr(sqlite_store, "CHECKPOINT_EVERY_S", 0.02)
    monkeypatch.setattr(sqlite_store, "RESTART_FRAMES", 100)
    path = tmp_path / "online.sqlite"
    store = SQLiteStore(str(path))
    answer = '{"a":"' + "x" * 2000 + '"}'
    since, largest = 0, 0
    for i in range(3000):  # about 25 KB of pages a commit: 75 MB of WAL if it never started over
        with store.record(TxColumns.of([tx(i, i)]), since, KEEP_US) as rec:
            rec.answer([answer])
        since = max(rec.caught_up.last_seq, int(rec.seqs.max()))
        if i % 50 == 0:
            largest = max(largest, os.path.getsize(f"{path}-wal"))
    store.close()
    # a few turns' commits: 16-19 MB here with the suite running beside it on 2 cores (the writer
    # commits as fast as it can, the checkpoint thread is niced), 75 MB without the restart
    assert largest < 40_000_000, f"the WAL grew to {largest:,} bytes"


def answer_passes(store: SQLiteStore, txs: list[Transaction]) -> list[str]:
    """Records ``txs`` and returns the statements it ran that forget answers past their window, as
    SQLite ran them (their parameters written in)."""
    statements: list[str] = []
    store._con.set_trace_callback(statements.append)
    try:
        record(store, txs, 0)
    finally:
        store._con.set_trace_callback(None)
    return [s for s in statements if s.startswith("DELETE FROM answers") and "ts > " in s]


def test_the_answers_pass_goes_on_from_the_stores_last_one_and_skips_a_store_without_answers(
    tmp_path: Path,
) -> None:
    """The answers' pass (every minute of transactions) reads the log from the last pass on: a store
    opened again (a service restarted, another process) goes on from the cut-off kept in the store,
    not from the log's start (a pass over a loaded lake's whole log held the first request 0.2 s); and
    a store without answers (new, its log loaded) has none to look for."""
    path = str(tmp_path / "online.sqlite")
    store = SQLiteStore(path)
    store.load([(int(i * 1e6), i, i % 5, i % 3, 1.0) for i in range(1, 100)], {})
    base = 10 * 86_400.0  # seconds after T0
    assert answer_passes(store, [tx(1000, base)]) == []  # no answers yet: the pass reads nothing
    assert answer_passes(store, [tx(1001, base + 120)])  # its answer now: the next pass looks
    store.close()
    store = SQLiteStore(path)
    try:
        (again,) = answer_passes(store, [tx(1002, base + 240)])
        cut = int((T0 - dt.datetime(1970, 1, 1)).total_seconds() * 1e6 + (base + 120) * 1e6) - ANSWERS_US
        assert f"ts > {cut} AND" in again, again  # from the last pass's cut-off, not from the start
        assert sorted(i for _, i, _ in store.answers()) == [1000, 1001, 1002]
    finally:
        store.close()
