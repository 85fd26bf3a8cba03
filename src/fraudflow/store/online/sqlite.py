"""``SQLiteStore``: the online store in one SQLite file (WAL), shared by the processes of one host.

The log is the ``log`` table: its AUTOINCREMENT key is the seq (never reused, even after trimming);
transaction entries have ``label`` NULL, label entries only ``tx_id``, ``ts`` (the newest
transaction's, for trimming) and ``label``. A ``record`` is one ``BEGIN IMMEDIATE`` transaction
(the database's write lock: the processes sharing the file append one batch at a time, so seqs
follow commit order without gaps): look up the batch's answers and seqs in one query (with the log's
last seq), read the log after ``since`` when it holds entries there, append, trim, and on exit write
the answers and ``COMMIT``. WAL with ``synchronous=NORMAL``: a committed batch survives a killed
process (not a power cut, which may lose the last commits: ``synchronous=FULL`` would fsync each
one). The WAL is copied back into the database (checkpointed) by a thread of the store's own, once
a second, never by a commit: a commit that checkpointed paid for a thousand pages and an fsync, a
request's latency; the thread also starts the WAL over once it has grown (``Checkpoints``), which a
busy writer never lets happen by itself. The answers past their window are forgotten a minute of
transactions at a time, from the cut-off of the store's last pass on (kept in ``meta``). A file
written before the store was a log (it has the per-entity ``events`` table, its answers are not in
the log) is refused.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from types import TracebackType
from typing import Any

from fraudflow.errors import LakeError
from fraudflow.records import TxColumns
from fraudflow.store.online.interface import (
    CaughtUp,
    EventRow,
    Recorded,
    assign_seqs,
    columns,
    forget_from,
    forget_times,
)
from fraudflow.threads import run_in_background

SCHEMA = """
CREATE TABLE IF NOT EXISTS log (seq INTEGER PRIMARY KEY AUTOINCREMENT, tx_id INTEGER NOT NULL, ts INTEGER NOT NULL,
    customer INTEGER, terminal INTEGER, amount REAL, label INTEGER);
