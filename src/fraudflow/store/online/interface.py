"""The contract every online store keeps (memory, SQLite, Redis).

The store is a durable, shared, ordered log of transactions and of fraud labels. Each entry gets a
sequence number ``seq`` (1, 2, …) in the order the entries were appended, the same for every
process sharing the store, without gaps; service processes hold the feature windows themselves,
caught up from the log, and a transaction's features are computed over the entries with a smaller
seq (so every process gives it the same features, whatever the interleaving).

- ``record(txs, since, keep_us, answers_us)`` -> a context: atomically append the batch's transactions not
  recorded before (in order) and return a ``Recorded``: each one's seq (new, or its original one),
  the stored answers of those answered before, their labels, and the entries after ``since`` the
  caller has not seen (``CaughtUp``). Inside the context the caller computes the answers and gives
  them to ``Recorded.answer``; on a normal exit they are stored, durably (SQLite: the append and
  the answers are one transaction, ``BEGIN IMMEDIATE`` to ``COMMIT``; Redis: the append is one Lua
  script, the answers one more; memory: under a lock). On an exception no answer is stored (SQLite
  does not append either; Redis and memory keep the transactions recorded but unanswered). A
  transaction recorded but never answered (its process died in between) comes back with its
  original seq, ``new`` False and no answer: its features, recomputed over the entries before its
  seq, are the ones it would have had. Entries older than ``keep_us`` before the batch's newest
  transaction are forgotten, and with a transaction its answer and its label (the store stays
  bounded; give the longest history a feature needs: a transaction sent again after that is new);
  that time never counts past this host's clock and a day (``forget_from``: one transaction dated
  years ahead forgets nothing it should not).
  ``answers_us`` (at most ``keep_us``; None: ``keep_us``) is the answers' own window: an answer is
  forgotten once its transaction is older than that before the newest transaction the store holds
  (and one that old is not stored), while its entry stays in the log; sent again then, the transaction keeps its seq and
  comes back unanswered (``new`` False, no answer), so it is answered again over the same entries.
- ``catch_up(since)`` -> the entries after ``since``, read without taking the write lock (a
  process starting up reads the log before its first ``record``).
- ``add_labels({tx_id: fraud})`` -> the labels, kept (each transaction's label known so far is
  returned with it) and appended to the log, so that every process learns them.
- ``load(rows, labels)`` appends transactions (materialization; those already recorded are
  skipped); ``answers()`` -> every answered transaction as ``(seq, tx_id, answer)`` in seq order
  (the answer is text, ``codec.py`` is its codec; a TRANSACTION_ID sent again while its entry is
  held gets its first answer); ``meta`` key/values.

A process killed at any point leaves each transaction either recorded or not, and each answer
either stored or not: never half of one. A store an earlier fraudflow wrote (answers whose
transactions are not in the log) is refused when opened.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from fraudflow.errors import ConfigError
from fraudflow.records import US_PER_DAY, TxColumns

#: A transaction as ``load`` takes it: (microseconds, TRANSACTION_ID, CUSTOMER_ID, TERMINAL_ID, TX_AMOUNT).
EventRow = tuple[int, int, int, int, float]

#: A transaction entry of the log: (seq, TRANSACTION_ID, microseconds, CUSTOMER_ID, TERMINAL_ID, TX_AMOUNT).
TxEntry = tuple[int, int, int, int, int, float]

#: A label entry of the log: (seq, TRANSACTION_ID, TX_FRAUD).
LabelEntry = tuple[int, int, int]


@dataclass(frozen=True, eq=False)
class CaughtUp:
    """Log entries after a ``since``: transactions (with the label each has so far) and labels, in seq
    order; ``last_seq`` is the highest seq among them (``since`` when there are none)."""

    txs: TxColumns
    seqs: np.ndarray  # int64, increasing
    fraud: np.ndarray  # int64 per transaction: its label known so far (0: none)
    label_seqs: np.ndarray  # int64, increasing: the label entries' seqs
    label_ids: np.ndarray  # int64: the TRANSACTION_IDs labelled
    labels: np.ndarray  # int64: their labels
    last_seq: int

    @classmethod
    def of(cls, txs: Sequence[TxEntry], fraud: Sequence[int], labels: Sequence[LabelEntry], since: int) -> CaughtUp:
        if not txs and not labels:  # the usual case: one process, or nothing new since its last batch
            return cls(_NO_TXS, _NONE, _NONE, _NONE, _NONE, _NONE, since)
        seqs, ids, ts, customers, terminals, amounts = zip(*txs, strict=True) if txs else ((),) * 6
        label_seqs, label_ids, values = zip(*labels, strict=True) if labels else ((),) * 3
        last = max(seqs[-1] if seqs else since, labels[-1][0] if labels else since)
        return cls(
            _columns(ts, ids, customers, terminals, amounts),
            np.array(seqs, dtype=np.int64),
            np.array(fraud, dtype=np.int64),
            np.array(label_seqs, dtype=np.int64),
            np.array(label_ids, dtype=np.int64),
            np.array(values, dtype=np.int64),
            int(last),
        )


def _read_only(values: np.ndarray) -> np.ndarray:
    values.setflags(write=False)
    return values


_NONE = _read_only(np.empty(0, dtype=np.int64))
_NO_TXS = TxColumns(_NONE, _NONE, _NONE, _NONE, _read_only(np.empty(0, dtype=np.float64)))


@dataclass(eq=False)
class Recorded:
    """What ``record`` returns for a batch, per transaction in the batch's order.

    A TRANSACTION_ID repeated within the batch is appended once: its later occurrences have the
    first one's seq, ``new`` False, and the first answer given for it is the one stored.
    """

    seqs: np.ndarray  # int64: its seq (new, or its original one)
    answers: list[str | None]  # its stored answer if answered before (a duplicate), else None
    new: np.ndarray  # bool: appended now (False: a duplicate, or recorded before but unanswered)
    fraud: np.ndarray  # int64: its label known so far (0: none; a label may come before its transaction)
    caught_up: CaughtUp  # the entries after ``since``, other than this batch's new transactions
    tx_ids: list[int] = field(repr=False)
    given: list[str | None] = field(default_factory=list, repr=False)

    @classmethod
    def of(
        cls,
        seqs: Sequence[int],
        answers: list[str | None],
        new: Sequence[bool],
        fraud: Sequence[int],
        caught_up: CaughtUp,
        tx_ids: list[int],
    ) -> Recorded:
        return cls(
            np.array(seqs, dtype=np.int64),
            answers,
            np.array(new, dtype=bool),
            np.array(fraud, dtype=np.int64),
            caught_up,
            tx_ids,
        )

    def answer(self, answers: Sequence[str | None]) -> None:
        """The answers to store when the context exits, one per transaction (None: none to store,
        as for a duplicate); an answered TRANSACTION_ID keeps its first answer."""
        if len(answers) != len(self.tx_ids):
            raise ValueError(f"{len(answers)} answers for a batch of {len(self.tx_ids)}")
        self.given = list(answers)

    def to_store(self, ts_us: np.ndarray | Sequence[int], forget_at: int | None) -> list[tuple[int, int, str]]:
        """``(tx_id, seq, answer)`` of each answer given, in the batch's order, but for the transactions
        (times ``ts_us``) at or before ``forget_at``: out of the answers' window already."""
        seqs = self.seqs.tolist()
        if forget_at is None:
            return [(self.tx_ids[i], seqs[i], text) for i, text in enumerate(self.given) if text is not None]
        ts = ts_us.tolist() if isinstance(ts_us, np.ndarray) else ts_us
        return [
            (self.tx_ids[i], seqs[i], text)
            for i, text in enumerate(self.given)
            if text is not None and ts[i] > forget_at
        ]


