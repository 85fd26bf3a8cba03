"""The online store: entity events, fraud labels, answered requests; SQLite, Redis or memory.

One interface and one contract (``tests/store/test_online_contract.py`` runs it on all three):

- ``events(kind, entity, since_us)`` -> the entity's events after ``since_us``, in (time, id) order,
  each with the fraud label known so far (0 when none);
- ``commit(tx, answer, keep_us)`` -> atomically record the transaction in both entities' events,
  drop events older than ``keep_us`` before it, and store the answer; False (and no change) when
  the TRANSACTION_ID was answered before;
- ``answer(tx_id)`` -> the stored answer of an answered TRANSACTION_ID, else None;
- ``add_labels({tx_id: fraud})``; ``load(...)`` for materialization; ``meta`` key/values;
- ``exclusive()`` -> a context in which reads and the commit of one transaction happen alone:
  across threads for every store, and across processes for SQLite (one ``BEGIN IMMEDIATE``
  transaction), so several service processes can share a SQLite file. Redis serializes only
  within a process (its commit is still atomic and idempotent).

A commit is one database transaction (SQLite) or one Lua script (Redis), so a process killed at any
point leaves a request either fully recorded or not at all.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

from fraudflow.errors import ConfigError, LakeError
from fraudflow.records import CUSTOMER, TERMINAL, Events, Transaction

KINDS = {CUSTOMER: 0, TERMINAL: 1}
SQLITE_FILE = "online.sqlite"


class OnlineStore(Protocol):
    def exclusive(self) -> AbstractContextManager[None]: ...
    def events(self, kind: str, entity: int, since_us: int) -> Events: ...
    def answer(self, tx_id: int) -> str | None: ...
    def commit(self, tx: Transaction, answer: str, keep_us: dict[str, int]) -> bool: ...
    def add_labels(self, labels: dict[int, int]) -> int: ...
    def load(self, rows: Iterable[tuple[int, int, int, int, float]], labels: dict[int, int]) -> int: ...
    def get_meta(self, key: str) -> str | None: ...
    def set_meta(self, key: str, value: str) -> None: ...
    def answers(self) -> Iterable[tuple[int, str]]: ...
    def clear(self) -> None: ...
    def close(self) -> None: ...


def open_store(url: str | None, root_path: str | None = None) -> OnlineStore:
    """``redis://…``, ``sqlite:///path``, ``memory://``, or None: SQLite in the (local) lake root."""
    if url is None or url.startswith("sqlite://"):
        if url is None:
            if root_path is None:
                raise ConfigError("no online store: give --online or a local lake root")
            path = os.path.join(root_path, SQLITE_FILE)
        else:
            path = url.removeprefix("sqlite://")
        return SQLiteStore(path)
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisStore(url)
    if url == "memory://":
        return MemoryStore()
    raise ConfigError(f"unknown online store {url!r}; expected redis://…, sqlite:///path or memory://")