CREATE UNIQUE INDEX IF NOT EXISTS log_tx ON log (tx_id) WHERE label IS NULL;
CREATE INDEX IF NOT EXISTS log_ts ON log (ts);
CREATE TABLE IF NOT EXISTS labels (tx_id INTEGER PRIMARY KEY, fraud INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS answers (tx_id INTEGER PRIMARY KEY, answer TEXT NOT NULL, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
# per transaction of a batch (a JSON array of TRANSACTION_IDs): its answer and its seq, its seq in the log, its label;
# and in every row the log's last seq given and its newest time (one statement, not three)
LOOKUP = """
SELECT b.value, a.answer, a.seq, l.seq, COALESCE(f.fraud, 0), (SELECT seq FROM sqlite_sequence WHERE name = 'log'),
(SELECT COALESCE(MAX(ts), 0) FROM log) FROM (SELECT DISTINCT value FROM json_each(?)) b
LEFT JOIN answers a ON a.tx_id = b.value LEFT JOIN log l ON l.tx_id = b.value AND l.label IS NULL
LEFT JOIN labels f ON f.tx_id = b.value
"""
LOOKUP_ONE = """
SELECT ?1, a.answer, a.seq, l.seq, COALESCE(f.fraud, 0), (SELECT seq FROM sqlite_sequence WHERE name = 'log'),
(SELECT COALESCE(MAX(ts), 0) FROM log) FROM (SELECT 1) LEFT JOIN answers a ON a.tx_id = ?1
LEFT JOIN log l ON l.tx_id = ?1 AND l.label IS NULL LEFT JOIN labels f ON f.tx_id = ?1
"""
#: The lookups of batches this small bind each TRANSACTION_ID (a ``VALUES`` list); larger ones pass a
#: JSON array to ``json_each`` (one parameter, however many).
SMALL_LOOKUP = 32
_LOOKUP_FEW = {
    n: LOOKUP.replace("json_each(?)", "(VALUES " + ",".join(["(?)"] * n) + ")").replace(
        "DISTINCT value", "DISTINCT column1 AS value"
    )
    for n in range(2, SMALL_LOOKUP + 1)
}
#: The log is trimmed when its cut-off moved by this much (a minute of transactions' time): three
#: statements a batch cost a request more than the rows they kept for that minute.
FORGET_STEP_US = 60_000_000
#: The ``meta`` key of the answers' last pass: the cut-off the answers were forgotten to.
ANSWERS_PASSED = "answers_forgotten_to"
#: Transactions ``load`` appends per lookup.
LOAD_CHUNK = 10_000
READ_LOG = """
SELECT l.seq, l.tx_id, l.ts, l.customer, l.terminal, l.amount, l.label, COALESCE(f.fraud, 0)
FROM log l LEFT JOIN labels f ON f.tx_id = l.tx_id WHERE l.seq > ? ORDER BY l.seq
"""


class SQLiteStore:
    """SQLite in WAL mode: one file, safe against a killed process, shared by threads and processes."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            self._con = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
            self._con.execute("PRAGMA journal_mode=WAL")
            self._con.execute("PRAGMA synchronous=NORMAL")  # durable against a killed process
            self._con.execute("PRAGMA wal_autocheckpoint=0")  # the checkpoint thread's work
            tables = {row[0] for row in self._con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "events" in tables:
                self._con.close()
                raise LakeError(
                    f"{path}: an online store written by an earlier fraudflow (per-entity events, not a log);"
                    " move it aside: serving again loads a new one from the lake"
                )
            self._con.execute("BEGIN IMMEDIATE")
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    self._con.execute(statement)
            self._con.execute("COMMIT")
        except sqlite3.Error as exc:
            raise LakeError(f"{path}: cannot open the online store: {exc}") from exc
        self._lock = threading.RLock()
        self._checkpoints = Checkpoints(path, self._lock)
        self._forgotten_to = -(2**63)  # the last cut-off this connection forgot the log to
        # and the answers (in a window shorter than the log's): from the store's last pass, whichever
        # process made it (a first pass from the log's start read every entry: 0.2 s for 600,000)
        passed = self.get_meta(ANSWERS_PASSED)
        self._answers_forgotten_to = -(2**63) if passed is None else int(passed)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """One write transaction, alone: ``BEGIN IMMEDIATE`` takes the database's write lock (other
        processes wait), an exception rolls it back, a normal exit commits it."""
        with self._lock:
            self._con.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._con.execute("ROLLBACK")
                raise
            else:
                self._con.execute("COMMIT")

    def record(
        self, txs: TxColumns, since: int, keep_us: int, answers_us: int | None = None
    ) -> AbstractContextManager[Recorded]:
        return _Recording(self, txs, since, keep_us, answers_us)

    def _begin_record(self, txs: TxColumns, since: int, keep_us: int, answers_us: int | None) -> _Pending:
        """Inside ``BEGIN IMMEDIATE``: look up, read the log after ``since``, append, trim; what the commit needs."""
        cur = self._con.cursor()
        ids = txs.tx_id.tolist()
        ts = txs.ts_us.tolist()
        found = cur.execute(*_lookup(ids)).fetchall() if ids else None
        # the log's entries after ``since``, read only when it holds some (the lookup gave its last
        # seq): one process alone never finds any, and a statement a batch of one is a tenth of it
        last = found[0][5] if found else None
        caught_up = self._read_log(cur, since) if last is None or last > since else CaughtUp.of((), (), (), since)
        seqs, answers, new, fraud, newest = self._append(cur, txs, ids, ts, found)
        cutoff, window = forget_times(max(ts) if ts else None, keep_us, answers_us)
        if cutoff is not None and cutoff >= self._forgotten_to + FORGET_STEP_US:
            self._forget(cur, cutoff)
            self._forgotten_to = cutoff
            newest = None  # the log's newest time, read again after the trim
        answers_cut = None
        if window is not None:  # from the newest transaction held, whichever process appended it
            if newest is None:
                newest = cur.execute("SELECT COALESCE(MAX(ts), 0) FROM log").fetchone()[0]
            answers_cut = forget_from(newest) - window
        forget_answers = answers_cut is not None and answers_cut >= self._answers_forgotten_to + FORGET_STEP_US
        if forget_answers:
            # the answers of the entries that left the window since this connection's last pass (none
            # to look for when there are no answers: a new store, its log loaded from the lake)
            if cur.execute("SELECT EXISTS (SELECT 1 FROM answers)").fetchone()[0]:
                cur.execute(
                    "DELETE FROM answers WHERE tx_id IN"
                    " (SELECT tx_id FROM log WHERE ts > ? AND ts <= ? AND label IS NULL)",
                    (self._answers_forgotten_to, answers_cut),
                )
            self.set_meta(ANSWERS_PASSED, str(answers_cut))  # the same connection: in this transaction
        recorded = Recorded.of(seqs, answers, new, fraud, caught_up, ids)
        forget_at = cutoff if answers_cut is None else answers_cut
        return _Pending(cur, recorded, ts, forget_at, answers_cut if forget_answers else None)

    def _end_record(self, pending: _Pending) -> None:
        """Still inside the transaction: store the answers given (the caller commits)."""
        stored = pending.recorded.to_store(pending.ts, pending.forget_at)
        if len(stored) == 1:
            pending.cur.execute("INSERT OR IGNORE INTO answers (tx_id, seq, answer) VALUES (?, ?, ?)", stored[0])
        elif stored:
            pending.cur.executemany("INSERT OR IGNORE INTO answers (tx_id, seq, answer) VALUES (?, ?, ?)", stored)

    @staticmethod
    def _append(
        cur: sqlite3.Cursor, txs: TxColumns, ids: list[int], ts: list[int], found: list[tuple[Any, ...]] | None = None
    ) -> tuple[list[int], list[str | None], list[bool], list[int], int | None]:
        """Inside a transaction: append the transactions (``ids``, ``ts``: their columns as lists) not
        recorded before; each one's seq, stored answer, whether it is new, and its label; and the
        log's newest time after the append (None for an empty batch: not read). ``found``: their
        lookup's rows when the caller made it (looked up here otherwise)."""
        if not ids:
            return [], [], [], [], None
        if found is None:
            found = cur.execute(*_lookup(ids)).fetchall()
        answered = {r[0]: (r[2], r[1]) for r in found if r[1] is not None}
        recorded = {r[0]: r[3] for r in found if r[3] is not None}
        fraud = {r[0]: r[4] for r in found}
        last, newest = found[0][5], found[0][6]
        seqs, answers, new = assign_seqs(ids, answered, recorded, 1 + (last or 0))
        insert = "INSERT INTO log (seq, tx_id, ts, customer, terminal, amount) VALUES (?, ?, ?, ?, ?, ?)"
        if len(ids) == 1:  # the usual batch at light load: one row, without executemany's iteration
            if new[0]:
                row = (seqs[0], ids[0], ts[0], int(txs.customer[0]), int(txs.terminal[0]), float(txs.amount[0]))
                cur.execute(insert, row)
                newest = max(newest, ts[0])
            return seqs, answers, new, [fraud[ids[0]]], newest
        columns = (seqs, ids, ts, txs.customer.tolist(), txs.terminal.tolist(), txs.amount.tolist())
        rows = [row for row, is_new in zip(zip(*columns, strict=True), new, strict=True) if is_new]
        cur.executemany(insert, rows)
        return seqs, answers, new, [fraud[i] for i in ids], max([newest, *(row[2] for row in rows)])

    @staticmethod
    def _forget(cur: sqlite3.Cursor, older_than: int) -> None:
        """Forget the log's entries at or before ``older_than``, with their transactions' answers and labels."""
        trimmed = "SELECT tx_id FROM log WHERE ts <= ? AND label IS NULL"  # only those not forgotten yet
        cur.execute(f"DELETE FROM answers WHERE tx_id IN ({trimmed})", (older_than,))
        cur.execute(f"DELETE FROM labels WHERE tx_id IN ({trimmed})", (older_than,))
        cur.execute("DELETE FROM log WHERE ts <= ?", (older_than,))

    @staticmethod
    def _read_log(cur: sqlite3.Cursor, since: int) -> CaughtUp:
        rows = cur.execute(READ_LOG, (since,)).fetchall()
        if not rows:  # the usual case: one process, or nothing new since its last batch
            return CaughtUp.of((), (), (), since)
        txs = [r for r in rows if r[6] is None]
        return CaughtUp.of(
            [r[:6] for r in txs], [r[7] for r in txs], [(r[0], r[1], r[6]) for r in rows if r[6] is not None], since
        )

    def catch_up(self, since: int) -> CaughtUp:
        with self._lock:  # one SELECT: a consistent snapshot, without the write lock
            return self._read_log(self._con.cursor(), since)

    def add_labels(self, labels: dict[int, int]) -> int:
        with self._transaction():
            self._add_labels(labels)
        return len(labels)

    def _add_labels(self, labels: dict[int, int]) -> None:
        self._con.executemany("INSERT OR REPLACE INTO labels VALUES (?, ?)", labels.items())
        newest = forget_from(self._con.execute("SELECT COALESCE(MAX(ts), 0) FROM log").fetchone()[0])
        self._con.executemany(
            "INSERT INTO log (tx_id, ts, label) VALUES (?, ?, ?)", [(i, newest, f) for i, f in labels.items()]
        )

    def load(self, rows: Iterable[EventRow], labels: dict[int, int]) -> int:
        loaded = list(rows)
        with self._transaction():
            cur = self._con.cursor()
            for a in range(0, len(loaded), LOAD_CHUNK):
                chunk = columns(loaded[a : a + LOAD_CHUNK])
                self._append(cur, chunk, chunk.tx_id.tolist(), chunk.ts_us.tolist())
            self._add_labels(labels)
        return len(loaded)

    def get_meta(self, key: str) -> str | None:
        with self._lock:
            row = self._con.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._lock:
            self._con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def answers(self) -> Iterable[tuple[int, int, str]]:
        with self._lock:
            return self._con.execute("SELECT seq, tx_id, answer FROM answers ORDER BY seq, tx_id").fetchall()

    def clear(self) -> None:
        with self._transaction():
            for table in ("log", "labels", "answers", "meta"):
                self._con.execute(f"DELETE FROM {table}")
            self._con.execute("DELETE FROM sqlite_sequence WHERE name = 'log'")

    def close(self) -> None:
        self._checkpoints.stop()
        self._con.close()


class _Pending:
    """A record between its append and its commit: the cursor, what the caller got, the batch's times,
    the answers' cut-off, and the answers' pass to note once committed (None: none)."""

    __slots__ = ("answers_pass", "cur", "forget_at", "recorded", "ts")

    def __init__(
        self, cur: sqlite3.Cursor, recorded: Recorded, ts: list[int], forget_at: int | None, answers_pass: int | None
    ) -> None:
        self.cur, self.recorded, self.ts, self.forget_at, self.answers_pass = cur, recorded, ts, forget_at, answers_pass


class _Recording:
    """``SQLiteStore.record``'s context: the store's lock and ``BEGIN IMMEDIATE`` on entry; on a normal
    exit the answers stored and ``COMMIT``, on an exception (or a failure storing them) ``ROLLBACK``.
    A class, not two nested generator contexts: a batch of one pays for every microsecond here."""

    __slots__ = ("_args", "_pending", "_store")

    def __init__(self, store: SQLiteStore, txs: TxColumns, since: int, keep_us: int, answers_us: int | None) -> None:
        self._store = store
        self._args = (txs, since, keep_us, answers_us)
        self._pending: _Pending | None = None

    def __enter__(self) -> Recorded:
        store = self._store
        store._lock.acquire()
        try:
            store._con.execute("BEGIN IMMEDIATE")
        except BaseException:
            store._lock.release()
            raise
        try:
            self._pending = store._begin_record(*self._args)
        except BaseException:
            self._rollback()
            raise
        return self._pending.recorded

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        store, pending = self._store, self._pending
        assert pending is not None
        if kind is not None:
            self._rollback()
            return
        try:
            store._end_record(pending)
            store._con.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise
        store._lock.release()
        if pending.answers_pass is not None:  # once committed (a rollback undoes the pass)
            store._answers_forgotten_to = pending.answers_pass

    def _rollback(self) -> None:
        try:
            self._store._con.execute("ROLLBACK")
        finally:
            self._store._lock.release()


def _lookup(ids: list[int]) -> tuple[str, tuple[object, ...]]:
    """``LOOKUP``'s statement for ``ids`` and its parameters: one ``= ?`` for one transaction (a
    sixth of ``json_each``'s cost), a ``VALUES`` list for a few, the JSON array for more."""
    if len(ids) == 1:
        return LOOKUP_ONE, (ids[0],)
    if len(ids) <= SMALL_LOOKUP:
        return _LOOKUP_FEW[len(ids)], tuple(ids)
    return LOOKUP, (json.dumps(ids),)


#: The checkpoint thread's period (seconds).
CHECKPOINT_EVERY_S = 1.0
#: A WAL holding more frames than this after a checkpoint is started over from its beginning
#: (262,144 pages: 1 GiB, about 35 s of commits at 1,000 transactions a second). The restart holds
#: this process's writers while its pass syncs the database (4-25 ms here, once 43 ms): at 16,384
#: (64 MiB) that stalled the requests every 3-4 s at 1,000/s (9 times in 30 s), and a run's p99
#: with it (A/B runs of 30 s, server and generator at real-time priority on a loaded machine: p99
#: 36.9 and 20.3 ms, against 8.6 and 12.4 ms with 2 restarts at 65,536); at 65,536 (256 MiB) every
#: 8-9 s, each stall's requests a fifth of the answers over 5 ms in a run (12.6-24.6 ms held, 2026-11-27).
RESTART_FRAMES = 262_144


class Checkpoints:
    """A thread that checkpoints the WAL of the database at ``path`` every ``CHECKPOINT_EVERY_S``.

    ``PASSIVE``: it copies what no reader still needs and never waits for (or blocks) a writer; on
    its own connection, and the sqlite3 module lets other threads run while SQLite works. That alone
    never let the WAL start over under steady load: a writer restarts the WAL only when every frame
    was copied as its transaction began, and a checkpoint of a second's commits takes long enough
    (20-80 ms here) for the next commits to land meanwhile, so the file grew by every commit's pages
    (26 KB a transaction: 90 GB an hour at 1,000 a second). So once the WAL holds more than
    ``RESTART_FRAMES``, a second passive pass follows holding ``writers`` (the store's lock): this
    process's writers wait while it copies the few frames the first pass left, and the next of them
    writes the WAL again from its start (the file keeps its size: rewritten, not grown again). Other
    processes' commits may land meanwhile (the next turn tries again); SQLite's ``RESTART`` mode,
    tried first, waited for their readers holding the write lock, and slowed two workers down.
    """

    def __init__(self, path: str, writers: threading.RLock) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(path, writers), name="sqlite-checkpoints", daemon=True)
        self._thread.start()

    def _run(self, path: str, writers: threading.RLock) -> None:
        run_in_background()  # a turn's copying waits for the requests (``fraudflow.threads``)
        con = sqlite3.connect(path, isolation_level=None, timeout=30)
        try:
            while not self._stop.wait(CHECKPOINT_EVERY_S):
                with contextlib.suppress(sqlite3.Error):  # busy, or the file gone: the next turn tries again
                    self.checkpoint(con, writers)
        finally:
            with contextlib.suppress(sqlite3.Error):
                self.checkpoint(con, writers)
            con.close()

    @staticmethod
    def checkpoint(con: sqlite3.Connection, writers: threading.RLock) -> None:
        """One turn: the passive pass, and the second one holding ``writers`` once the WAL has grown
        past ``RESTART_FRAMES``."""
        _, frames, _ = con.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if frames > RESTART_FRAMES:
            with writers:
                con.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
