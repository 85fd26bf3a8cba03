"""``MemoryStore``: the online store in process, for tests and single-process replays."""

from __future__ import annotations

import threading
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from contextlib import AbstractContextManager

from fraudflow.records import CUSTOMER, TERMINAL, Events, Transaction
from fraudflow.store.online.interface import EventRow


class MemoryStore:
    """The in-memory double: the same contract, within one process."""

    def __init__(self) -> None:
        # per entity: parallel lists (ts, ids, amounts), in (time, id) order
        self._events: dict[tuple[str, int], tuple[list[int], list[int], list[float]]] = {}
        self._labels: dict[int, int] = {}
        self._answers: dict[int, str] = {}
        self._meta: dict[str, str] = {}
        self._lock = threading.RLock()

    def exclusive(self) -> AbstractContextManager[object]:
        return self._lock

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

    def load(self, rows: Iterable[EventRow], labels: dict[int, int]) -> int:
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