class MemoryStore:
    """The in-memory double: the same contract, for tests and single-process replays."""

    def __init__(self) -> None:
        # per entity: parallel lists (ts, ids, amounts), in (time, id) order
        self._events: dict[tuple[str, int], tuple[list[int], list[int], list[float]]] = {}
        self._labels: dict[int, int] = {}
        self._answers: dict[int, str] = {}
        self._meta: dict[str, str] = {}
        self._lock = threading.RLock()

    def exclusive(self) -> AbstractContextManager[None]:
        return _locked(self._lock)

    def events(self, kind: str, entity: int, since_us: int) -> Events:
        cols = self._events.get((kind, entity))
        if cols is None:
            return Events([], [], [], [])
        ts, ids, amounts = cols
        a = bisect_right(ts, since_us)
        if a == 0:  # the usual case (histories are trimmed): no copy; read before the next commit
            return Events(ts, ids, amounts, labels=self._labels)
        return Events(ts[a:], ids[a:], amounts[a:], labels=self._labels)

    def answer(self, tx_id: int) -> str | None:
        return self._answers.get(tx_id)

    def _insert(self, kind: str, entity: int, ts: int, tx_id: int, amount: float) -> None:
        cols = self._events.setdefault((kind, entity), ([], [], []))
        t, ids, amounts = cols
        if not t or (t[-1], ids[-1]) < (ts, tx_id):
            at = len(t)
        else:
            at = bisect_left(list(zip(t, ids, strict=True)), (ts, tx_id))
            if at < len(t) and (t[at], ids[at]) == (ts, tx_id):
                return
        t.insert(at, ts)
        ids.insert(at, tx_id)
        amounts.insert(at, amount)

    def _trim(self, kind: str, entity: int, older_than: int) -> None:
        t, ids, amounts = self._events[(kind, entity)]
        cut = bisect_right(t, older_than)
        if cut:
            del t[:cut], ids[:cut], amounts[:cut]

    def commit(self, tx: Transaction, answer: str, keep_us: dict[str, int]) -> bool:
        with self._lock:
            if tx.transaction_id in self._answers:
                return False
            for kind, keep in keep_us.items():
                self._insert(kind, tx.entity(kind), tx.ts_us, tx.transaction_id, tx.amount)
                self._trim(kind, tx.entity(kind), tx.ts_us - keep)
            self._answers[tx.transaction_id] = answer
            return True

    def add_labels(self, labels: dict[int, int]) -> int:
        self._labels.update(labels)
        return len(labels)

    def load(self, rows: Iterable[tuple[int, int, int, int, float]], labels: dict[int, int]) -> int:
        n = 0
        with self._lock:
            for ts, tx_id, customer, terminal, amount in rows:
                self._insert(CUSTOMER, customer, ts, tx_id, amount)
                self._insert(TERMINAL, terminal, ts, tx_id, amount)
                n += 1
        self._labels.update(labels)
        return n

    def get_meta(self, key: str) -> str | None:
        return self._meta.get(key)

    def set_meta(self, key: str, value: str) -> None:
        self._meta[key] = value

    def answers(self) -> Iterable[tuple[int, str]]:
        return sorted(self._answers.items())

    def clear(self) -> None:
        with self._lock:
            self._events.clear()
            self._labels.clear()
            self._answers.clear()
            self._meta.clear()

    def close(self) -> None:
        pass


class SQLiteStore:
    """SQLite in WAL mode: one file, safe against a killed process, shared by threads."""

    SCHEMA = """
    CREATE TABLE IF NOT EXISTS events (kind INTEGER NOT NULL, entity INTEGER NOT NULL, ts INTEGER NOT NULL,
        tx_id INTEGER NOT NULL, amount REAL NOT NULL, PRIMARY KEY (kind, entity, ts, tx_id)) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS labels (tx_id INTEGER PRIMARY KEY, fraud INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS answers (tx_id INTEGER PRIMARY KEY, answer TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            self._con = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
            self._con.execute("PRAGMA journal_mode=WAL")
            self._con.execute("PRAGMA synchronous=NORMAL")  # durable against a killed process
            self._con.executescript(self.SCHEMA)
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
                (KINDS[kind], entity, since_us),
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
            entity = tx.entity(kind)
            cur.execute(
                "INSERT OR IGNORE INTO events VALUES (?, ?, ?, ?, ?)",
                (KINDS[kind], entity, t, tx.transaction_id, tx.amount),
            )
            cur.execute("DELETE FROM events WHERE kind = ? AND entity = ? AND ts <= ?", (KINDS[kind], entity, t - keep))
        return True

    def add_labels(self, labels: dict[int, int]) -> int:
        with self._lock:
            self._con.execute("BEGIN IMMEDIATE")
            self._con.executemany("INSERT OR REPLACE INTO labels VALUES (?, ?)", labels.items())
            self._con.execute("COMMIT")
        return len(labels)

    def load(self, rows: Iterable[tuple[int, int, int, int, float]], labels: dict[int, int]) -> int:
        n = 0
        with self._lock:
            self._con.execute("BEGIN IMMEDIATE")
            for ts, tx_id, customer, terminal, amount in rows:
                self._con.execute("INSERT OR IGNORE INTO events VALUES (0, ?, ?, ?, ?)", (customer, ts, tx_id, amount))
                self._con.execute("INSERT OR IGNORE INTO events VALUES (1, ?, ?, ?, ?)", (terminal, ts, tx_id, amount))
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


# Atomic commit: refuse a TRANSACTION_ID answered before; else add the event to both entities,
# trim each entity's history, store the answer. KEYS: answers, customer zset, terminal zset.
_COMMIT = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
for i = 2, 3 do
  redis.call('ZADD', KEYS[i], ARGV[3], ARGV[4])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', ARGV[3 + i])
end
return 1
"""


