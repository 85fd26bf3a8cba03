"""``SQLiteStore``: the online store in one SQLite file (WAL), shared by the processes of one host."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from fraudflow.errors import LakeError
from fraudflow.records import CUSTOMER, TERMINAL, Events, Transaction
from fraudflow.store.online.interface import KIND_CODES, EventRow

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (kind INTEGER NOT NULL, entity INTEGER NOT NULL, ts INTEGER NOT NULL,
    tx_id INTEGER NOT NULL, amount REAL NOT NULL, PRIMARY KEY (kind, entity, ts, tx_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS labels (tx_id INTEGER PRIMARY KEY, fraud INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS answers (tx_id INTEGER PRIMARY KEY, answer TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
INSERT_EVENT = "INSERT OR IGNORE INTO events VALUES (?, ?, ?, ?, ?)"


class SQLiteStore:
    """SQLite in WAL mode: one file, safe against a killed process, shared by threads."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            self._con = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
            self._con.execute("PRAGMA journal_mode=WAL")
            self._con.execute("PRAGMA synchronous=NORMAL")  # durable against a killed process
            self._con.executescript(SCHEMA)
        except sqlite3.Error as exc:
            raise LakeError(f"{path}: cannot open the online store: {exc}") from exc
        self._lock = threading.RLock()
        self._in_transaction = False

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._lock:
            self._con.execute("BEGIN IMMEDIATE")  # the database's write lock: other processes wait
            self._in_transaction = True
            try:
                yield
            except BaseException:
                self._con.execute("ROLLBACK")
                raise
            else:
                self._con.execute("COMMIT")
            finally:
                self._in_transaction = False

    def events(self, kind: str, entity: int, since_us: int) -> Events:
        with self._lock:
            rows = self._con.execute(
                "SELECT e.ts, e.tx_id, e.amount, COALESCE(l.fraud, 0) FROM events e LEFT JOIN labels l"
                " ON l.tx_id = e.tx_id WHERE e.kind = ? AND e.entity = ? AND e.ts > ? ORDER BY e.ts, e.tx_id",
                (KIND_CODES[kind], entity, since_us),
            ).fetchall()
        return Events.from_rows(rows)

    def answer(self, tx_id: int) -> str | None:
        with self._lock:
            row = self._con.execute("SELECT answer FROM answers WHERE tx_id = ?", (tx_id,)).fetchone()
        return None if row is None else str(row[0])

    def commit(self, tx: Transaction, answer: str, keep_us: dict[str, int]) -> bool:
        if self._in_transaction:  # inside exclusive(): its transaction commits it
            return self._write(tx, answer, keep_us)
        with self.exclusive():
            return self._write(tx, answer, keep_us)

    def _write(self, tx: Transaction, answer: str, keep_us: dict[str, int]) -> bool:
        t = tx.ts_us
        cur = self._con.cursor()
        cur.execute("INSERT OR IGNORE INTO answers VALUES (?, ?)", (tx.transaction_id, answer))
        if cur.rowcount == 0:
            return False
        for kind, keep in keep_us.items():
            code, entity = KIND_CODES[kind], tx.entity(kind)
            cur.execute(INSERT_EVENT, (code, entity, t, tx.transaction_id, tx.amount))
            cur.execute("DELETE FROM events WHERE kind = ? AND entity = ? AND ts <= ?", (code, entity, t - keep))
        return True

    def add_labels(self, labels: dict[int, int]) -> int:
        with self._lock:
            self._con.execute("BEGIN IMMEDIATE")
            self._con.executemany("INSERT OR REPLACE INTO labels VALUES (?, ?)", labels.items())
            self._con.execute("COMMIT")
        return len(labels)

    def load(self, rows: Iterable[EventRow], labels: dict[int, int]) -> int:
        n = 0
        customer_code, terminal_code = KIND_CODES[CUSTOMER], KIND_CODES[TERMINAL]
        with self._lock:
            self._con.execute("BEGIN IMMEDIATE")
            for ts, tx_id, customer, terminal, amount in rows:
                self._con.execute(INSERT_EVENT, (customer_code, customer, ts, tx_id, amount))
                self._con.execute(INSERT_EVENT, (terminal_code, terminal, ts, tx_id, amount))
                n += 1
            self._con.executemany("INSERT OR REPLACE INTO labels VALUES (?, ?)", labels.items())
            self._con.execute("COMMIT")
        return n

    def get_meta(self, key: str) -> str | None:
        with self._lock:
            row = self._con.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._lock:
            self._con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def answers(self) -> Iterable[tuple[int, str]]:
        with self._lock:
            return self._con.execute("SELECT tx_id, answer FROM answers ORDER BY tx_id").fetchall()

    def clear(self) -> None:
        with self._lock:
            for table in ("events", "labels", "answers", "meta"):
                self._con.execute(f"DELETE FROM {table}")

    def close(self) -> None:
        self._con.close()
