"""``MemoryStore``: the online store in process, for tests and single-process replays."""

from __future__ import annotations

import heapq
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

from fraudflow.records import TxColumns
from fraudflow.store.online.interface import (
    CaughtUp,
    EventRow,
    LabelEntry,
    Recorded,
    TxEntry,
    assign_seqs,
    forget_times,
)


class MemoryStore:
    """The in-memory double: the same contract, within one process."""

    def __init__(self) -> None:
        self._labels: dict[int, int] = {}
        self._answers: dict[int, tuple[int, str]] = {}  # tx_id -> (seq, answer)
        self._meta: dict[str, str] = {}
        self._lock = threading.RLock()
        # the log: entries by seq (in seq order), the transactions' seqs, (ts, seq) to trim by time
        self._log: dict[int, TxEntry | LabelEntry] = {}
        self._recorded: dict[int, int] = {}
        self._by_time: list[tuple[int, int]] = []
        self._answered_by_time: list[tuple[int, int, int]] = []  # (ts, tx_id, seq) of the answers, to forget
        self._seq = 0  # the last seq given
        self._newest = 0  # the newest transaction's time: a label entry's, for trimming

    @contextmanager
    def record(self, txs: TxColumns, since: int, keep_us: int, answers_us: int | None = None) -> Iterator[Recorded]:
        with self._lock:
            ids = txs.tx_id.tolist()
            caught_up = self.catch_up(since)
            ts = txs.ts_us.tolist()
            seqs, answers, new = self._append(
                ids, ts, txs.customer.tolist(), txs.terminal.tolist(), txs.amount.tolist()
            )
            log_cut, window = forget_times(max(ts) if ts else None, keep_us, answers_us)
            if log_cut is not None:
                self._forget(log_cut)
            answers_cut = self._newest - (keep_us if window is None else window)
            self._forget_answers(answers_cut)
            fraud = [self._labels.get(i, 0) for i in ids]
            recorded = Recorded.of(seqs, answers, new, fraud, caught_up, ids)
            yield recorded
            for tx_id, seq, text in recorded.to_store(txs.ts_us, answers_cut):
                if tx_id not in self._answers:
                    self._answers[tx_id] = (seq, text)
                    heapq.heappush(self._answered_by_time, (self._log[seq][2], tx_id, seq))

    def _append(
        self, ids: list[int], ts: list[int], customers: list[int], terminals: list[int], amounts: list[float]
    ) -> tuple[list[int], list[str | None], list[bool]]:
        seqs, answers, new = assign_seqs(ids, self._answers, self._recorded, self._seq + 1)
        for i, is_new in enumerate(new):
            if is_new:
                seq = self._seq = seqs[i]
                self._log[seq] = (seq, ids[i], ts[i], customers[i], terminals[i], amounts[i])
                self._recorded[ids[i]] = seq
                heapq.heappush(self._by_time, (ts[i], seq))
                self._newest = max(self._newest, ts[i])
        return seqs, answers, new

    def _forget(self, older_than: int) -> None:
        """Forget the log's entries at or before ``older_than``."""
        while self._by_time and self._by_time[0][0] <= older_than:
            _, seq = heapq.heappop(self._by_time)
            entry = self._log.pop(seq)
            if len(entry) == 6 and self._recorded.get(entry[1]) == seq:
                del self._recorded[entry[1]]
                if self._answers.get(entry[1], (None,))[0] == seq:  # its answer and label go with it
                    del self._answers[entry[1]]
                self._labels.pop(entry[1], None)

    def _forget_answers(self, older_than: int) -> None:
        """Forget the answers of the transactions at or before ``older_than`` (their entries stay)."""
        while self._answered_by_time and self._answered_by_time[0][0] <= older_than:
            _, tx_id, seq = heapq.heappop(self._answered_by_time)
            if self._answers.get(tx_id, (None,))[0] == seq:
                del self._answers[tx_id]

    def catch_up(self, since: int) -> CaughtUp:
        with self._lock:
            entries: list[TxEntry | LabelEntry] = []
            for seq in reversed(self._log):
                if seq <= since:
                    break
                entries.append(self._log[seq])
            entries.reverse()
            return _caught_up(entries, self._labels, since)

    def add_labels(self, labels: dict[int, int]) -> int:
        with self._lock:
            self._labels.update(labels)
            for tx_id, fraud in labels.items():
                seq = self._seq = self._seq + 1
                self._log[seq] = (seq, tx_id, fraud)
                heapq.heappush(self._by_time, (self._newest, seq))
        return len(labels)

    def load(self, rows: Iterable[EventRow], labels: dict[int, int]) -> int:
        with self._lock:
            loaded = list(rows)
            if loaded:
                ts_, ids, customers, terminals, amounts = (list(c) for c in zip(*loaded, strict=True))
                self._append(ids, ts_, customers, terminals, amounts)
            self.add_labels(labels)
        return len(loaded)

    def get_meta(self, key: str) -> str | None:
        return self._meta.get(key)

    def set_meta(self, key: str, value: str) -> None:
        self._meta[key] = value

    def answers(self) -> Iterable[tuple[int, int, str]]:
        with self._lock:
            return sorted((seq, tx_id, text) for tx_id, (seq, text) in self._answers.items())

    def clear(self) -> None:
        with self._lock:
            for held in (self._labels, self._answers, self._meta, self._log, self._recorded):
                held.clear()
            self._by_time.clear()
            self._answered_by_time.clear()
            self._seq = self._newest = 0

    def close(self) -> None:
        pass


def _caught_up(entries: Sequence[TxEntry | LabelEntry], labels: dict[int, int], since: int) -> CaughtUp:
    txs = [e for e in entries if len(e) == 6]
    return CaughtUp.of(txs, [labels.get(e[1], 0) for e in txs], [e for e in entries if len(e) == 3], since)