class RedisStore:
    """Redis: shared by several service processes. Events are sorted sets scored by time."""

    def __init__(self, url: str, namespace: str = "fraudflow") -> None:
        try:
            import redis
        except ImportError as exc:  # pragma: no cover - depends on the extra
            raise ConfigError("the Redis online store needs the redis extra: pip install 'fraudflow[redis]'") from exc
        self._r: Any = redis.Redis.from_url(url)
        self.ns = namespace
        try:
            self._r.ping()
        except redis.RedisError as exc:
            raise LakeError(f"{url}: cannot reach Redis: {exc}") from exc
        self._commit = self._r.register_script(_COMMIT)
        self._lock = threading.RLock()

    def exclusive(self) -> AbstractContextManager[None]:
        return _locked(self._lock)

    def _key(self, kind: str, entity: int) -> str:
        return f"{self.ns}:ev:{KINDS[kind]}:{entity}"

    @staticmethod
    def _member(tx_id: int, amount: float) -> str:
        return f"{tx_id}:{float(amount)!r}"

    def events(self, kind: str, entity: int, since_us: int) -> Events:
        raw = self._r.zrangebyscore(self._key(kind, entity), f"({since_us}", "+inf", withscores=True)
        parsed = []
        for member, score in raw:
            tx_id, amount = member.decode().split(":", 1)
            parsed.append((int(score), int(tx_id), float(amount)))
        parsed.sort(key=lambda e: (e[0], e[1]))
        labels = self._r.hmget(f"{self.ns}:labels", [e[1] for e in parsed]) if parsed else []
        return Events.from_rows(
            [(t, i, a, int(v) if v is not None else 0) for (t, i, a), v in zip(parsed, labels, strict=True)]
        )

    def answer(self, tx_id: int) -> str | None:
        v = self._r.hget(f"{self.ns}:answers", tx_id)
        return None if v is None else v.decode()

    def commit(self, tx: Transaction, answer: str, keep_us: dict[str, int]) -> bool:
        t = tx.ts_us
        keys = [f"{self.ns}:answers", self._key(CUSTOMER, tx.customer_id), self._key(TERMINAL, tx.terminal_id)]
        # scores are microseconds (exact in a double up to 2**53: until the year 2255)
        args: list[str | int] = [
            tx.transaction_id,
            answer,
            t,
            self._member(tx.transaction_id, tx.amount),
            f"{t - keep_us.get(CUSTOMER, 0)}",
            f"{t - keep_us.get(TERMINAL, 0)}",
        ]
        return bool(self._commit(keys=keys, args=args))

    def add_labels(self, labels: dict[int, int]) -> int:
        if labels:
            self._r.hset(f"{self.ns}:labels", mapping={str(k): v for k, v in labels.items()})
        return len(labels)

    def load(self, rows: Iterable[tuple[int, int, int, int, float]], labels: dict[int, int]) -> int:
        n = 0
        pipe = self._r.pipeline(transaction=False)
        for ts, tx_id, customer, terminal, amount in rows:
            member = self._member(tx_id, amount)
            pipe.zadd(self._key(CUSTOMER, customer), {member: ts})
            pipe.zadd(self._key(TERMINAL, terminal), {member: ts})
            n += 1
            if n % 10_000 == 0:
                pipe.execute()
        pipe.execute()
        self.add_labels(labels)
        return n

    def get_meta(self, key: str) -> str | None:
        v = self._r.hget(f"{self.ns}:meta", key)
        return None if v is None else v.decode()

    def set_meta(self, key: str, value: str) -> None:
        self._r.hset(f"{self.ns}:meta", key, value)

    def answers(self) -> Iterable[tuple[int, str]]:
        return sorted((int(k), v.decode()) for k, v in self._r.hgetall(f"{self.ns}:answers").items())

    def clear(self) -> None:
        keys = list(self._r.scan_iter(f"{self.ns}:*"))
        for i in range(0, len(keys), 1000):
            self._r.delete(*keys[i : i + 1000])

    def close(self) -> None:
        self._r.close()


@contextmanager
def _locked(lock: threading.RLock) -> Iterator[None]:
    with lock:
        yield


def dumps(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"))