#: How long an answer is kept for a TRANSACTION_ID sent again, by default (when the log holds its
#: transaction that long): a retry, a replayed day or a restart a day later gets its first answer.
ANSWERS_WINDOW_DAYS = 1.0


def answers_window(answers_us: int | None, keep_us: int) -> int:
    """The answers' window (µs): ``answers_us``, or by default ``ANSWERS_WINDOW_DAYS`` (the log's
    ``keep_us`` when shorter); a ``ConfigError`` when not positive or longer than the log's."""
    if answers_us is None:
        return min(int(ANSWERS_WINDOW_DAYS * US_PER_DAY), keep_us)
    if answers_us <= 0:
        raise ConfigError(f"the answers window must be positive, got {answers_us / US_PER_DAY:g} days")
    if answers_us > keep_us:
        raise ConfigError(
            f"an answers window of {answers_us / US_PER_DAY:g} days is longer than the online store's log"
            f" ({keep_us / US_PER_DAY:g} days, the feature set's longest history): an answer goes with its"
            f" transaction's entry; give at most {keep_us / US_PER_DAY:g}"
        )
    return answers_us


#: How far past this host's clock a transaction's time still moves what is forgotten (a day: hosts'
#: clocks and a card network's times differ by less).
AHEAD_US = US_PER_DAY


