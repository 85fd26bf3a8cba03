"""The contract every online store keeps (memory, SQLite, Redis).

- ``events(kind, entity, since_us)`` -> the entity's events after ``since_us``, in (time, id) order,
  each with the fraud label known so far (0 when none);
- ``commit(tx, answer, keep_us)`` -> atomically record the transaction in both entities' events,
  drop events older than ``keep_us`` before it, and store the answer; False (and no change) when
  the TRANSACTION_ID was answered before;
- ``answer(tx_id)`` -> the stored answer of an answered TRANSACTION_ID, else None (the store keeps
  it as text; ``codec.py`` is its codec);
- ``add_labels({tx_id: fraud})``; ``load(...)`` for materialization; ``meta`` key/values;
- ``exclusive()`` -> a context in which reads and the commit of one transaction happen alone:
  across threads for every store, and across processes for SQLite (one ``BEGIN IMMEDIATE``
  transaction), so several service processes can share a SQLite file. Redis serializes only
  within a process (its commit is still atomic and idempotent).

A commit is one database transaction (SQLite) or one Lua script (Redis), so a process killed at any
point leaves a request either fully recorded or not at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager
from typing import Protocol

from fraudflow.records import CUSTOMER, TERMINAL, Events, Transaction

#: Each entity kind's number in the stored keys (SQLite's ``kind`` column, Redis' key names).
KIND_CODES = {CUSTOMER: 0, TERMINAL: 1}

#: A transaction as ``load`` takes it: (microseconds, TRANSACTION_ID, CUSTOMER_ID, TERMINAL_ID, TX_AMOUNT).
EventRow = tuple[int, int, int, int, float]


class OnlineStore(Protocol):
    """An online store (see the module's docstring for the contract)."""

    def exclusive(self) -> AbstractContextManager[object]: ...
    def events(self, kind: str, entity: int, since_us: int) -> Events: ...
    def answer(self, tx_id: int) -> str | None: ...
    def commit(self, tx: Transaction, answer: str, keep_us: dict[str, int]) -> bool: ...
    def add_labels(self, labels: dict[int, int]) -> int: ...
    def load(self, rows: Iterable[EventRow], labels: dict[int, int]) -> int: ...
    def get_meta(self, key: str) -> str | None: ...
    def set_meta(self, key: str, value: str) -> None: ...
    def answers(self) -> Iterable[tuple[int, str]]: ...
    def clear(self) -> None: ...
    def close(self) -> None: ...
