"""``MemoryStore``: the online store in process, for tests and single-process replays.

A batch is kept as a whole where it can be: its entries added to the log and its answers stored
by one dict update each (in C), and the entries to forget found by the batch (``_Forgetting``),
not one heap operation per entry.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
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
    forget_from,
    forget_times,
)


class _Forgetting:
    """Keys to forget once their time is at or before a cut-off, added a batch at a time: a heap of
    batches, each sorted by time, so a cut-off takes the due part of each batch it reaches (a batch
    partly due stays whole, with the place its keys still held start at)."""

    def __init__(self) -> None:
        # (earliest time held, order added, first held, times, keys)
        self._heap: list[tuple[int, int, int, list[int], list[int]]] = []
        self._order = itertools.count()

    def add(self, times: Sequence[int], keys: Sequence[int]) -> None:
        if not times:
            return
        pairs = sorted(zip(times, keys, strict=True))
        held = ([t for t, _ in pairs], [k for _, k in pairs])
        heapq.heappush(self._heap, (held[0][0], next(self._order), 0, *held))

    def due(self, cut: int) -> list[int]:
        """The keys whose time is at or before ``cut`` (taken out)."""
        keys: list[int] = []
        heap = self._heap
        while heap and heap[0][0] <= cut:
            _, order, start, times, batch = heapq.heappop(heap)
            end = bisect.bisect_right(times, cut, lo=start)
            keys += batch[start:end]
            if end < len(times):
                heapq.heappush(heap, (times[end], order, end, times, batch))
        return keys

    def clear(self) -> None:
        self._heap.clear()


class MemoryStore:
    """The in-memory double: the same contract, within one process."""

    def __init__(self) -> None:
        self._labels: dict[int, int] = {}
        self._answers: dict[int, tuple[int, str]] = {}  # tx_id -> (seq, answer)
        self._meta: dict[str, str] = {}
        self._lock = threading.RLock()
        # the log: entries by seq (in seq order), the transactions' seqs, their seqs by time to trim
        self._log: dict[int, TxEntry | LabelEntry] = {}
        self._recorded: dict[int, int] = {}
        self._by_time = _Forgetting()  # the log's seqs
        self._answered_by_time = _Forgetting()  # the answered transactions' seqs
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
            answers_cut = forget_from(self._newest) - (keep_us if window is None else window)
            self._forget_answers(answers_cut)
            fraud = list(map(self._labels.get, ids, itertools.repeat(0))) if self._labels else [0] * len(ids)
            recorded = Recorded.of(seqs, answers, new, fraud, caught_up, ids)
            yield recorded
            to_store = recorded.to_store(txs.ts_us, answers_cut)
            if all(new) and len(to_store) == len(ids):  # a batch of new transactions, all answered
                self._answers.update(zip(ids, zip(seqs, [text for _, _, text in to_store], strict=True), strict=True))
                self._answered_by_time.add(ts, seqs)
                return
            times, answered = [], []
            for tx_id, seq, text in to_store:
                if tx_id not in self._answers:
                    self._answers[tx_id] = (seq, text)
                    times.append(self._log[seq][2])
                    answered.append(seq)
            self._answered_by_time.add(times, answered)

    def _append(
        self, ids: list[int], ts: list[int], customers: list[int], terminals: list[int], amounts: list[float]
    ) -> tuple[list[int], list[str | None], list[bool]]:
        seqs, answers, new = assign_seqs(ids, self._answers, self._recorded, self._seq + 1)
        added, added_ids, added_ts = seqs, ids, ts
        if not all(new):
            kept = [i for i, is_new in enumerate(new) if is_new]
            added, added_ids, added_ts = [seqs[i] for i in kept], [ids[i] for i in kept], [ts[i] for i in kept]
            customers, terminals, amounts = (
                [customers[i] for i in kept],
                [terminals[i] for i in kept],
                [amounts[i] for i in kept],
            )
        if added:
            entries = zip(added, added_ids, added_ts, customers, terminals, amounts, strict=True)
            self._log.update(zip(added, entries, strict=True))
            self._recorded.update(zip(added_ids, added, strict=True))
            self._by_time.add(added_ts, added)
            self._seq = added[-1]
            self._newest = max(self._newest, max(added_ts))
        return seqs, answers, new

    def _forget(self, older_than: int) -> None:
        """Forget the log's entries at or before ``older_than``."""
        log, recorded, answers, labels = self._log, self._recorded, self._answers, self._labels
        for seq in self._by_time.due(older_than):
            entry = log.pop(seq)
            if len(entry) == 6 and recorded.get(tx_id := entry[1]) == seq:
                del recorded[tx_id]
                if answers.get(tx_id, (None,))[0] == seq:  # its answer and label go with it
                    del answers[tx_id]
                labels.pop(tx_id, None)

    def _forget_answers(self, older_than: int) -> None:
        """Forget the answers of the transactions at or before ``older_than`` (their entries stay)."""
        answers, log = self._answers, self._log
        for seq in self._answered_by_time.due(older_than):
            entry = log.get(seq)
            if entry is not None and answers.get(entry[1], (None,))[0] == seq:
                del answers[entry[1]]

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
            seqs = []
            for tx_id, fraud in labels.items():
                seq = self._seq = self._seq + 1
                self._log[seq] = (seq, tx_id, fraud)
                seqs.append(seq)
            self._by_time.add([forget_from(self._newest)] * len(seqs), seqs)
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