def forget_limit() -> int:
    """The latest time that moves what is forgotten: this host's clock (µs since the epoch, UTC, as the
    lake's naive times count) plus ``AHEAD_US``."""
    return time.time_ns() // 1000 + AHEAD_US


def forget_from(newest_us: int) -> int:
    """The time from which the stores and the windows forget (the log's entries, the windows'
    events, the answers past their window), and a label entry's time: the newest transaction's, but
    never later than ``forget_limit()``. One transaction dated years ahead (a typo, a wrong clock: the
    schema takes years up to 2199) would otherwise make every store forget its whole log, every
    window its events, and keep every later label entry until that date."""
    return min(newest_us, forget_limit())


def forget_times(newest_us: int | None, keep_us: int, answers_us: int | None) -> tuple[int | None, int | None]:
    """The log's cut-off for a batch whose newest transaction's time is ``newest_us`` (the entries at
    or before it are forgotten; None for an empty batch, ``newest_us`` None; ``forget_from``'s
    limit applies), and the answers' window when shorter than the log's (else None)."""
    log_cut = None if newest_us is None else forget_from(newest_us) - keep_us
    return log_cut, (answers_us if answers_us is not None and answers_us < keep_us else None)


def columns(rows: Sequence[EventRow]) -> TxColumns:
    """``load``'s rows as columns."""
    return _columns(*(zip(*rows, strict=True) if rows else ((),) * 5))


def _columns(
    ts: Sequence[int], ids: Sequence[int], customers: Sequence[int], terminals: Sequence[int], amounts: Sequence[float]
) -> TxColumns:
    return TxColumns(
        np.array(ts, dtype=np.int64),
        np.array(ids, dtype=np.int64),
        np.array(customers, dtype=np.int64),
        np.array(terminals, dtype=np.int64),
        np.array(amounts, dtype=np.float64),
    )


def assign_seqs(
    tx_ids: Sequence[int], answered: Mapping[int, tuple[int, str]], recorded: Mapping[int, int], next_seq: int
) -> tuple[list[int], list[str | None], list[bool]]:
    """Each transaction's seq, stored answer and whether it is new: ``answered`` (tx_id -> (seq,
    answer)) and ``recorded`` (tx_id -> seq) are what the store holds; new ones are numbered from
    ``next_seq`` in order, a TRANSACTION_ID repeated in the batch once."""
    n = len(tx_ids)
    if answered.keys().isdisjoint(tx_ids) and recorded.keys().isdisjoint(tx_ids) and len(set(tx_ids)) == n:
        return list(range(next_seq, next_seq + n)), [None] * n, [True] * n  # the usual batch: all new
    seqs: list[int] = []
    answers: list[str | None] = []
    new: list[bool] = []
    given: dict[int, int] = {}  # the new ones' seqs
    for tx_id in tx_ids:
        stored = answered.get(tx_id)
        if stored is not None:
            seq, is_new = stored[0], False
        elif tx_id in recorded:
            seq, is_new = recorded[tx_id], False
        elif tx_id in given:
            seq, is_new = given[tx_id], False
        else:
            seq = given[tx_id] = next_seq
            is_new = True
            next_seq += 1
        seqs.append(seq)
        answers.append(None if stored is None else stored[1])
        new.append(is_new)
    return seqs, answers, new


class OnlineStore(Protocol):
    """An online store (see the module's docstring for the contract)."""

    def record(
        self, txs: TxColumns, since: int, keep_us: int, answers_us: int | None = None
    ) -> AbstractContextManager[Recorded]: ...
    def catch_up(self, since: int) -> CaughtUp: ...
    def add_labels(self, labels: dict[int, int]) -> int: ...
    def load(self, rows: Iterable[EventRow], labels: dict[int, int]) -> int: ...
    def get_meta(self, key: str) -> str | None: ...
    def set_meta(self, key: str, value: str) -> None: ...
    def answers(self) -> Iterable[tuple[int, int, str]]: ...
    def clear(self) -> None: ...
    def close(self) -> None: ...
