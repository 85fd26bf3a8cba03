"""The online path in compiled arrays: every entity's recent events, read and appended by numba kernels.

A service process holds the transactions of the online store's log that a window can still reach,
each with its ``seq`` (its place in the log: arrival order). A transaction's features are computed
over the held events whose seq is below its own, by the window rule of ``features.online`` (the
Python reference this module is tested against): a window with no delay holds the entity's events
ordered before the transaction in (time, id) order with ``ts > t - window``, and the transaction
itself; a delayed window the events with ``t - (delay + window) < ts <= t - delay``. Fraud labels
are the ones known so far (0 until one arrives).

Layout, per entity kind: a pool of event rows (time, TRANSACTION_ID, seq, and the latest time of
the entity's events up to this one; beside them the amount and label), where each entity's events
sit together in one segment, in arrival order. A segment that fills up moves to the pool's end with
twice the room; when the pool is full, it is rewritten in place (repacked) with every segment a
quarter larger than its events. Trimming drops old events inside each segment. Hash tables in
arrays (open addressing) map each entity to its segment and each TRANSACTION_ID to its entities'
segments (where its label is set). A window scan reads the entity's segment backwards, passes over
the events of a later seq, and stops where the latest time shows that nothing older can be in a
window (a late arrival, older than events held before it, sits later in the segment than its time
says): consecutive memory, not a chain of pointers.

For a batch, one kernel call holds the new transactions and gives every window's count and sums.
Each feature is then its aggregation's compiled form (``features.aggregations``) over those arrays,
as in the batch engine. A few transactions (a service's usual batch) are computed whole in the
kernel call that holds them (``_rows_flat``): each aggregation's online form compiled (a step of
``_value``), in the same floating-point operations as its compiled form, so the same bits; numpy's
cost per call (and Python's per transaction) outweighs the work there.

A window over a derived value (``count_above``, ``max``) reads each event's value of that feature
as the event arrived: the feature is computed (compiled form) for every transaction held, by
``features`` or ``add``, and kept beside its amount and label (set once: NaN until then); a second
kernel then reads those values over the derived windows.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numba
import numpy as np

import fraudflow._numba  # noqa: F401  (threading layer, before any kernel)
from fraudflow import schema
from fraudflow.features.aggregations import NOISE, SATURDAY
from fraudflow.features.definitions import Feature, FeatureSet
from fraudflow.features.kernels import compensated_add
from fraudflow.records import ENTITIES, NIGHT_LAST_HOUR, US_PER_DAY, US_PER_HOUR, TxColumns

if TYPE_CHECKING:
    import numpy.typing as npt

    I64 = npt.NDArray[np.int64]
    F64 = npt.NDArray[np.float64]
    #: what the kernels hold: the pools (rows, values), their ends, the segments and how many, the hash tables
    State = tuple[I64, F64, I64, I64, I64, I64, I64]
    #: a batch's columns: times, TRANSACTION_IDs, customers, terminals, amounts
    Columns = tuple[I64, I64, I64, I64, F64]

KINDS = len(ENTITIES)
# An event's row in a pool: ``rows[kind, j, ...]``; its amount and label are ``values[kind, j, ...]``
# (a window feature's column picks one by ``SUMMED``).
TS, ID, SEQ, LATEST = 0, 1, 2, 3
AMOUNT, FRAUD = 0, 1
#: a window's sums are ``[AMOUNT, FRAUD, SPREAD, FIRST_MARKED, LAST_MARKED, SINCE]``: then the amounts'
#: population variance (by Welford's updates, as the events are read: stable, unlike a sum of squares),
#: the times of the first and last events with a known fraud (NaN when none); ``MARKED`` is the bit
#: asking for both; the number of events at or after the first one's time (a second scan of the segment)
SPREAD, FIRST_MARKED, LAST_MARKED, SINCE = 2, 3, 4, 5
MARKED = 3
#: the sums of a window
N_SUMS = 6
#: what a window over a derived value gives (its op): a count of values above a threshold, their
#: maximum, a count of known frauds the amount rules do not explain
COUNT_ABOVE, MAXIMUM, UNEXPLAINED = 0, 1, 2
#: the first of the derived values' columns in ``values`` (one per value a window reads)
DERIVED = 2
SUMMED = {schema.TX_AMOUNT: AMOUNT, schema.TX_FRAUD: FRAUD}
# An entity's segment: ``segments[kind, segment, ...]``.
START, LENGTH, ROOM, ENTITY = 0, 1, 2, 3
# A hash table's row: the key, then the values (an entity's: its segment).
KEY, SEGMENT = 0, 1
#: A hash table's value where no key is (segments are numbered from 0).
FREE = -1
#: A new entity's room, in events.
FIRST_ROOM = 4
#: Transactions ``add`` appends per kernel call: the hash tables are sized for the entries plus a chunk.
HOLD_CHUNK = 4096
#: Below this many transactions, ``features`` computes them in the kernel call that holds them
#: (``_rows_flat``), from it on by the batch route (numpy's calls, a few per feature). On the benchmark
#: lake (fraudflow-4, 2 shared cores) the kernel call cost 1/5 to 2/3 of the batch route's for 1 to 32
#: transactions (41 µs against 240 for one, 402 against 650 for 32), and still less at 128.
SMALL_BATCH = 32
#: The rows a call of ``OnlineState.trim`` reads at most (it stops after the segment that reaches
#: it): a pass forgetting the old events goes over the segments a slice a call, over as many batches
#: as it takes. Whole, a pass over the 620,000 transactions held at 1,000 a second held the service's
#: event loop 34-37 ms once a minute; in slices of 50,000 rows it took 1.4-1.6 ms of each of 28 batches
#: in a row, which queued the requests as much; in slices of 10,000 each batch's share is under 0.5 ms.
TRIM_SLICE_ROWS = 10_000
# The steps ``_value`` computes a feature by: each aggregation's online form, compiled (``CODES``).
STEP_VALUE, STEP_WEEKEND, STEP_NIGHT, STEP_RATIO, STEP_QUOTIENT, STEP_OVER = 0, 1, 2, 3, 4, 5
STEP_COUNT, STEP_SUM, STEP_MEAN, STEP_STD, STEP_ZSCORE = 6, 7, 8, 9, 10
STEP_FIRST_FRAUD_AGE, STEP_LAST_FRAUD_AGE, STEP_FRAUD_SHARE = 11, 12, 13
#: Each aggregation's step (by name); a feature set using one not here has its few transactions
#: computed as a batch's.
CODES = {
    "value": STEP_VALUE,
    "weekend": STEP_WEEKEND,
    "night": STEP_NIGHT,
    "ratio": STEP_RATIO,
    "quotient": STEP_QUOTIENT,
    "count": STEP_COUNT,
    "sum": STEP_SUM,
    "mean": STEP_MEAN,
    "count_above": STEP_OVER,
    "max": STEP_OVER,
    "std": STEP_STD,
    "zscore": STEP_ZSCORE,
    "days_since_first_fraud": STEP_FIRST_FRAUD_AGE,
    "days_since_last_fraud": STEP_LAST_FRAUD_AGE,
    "fraud_share_since_first_fraud": STEP_FRAUD_SHARE,
    "unexplained_frauds": STEP_OVER,
}
#: A time after every transaction's.
END_OF_TIME = int(np.iinfo(np.int64).max)


class OnlineState:
    """Every entity's recent events for one feature set, in arrays, read and appended by numba kernels.

    One caller at a time (the service calls it under its store's lock).
    """

    def __init__(self, feature_set: FeatureSet) -> None:
        self.feature_set = feature_set
        windows = [f for f in feature_set.features if f.is_window]
        #: per entity kind, how far back (µs) its windows reach, as ``OnlineFeatures.history_us``
        self.history_us = {
            kind: max((back for k, back, _ in map(_span, windows) if k == kind_index), default=0)
            for kind_index, kind in enumerate(ENTITIES)
        }
        #: the highest seq seen in the log (transactions held or trimmed since, labels); -1 at first
        self.last_seq = -1
        # the windows ``_windows`` counts and sums (those over derived values are ``_derived_windows``'),
        # by kind, then how far back (its scans drop a window once an event's latest time is beyond it)
        summing = [f for f in windows if not f.rule.derived]
        spans = sorted({_span(f) for f in summing})
        self._span_of = {f.name: spans.index(_span(f)) for f in summing}
        summed = [0] * len(spans)  # the columns each window's features sum, as bits 1 << AMOUNT, 1 << FRAUD
        for f in summing:
            if f.column in SUMMED:
                summed[self._span_of[f.name]] |= 1 << SUMMED[f.column]
            if f.rule.reads_variance:
                summed[self._span_of[f.name]] |= 1 << SPREAD
            if f.rule.reads_marked:
                summed[self._span_of[f.name]] |= 1 << MARKED
            if f.rule.reads_since:
                summed[self._span_of[f.name]] |= 1 << SINCE
        self._spans = np.array(
            [(*span, bits) for span, bits in zip(spans, summed, strict=True)], dtype=np.int64
        ).reshape(len(spans), 4)
        # the windows over derived values: the values kept (columns DERIVED + d of the pools), the
        # features computing them (and their online forms), each distinct window as (kind, how far
        # back, delay) sorted as ``spans``, and what its features read of it: window w's are the
        # features ``_derived_ops[w]`` to ``_derived_ops[w + 1]``, each as (the column of the pools
        # read, its op) with its threshold and amount limit
        derived = sorted((f for f in windows if f.rule.derived), key=_span)
        self._derived_names = list(dict.fromkeys(f.of or "" for f in derived))
        wanted = {g.name for name in self._derived_names for g in feature_set.derivation(name)}
        self._derivation = [f for f in feature_set.features if f.name in wanted]
        self._derived_of = {f.name: i for i, f in enumerate(derived)}
        derived_spans = sorted({_span(f) for f in derived})
        self._derived_spans = np.array(derived_spans, dtype=np.int64).reshape(len(derived_spans), 3)
        self._derived_ops = np.searchsorted(
            [derived_spans.index(_span(f)) for f in derived], np.arange(len(derived_spans) + 1)
        )
        self._derived_reads = np.array(
            [(DERIVED + self._derived_names.index(f.of or ""), _op(f)) for f in derived], dtype=np.int64
        ).reshape(len(derived), 2)
        self._thresholds = np.array([f.threshold or 0.0 for f in derived], dtype=np.float64)
        self._limits = np.array([np.inf if f.limit is None else f.limit for f in derived], dtype=np.float64)
        for f in derived:  # a derived window's events, and those its value reads, held as long as it reaches
            for kind in {f.entity or "", *(g.entity or "" for g in feature_set.derivation(f.of or "") if g.is_window)}:
                self.history_us[kind] = max(self.history_us[kind], feature_set.reach_days(f) * US_PER_DAY)
        self._plan = [(f, f.rule.compiled) for f in feature_set.features]
        #: what ``_rows_flat`` reads besides the state and the columns (None: an aggregation without a code)
        self._program = self._compile_program()
        #: events older than this before the newest one are never read again; trim forgets them in
        #: steps of 1/8 of it, so a call per batch mostly costs nothing
        self._keep_us = max(self.history_us.values())
        self._trim_step_us = max(1, self._keep_us // 8)
        self._pass: _TrimPass | None = None  # a forgetting pass under way (``trim``)
        self._oldest_us = END_OF_TIME
        self._rows: I64 = np.empty((KINDS, 1024, 4), dtype=np.int64)
        self._values: F64 = np.empty((KINDS, 1024, DERIVED + len(self._derived_names)), dtype=np.float64)
        self._pool_end = np.zeros(KINDS, dtype=np.int64)
        self._segments: I64 = np.empty((KINDS, 64, 4), dtype=np.int64)
        self._n_segments = np.zeros(KINDS, dtype=np.int64)
        # a small batch's labels (none: the kernels only read them), allocated once
        self._no_labels: F64 = np.zeros(SMALL_BATCH, dtype=np.float64)
        self._entities = 0  # the most segments of one kind
        self._n_txs = 0
        self._reindex(1024, 128)

    @property
    def held(self) -> int:
        """The number of transactions held."""
        return self._n_txs

    def add(self, txs: TxColumns, seqs: np.ndarray, fraud: np.ndarray | None = None) -> None:
        """Events known from elsewhere (materialized from the lake, caught up from the log), with their
        seqs (increasing) and labels (0 = none known). Transactions held already (by TRANSACTION_ID:
        the log gives each one seq) are skipped, so adding is idempotent."""
        seqs = np.asarray(seqs, dtype=np.int64)
        labels = np.zeros(len(txs)) if fraud is None else np.asarray(fraud, dtype=np.float64)
        before = self._n_txs
        for a in range(0, len(txs), HOLD_CHUNK):  # the tables grow with the entities, not a bulk load's size
            b = a + HOLD_CHUNK
            if self._derived_names:  # their values as they arrive: their windows, then the features
                chunk = txs.slice(a, b)
                counts, sums = self._append(_features_flat, chunk, seqs[a:b], labels[a:b], self._spans)
                current = self._derive(_Batch(chunk, counts, sums, self._span_of))
                _set_derived(self._rows, self._values, self._segments, self._tx_table, chunk.tx_id, current)
            else:
                self._append(_hold_flat, txs.slice(a, b), seqs[a:b], labels[a:b])
        if self._n_txs - before >= HOLD_CHUNK:  # a bulk load: room for every entity to grow, now
            self._repack()

    def label(self, tx_ids: np.ndarray, fraud: np.ndarray, seqs: np.ndarray | None = None) -> int:
        """Set the labels of held events; returns how many were held. ``seqs``: the label entries' seqs
        when they come from the log (``last_seq`` follows them)."""
        ids = np.asarray(tx_ids, dtype=np.int64)
        fraud = np.asarray(fraud, dtype=np.float64)
        _check_lengths(len(ids), fraud)
        if seqs is not None and len(seqs):
            _check_lengths(len(ids), seqs)
            self.last_seq = max(self.last_seq, int(np.max(seqs)))
        return int(_label(self._rows, self._values, self._segments, self._tx_table, ids, fraud))

    def features(self, txs: TxColumns, seqs: np.ndarray) -> F64:
        """(n, len(feature_set.features)) float64: each transaction's features over the held events whose
        seq is below its own (in its windows), then holds the transactions (with those seqs) if not held
        already (a transaction recorded earlier but never answered is recomputed exactly). The columns
        are in feature_set order; values equal OnlineFeatures.compute's (ints exactly, floats 1e-12 rel).

        The batch is held first, so a transaction also sees the batch's others of a lower seq. A
        TRANSACTION_ID is held once, with the first seq it came with (a log gives each one seq).
        Below SMALL_BATCH transactions, in one kernel call (``_rows_flat``): the batch route's bits.
        """
        n = len(txs)
        seqs = np.asarray(seqs, dtype=np.int64)
        if n < SMALL_BATCH and self._program is not None:  # one kernel call, every feature in it
            rows: F64 = self._append(_rows_flat, txs, seqs, self._no_labels[:n], self._spans, *self._program)[0]
            return rows
        counts, sums = self._append(_features_flat, txs, seqs, np.zeros(n), self._spans)
        batch = _Batch(txs, counts, sums, self._span_of, self._derived_of)
        if self._derived_names:
            batch.over = self._derived_windows(txs, seqs, self._derive(batch))
        out = np.empty((n, len(self._plan)), dtype=np.float64)
        computed = batch.features  # the derived values' features, computed already
        for j, (f, compiled) in enumerate(self._plan):
            column = computed.get(f.name)
            out[:, j] = computed[f.name] = compiled(f, batch) if column is None else column
        return out

    def _compile_program(self) -> tuple[np.ndarray, ...] | None:
        """The arrays ``_rows_flat`` reads after the spans: the windows over derived values (``spans``,
        ``ops``, ``reads``, thresholds, limits as ``_derived_windows``'), each feature as a step of
        ``_value`` (its code, then its operands: a window, its sums' column or an earlier feature; the
        days of its reach), the features the derived values need (their steps come first) and where
        each derived value is among the features. None when an aggregation has no code."""
        names = self.feature_set.names
        steps = np.zeros((len(names), 4), dtype=np.int64)
        for j, f in enumerate(self.feature_set.features):
            code = CODES.get(f.aggregation)
            if code is None:
                return None
            if f.rule.derived:
                operands = (self._derived_of[f.name], 0)
            elif f.is_window:
                operands = (self._span_of[f.name], SUMMED.get(f.column or "", AMOUNT))
            elif f.rule.column_is_feature:
                operands = (names.index(f.column or ""), names.index(f.of or ""))
            else:
                operands = (0, names.index(f.of) if f.of else 0)
            steps[j] = (code, *operands, f.history_days)
        derivation = np.array([names.index(f.name) for f in self._derivation], dtype=np.int64)
        derived_at = np.array([names.index(name) for name in self._derived_names], dtype=np.int64)
        return (
            self._derived_spans,
            self._derived_ops,
            self._derived_reads,
            self._thresholds,
            self._limits,
            steps,
            derivation,
            derived_at,
        )

    def _derive(self, batch: _Batch) -> F64:
        """The batch's derived values (``[d, i]``, compiled forms over its windows), their features in
        ``batch.features``."""
        for f in self._derivation:
            batch.features[f.name] = f.rule.compiled(f, batch)
        current = np.array([batch.features[name] for name in self._derived_names], dtype=np.float64)
        return current.reshape(len(self._derived_names), len(batch.ts_us))

    def _derived_windows(self, txs: TxColumns, seqs: I64, current: F64) -> F64:
        """The batch's derived values ``current`` kept for its events held without them yet, then each
        window over derived values ``[feature, i]`` (one kernel call)."""
        return _derived_windows(
            self._rows,
            self._values,
            self._segments,
            self._tx_table,
            self._entity_table,
            txs.ts_us,
            txs.tx_id,
            txs.customer,
            txs.terminal,
            seqs,
            self._derived_spans,
            self._derived_ops,
            self._derived_reads,
            self._thresholds,
            self._limits,
            current,
        )

    def trim(self, now_us: int) -> None:
        """Forget the events no window can reach from ``now_us`` on (memory stays bounded): a pass
        begins once they span an eighth of the longest history, so that a call per batch mostly costs
        nothing, and goes over the segments ``TRIM_SLICE_ROWS`` rows a call (the calls after it go on
        from where it stopped, with the pass's own cut-off). A transaction not older than the newest
        before it gets the same features however far a pass has gone (its windows never reach what a
        pass forgets); a late arrival's may reach events a pass has not forgotten yet, and counts
        them (a whole pass would have forgotten them a few batches earlier).

        Each segment keeps its later events in place; once a pass finds half the segments of a kind
        empty (their entities gone quiet), the pools are repacked without them and the hash tables
        rebuilt."""
        if self._pass is None:
            cutoff = now_us - self._keep_us
            if cutoff < self._oldest_us + self._trim_step_us:
                return
            self._pass = _TrimPass(cutoff)
            self._oldest_us = END_OF_TIME  # from now on: the events appended, and those the pass keeps
        p = self._pass
        forgotten, oldest, p.kind, p.segment = _trim(
            self._rows,
            self._values,
            self._segments,
            self._n_segments,
            self._tx_table,
            p.cutoff,
            p.kind,
            p.segment,
            TRIM_SLICE_ROWS,
            p.empties,
        )
        self._n_txs -= forgotten
        self._oldest_us = min(self._oldest_us, oldest)
        if p.kind < KINDS:
            return
        self._pass = None
        if 2 * int(p.empties.max()) > self._entities:
            self._repack(drop_empty=True)
            self._reindex(len(self._tx_table), self._entity_table.shape[1])

    @property
    def trimming(self) -> bool:
        """Whether a forgetting pass is under way (the next ``trim`` goes on with it)."""
        return self._pass is not None

    def _append(
        self, kernel: Callable[..., tuple[Any, ...]], txs: TxColumns, seqs: I64, fraud: F64, *extra: I64
    ) -> Any:
        """Holds the transactions not held yet, through ``kernel`` (``_hold_flat``, or ``_features_flat`` with
        its ``extra`` arguments), which stops where the pools are full: they are repacked and it goes on.
        Returns what else the kernel returns."""
        m = len(txs)
        _check_lengths(m, txs.ts_us, txs.customer, txs.terminal, txs.amount, seqs, fraud)
        entities = self._entities + m
        if entities > self._segments.shape[1]:
            self._segments = _grown(self._segments, 2 * entities)
        tx_size, entity_size = 2 * (self._n_txs + m), 2 * entities  # the hash tables: at most half full
        if tx_size > len(self._tx_table) or entity_size > self._entity_table.shape[1]:
            self._reindex(max(tx_size, len(self._tx_table)), max(entity_size, self._entity_table.shape[1]))
        start = 0
        while True:
            # every array its own argument: numba types those in C, a tuple of them in Python (15 µs a call)
            done, new_txs, oldest, top_seq, self._entities, *out = kernel(
                self._rows,
                self._values,
                self._pool_end,
                self._segments,
                self._n_segments,
                self._tx_table,
                self._entity_table,
                txs.ts_us,
                txs.tx_id,
                txs.customer,
                txs.terminal,
                txs.amount,
                fraud,
                seqs,
                start,
                *extra,
            )
            self._n_txs += new_txs
            self._oldest_us = min(self._oldest_us, oldest)
            self.last_seq = max(self.last_seq, top_seq)
            if done == m:
                return out
            self._repack(spare=FIRST_ROOM * (m - done))
            start = done

    def _repack(self, spare: int = 0, drop_empty: bool = False) -> None:
        """The pools rewritten with room for every segment to grow, and ``spare`` rows more."""
        self._rows, self._values, self._entities = _repack(
            self._rows, self._values, self._pool_end, self._segments, self._n_segments, spare, drop_empty
        )

    def _reindex(self, tx_size: int, entity_size: int) -> None:
        """The hash tables again, of at least these sizes, from the segments (renumbered, or to grow)."""
        tx_size, entity_size = _power_of_two(tx_size), _power_of_two(entity_size)
        self._tx_table = np.full((tx_size, 1 + KINDS), FREE, dtype=np.int64)
        self._entity_table = np.full((KINDS, entity_size, 2), FREE, dtype=np.int64)
        self._n_txs = int(_reindex(self._rows, self._segments, self._n_segments, self._tx_table, self._entity_table))


class _TrimPass:
    """A forgetting pass under way: its cut-off, the segment the next slice begins with (kind,
    segment), and the empty segments it found of each kind."""

    __slots__ = ("cutoff", "empties", "kind", "segment")

    def __init__(self, cutoff: int) -> None:
        self.cutoff = cutoff
        self.kind = 0
        self.segment = 0
        self.empties = np.zeros(KINDS, dtype=np.int64)


def _op(f: Feature) -> int:
    """What a window over a derived value gives (``_derived_windows``)."""
    return {"max": MAXIMUM, "unexplained_frauds": UNEXPLAINED}.get(f.aggregation, COUNT_ABOVE)


def _span(f: Feature) -> tuple[int, int, int]:
    """A window feature's window: (entity kind's index, how far back, delay) in µs."""
    return ENTITIES.index(f.entity or ""), f.history_days * US_PER_DAY, f.delay_days * US_PER_DAY


def _check_lengths(n: int, *columns: np.ndarray) -> None:
    """The kernels read ``n`` values of every column (unchecked: numba does not check bounds)."""
    for c in columns:
        if len(c) != n:
            raise ValueError(f"columns of different lengths: {n} and {[len(c) for c in columns]}")


def _power_of_two(n: int) -> int:
    return 1 << max(0, n - 1).bit_length()


def _grown(a: np.ndarray, size: int) -> np.ndarray:
    """``a`` with room for ``size`` along its second axis."""
    bigger = np.empty((a.shape[0], size, *a.shape[2:]), dtype=a.dtype)
    bigger[:, : a.shape[1]] = a
    return bigger


class _Batch:
    """A batch's columns, window counts and sums, windows over derived values (``over``, once
    computed), and features so far (``aggregations.CompiledInputs``)."""

    def __init__(
        self, txs: TxColumns, counts: I64, sums: F64, span_of: dict[str, int], derived_of: dict[str, int] | None = None
    ) -> None:
        self.ts_us = txs.ts_us
        self.features: dict[str, np.ndarray] = {}
        self.over: F64 | None = None
        self._txs = txs
        self._counts = counts
        self._sums = sums
        self._span_of = span_of
        self._derived_of = derived_of or {}

    def count_above(self, f: Feature) -> I64:
        assert self.over is not None
        counts: I64 = self.over[self._derived_of[f.name]].astype(np.int64)
        return counts

    def maximum(self, f: Feature) -> F64:
        assert self.over is not None
        values: F64 = self.over[self._derived_of[f.name]]
        return values

    def count_unexplained(self, f: Feature) -> I64:
        return self.count_above(f)

    def count_since_first_marked(self, f: Feature) -> I64:
        counts: I64 = self._sums[self._span_of[f.name], SINCE].astype(np.int64)
        return counts

    def column(self, name: str) -> np.ndarray:
        columns = {
            schema.TRANSACTION_ID: self._txs.tx_id,
            schema.CUSTOMER_ID: self._txs.customer,
            schema.TERMINAL_ID: self._txs.terminal,
            schema.TX_AMOUNT: self._txs.amount,
        }
        return columns[name]

    def count(self, f: Feature) -> I64:
        counts: I64 = self._counts[self._span_of[f.name]]
        return counts

    def total(self, f: Feature) -> F64:
        sums: F64 = self._sums[self._span_of[f.name], SUMMED[f.column or ""]]
        return sums

    def variance(self, f: Feature) -> F64:
        variances: F64 = self._sums[self._span_of[f.name], SPREAD]
        return variances

    def first_marked(self, f: Feature) -> F64:
        times: F64 = self._sums[self._span_of[f.name], FIRST_MARKED]
        return times

    def last_marked(self, f: Feature) -> F64:
        times: F64 = self._sums[self._span_of[f.name], LAST_MARKED]
        return times

    def feature(self, name: str) -> np.ndarray:
        return self.features[name]


# The kernels. A hash table is an array of a power-of-two number of rows (key, then values), kept
# at most half full and probed linearly; a row is free where its first value is FREE.


@numba.njit(cache=True, inline="always")
def _home(table: I64, key: int) -> int:
    """The row where ``key``'s probe starts."""
    x = np.uint64(key)
    x ^= x >> np.uint64(33)
    x *= np.uint64(0xFF51AFD7ED558CCD)
    x ^= x >> np.uint64(33)
    return int(np.int64(x & np.uint64(table.shape[0] - 1)))


@numba.njit(cache=True, inline="always")
def _slot(table: I64, key: int) -> int:
    """The row of ``table`` holding ``key``, or the free row where it goes."""
    mask = table.shape[0] - 1
    i = _home(table, key)
    while table[i, 1] != FREE and table[i, KEY] != key:
        i = (i + 1) & mask
    return i


@numba.njit(cache=True)
def _delete(table: I64, key: int) -> None:
    """Removes ``key`` (held) from ``table``, moving back the keys after it whose probe passes its row."""
    mask = table.shape[0] - 1
    hole = _slot(table, key)
    j = hole
    while True:
        j = (j + 1) & mask
        if table[j, 1] == FREE:
            break
        home = _home(table, table[j, KEY])
        # row j's key may fill the hole when its probe starts at or before the hole (cyclically)
        if (j - home) & mask >= (j - hole) & mask:
            table[hole] = table[j]
            hole = j
    table[hole, 1:] = FREE


@numba.njit(cache=True)
def _move(rows: I64, values: F64, pool_end: I64, segments: I64, k: int, g: int) -> None:
    """Moves kind ``k``'s full segment ``g`` to the pool's end with twice the room (which the caller made)."""
    start, length, room = segments[k, g, START], segments[k, g, LENGTH], segments[k, g, ROOM]
    to = pool_end[k]
    rows[k, to : to + length] = rows[k, start : start + length]
    values[k, to : to + length] = values[k, start : start + length]
    segments[k, g, START] = to
    segments[k, g, ROOM] = 2 * room
    pool_end[k] = to + 2 * room


@numba.njit(cache=True)
def _hold(state: State, columns: Columns, fraud: F64, seqs: I64, start: int) -> tuple[int, int, int, int, int]:
    """Appends transactions ``start, start + 1, ...`` not held yet (by TRANSACTION_ID) to their entities'
    segments, up to the first one the pools have no room for (``segments`` and the hash tables have
    room for them all: the caller's).

    Returns where it stopped (``len(ts)`` when done), how many transactions were new, the oldest time
    among them, the highest seq seen and the most segments of one kind.
    """
    rows, values, pool_end, segments, n_segments, tx_table, entity_table = state
    ts, ids, customer, terminal, amount = columns
    new_txs = 0
    oldest = END_OF_TIME
    top_seq = -1
    slots = np.empty(KINDS, dtype=np.int64)  # the transaction's entity of each kind: its hash slot
    for i in range(start, ts.shape[0]):
        top_seq = max(top_seq, seqs[i])
        s = _slot(tx_table, ids[i])
        if tx_table[s, 1] != FREE:
            continue
        for k in range(KINDS):  # room first: a transaction is held whole or not at all
            slots[k] = _slot(entity_table[k], customer[i] if k == 0 else terminal[i])
            g = entity_table[k, slots[k], SEGMENT]
            if g == FREE:
                need = FIRST_ROOM
            else:
                need = 2 * segments[k, g, ROOM] if segments[k, g, LENGTH] == segments[k, g, ROOM] else 0
            if pool_end[k] + need > rows.shape[1]:
                return i, new_txs, oldest, top_seq, n_segments.max()
        tx_table[s, KEY] = ids[i]
        new_txs += 1
        oldest = min(oldest, ts[i])
        for k in range(KINDS):
            g = entity_table[k, slots[k], SEGMENT]
            if g == FREE:
                g = n_segments[k]
                n_segments[k] += 1
                entity_table[k, slots[k], KEY] = customer[i] if k == 0 else terminal[i]
                entity_table[k, slots[k], SEGMENT] = g
                segments[k, g, START] = pool_end[k]
                segments[k, g, LENGTH] = 0
                segments[k, g, ROOM] = FIRST_ROOM
                segments[k, g, ENTITY] = entity_table[k, slots[k], KEY]
                pool_end[k] += FIRST_ROOM
            elif segments[k, g, LENGTH] == segments[k, g, ROOM]:
                _move(rows, values, pool_end, segments, k, g)
            length = segments[k, g, LENGTH]
            j = segments[k, g, START] + length
            rows[k, j, TS] = ts[i]
            rows[k, j, ID] = ids[i]
            rows[k, j, SEQ] = seqs[i]
            rows[k, j, LATEST] = ts[i] if length == 0 else max(ts[i], rows[k, j - 1, LATEST])
            values[k, j, AMOUNT] = amount[i]
            values[k, j, FRAUD] = fraud[i]
            for c in range(DERIVED, values.shape[2]):
                values[k, j, c] = np.nan  # not known yet: set once (``_set_derived``)
            segments[k, g, LENGTH] = length + 1
            tx_table[s, 1 + k] = g
    return ts.shape[0], new_txs, oldest, top_seq, n_segments.max()


@numba.njit(cache=True)
def _features(
    state: State, columns: Columns, fraud: F64, seqs: I64, start: int, spans: I64
) -> tuple[int, int, int, int, int, I64, F64]:
    """``_hold``, then, once every transaction is held, ``_windows`` (``spans``): what both return."""
    done, new_txs, oldest, top_seq, entities = _hold(state, columns, fraud, seqs, start)
    if done < len(seqs):
        return done, new_txs, oldest, top_seq, entities, np.empty((0, 0), np.int64), np.empty((0, 0, 0))
    rows, values, _, segments, _, _, entity_table = state
    counts, sums = _windows(rows, values, segments, entity_table, columns, seqs, spans)
    return done, new_txs, oldest, top_seq, entities, counts, sums


@numba.njit(cache=True)
def _hold_flat(
    rows: I64,
    values: F64,
    pool_end: I64,
    segments: I64,
    n_segments: I64,
    tx_table: I64,
    entity_table: I64,
    ts: I64,
    ids: I64,
    customer: I64,
    terminal: I64,
    amount: F64,
    fraud: F64,
    seqs: I64,
    start: int,
) -> tuple[int, int, int, int, int]:
    """``_hold`` with the state and the columns as separate arguments (the cheap call from Python)."""
    state = (rows, values, pool_end, segments, n_segments, tx_table, entity_table)
    return _hold(state, (ts, ids, customer, terminal, amount), fraud, seqs, start)


@numba.njit(cache=True)
def _features_flat(
    rows: I64,
    values: F64,
    pool_end: I64,
    segments: I64,
    n_segments: I64,
    tx_table: I64,
    entity_table: I64,
    ts: I64,
    ids: I64,
    customer: I64,
    terminal: I64,
    amount: F64,
    fraud: F64,
    seqs: I64,
    start: int,
    spans: I64,
) -> tuple[int, int, int, int, int, I64, F64]:
    """``_features`` with the state and the columns as separate arguments (the cheap call from Python)."""
    state = (rows, values, pool_end, segments, n_segments, tx_table, entity_table)
    return _features(state, (ts, ids, customer, terminal, amount), fraud, seqs, start, spans)


@numba.njit(cache=True)
def _rows_flat(
    rows: I64,
    values: F64,
    pool_end: I64,
    segments: I64,
    n_segments: I64,
    tx_table: I64,
    entity_table: I64,
    ts: I64,
    ids: I64,
    customer: I64,
    terminal: I64,
    amount: F64,
    fraud: F64,
    seqs: I64,
    start: int,
    spans: I64,
    derived_spans: I64,
    derived_ops: I64,
    derived_reads: I64,
    thresholds: F64,
    limits: F64,
    steps: I64,
    derivation: I64,
    derived_at: I64,
) -> tuple[int, int, int, int, int, F64]:
    """``_features_flat``, then every feature ``[i, j]`` of the transactions by its step (``steps[j]``,
    ``_value``): first those the derived values need (``derivation``; value d is feature
    ``derived_at[d]``), then the windows over them (``_derived_windows``, the rest of the arguments),
    then all in the set's order. What ``_hold`` returns, then the features (unset when not done)."""
    state = (rows, values, pool_end, segments, n_segments, tx_table, entity_table)
    columns = (ts, ids, customer, terminal, amount)
    m = ts.shape[0]
    out = np.empty((m, steps.shape[0]), dtype=np.float64)
    done, new_txs, oldest, top_seq, entities = _hold(state, columns, fraud, seqs, start)
    if done < m:
        return done, new_txs, oldest, top_seq, entities, out
    counts, sums = _windows(rows, values, segments, entity_table, columns, seqs, spans)
    over = np.zeros((derived_reads.shape[0], m), dtype=np.float64)
    if derived_at.shape[0]:
        current = np.empty((derived_at.shape[0], m), dtype=np.float64)
        for i in range(m):
            for j in derivation:
                out[i, j] = _value(steps, j, i, ts, amount, counts, sums, over, out)
            for d in range(derived_at.shape[0]):
                current[d, i] = out[i, derived_at[d]]
        over = _derived_windows(
            rows,
            values,
            segments,
            tx_table,
            entity_table,
            ts,
            ids,
            customer,
            terminal,
            seqs,
            derived_spans,
            derived_ops,
            derived_reads,
            thresholds,
            limits,
            current,
        )
    for i in range(m):
        for j in range(steps.shape[0]):
            out[i, j] = _value(steps, j, i, ts, amount, counts, sums, over, out)
    return done, new_txs, oldest, top_seq, entities, out


@numba.njit(cache=True)
def _value(steps: I64, j: int, i: int, ts: I64, amount: F64, counts: I64, sums: F64, over: F64, out: F64) -> float:
    """Feature ``j`` of transaction ``i``, its aggregation's online form (``features.aggregations``)
    over the windows' ``counts`` and ``sums`` (``_windows``), the windows over derived values
    (``over``) and its earlier features (``out[i]``), in the same floating-point operations as the
    compiled form's: the same bits. ``steps[j]``: the step, then a window (or a window over a derived
    value, or the earlier feature a quotient divides), the column of its sums (or the feature a ratio
    or a quotient divides by), the days it reaches back."""
    step, a, b = steps[j, 0], steps[j, 1], steps[j, 2]
    if step == STEP_VALUE:
        return float(amount[i])
    if step == STEP_WEEKEND:
        return 1.0 if (ts[i] // US_PER_DAY + 3) % 7 >= SATURDAY else 0.0
    if step == STEP_NIGHT:
        return 1.0 if ts[i] // US_PER_HOUR % 24 <= NIGHT_LAST_HOUR else 0.0
    if step == STEP_RATIO:
        return _quotient(amount[i], out[i, b])
    if step == STEP_QUOTIENT:
        return _quotient(out[i, a], out[i, b])
    if step == STEP_OVER:
        return float(over[a, i])
    n = counts[a, i]
    if step == STEP_COUNT:
        return float(n)
    total = float(sums[a, b, i])
    if step == STEP_SUM:
        return total
    if step == STEP_FRAUD_SHARE:
        return _quotient(total, sums[a, SINCE, i])
    if step in (STEP_FIRST_FRAUD_AGE, STEP_LAST_FRAUD_AGE):
        marked = sums[a, FIRST_MARKED if step == STEP_FIRST_FRAUD_AGE else LAST_MARKED, i]
        return float(steps[j, 3]) if np.isnan(marked) else (ts[i] - marked) / float(US_PER_DAY)
    mean = total / n if n != 0 else 0.0
    if step == STEP_MEAN:
        return mean
    bound = NOISE * mean  # a spread: STEP_STD or STEP_ZSCORE
    variance = sums[a, SPREAD, i]
    std = math.sqrt(variance) if variance > bound * bound else 0.0
    if step == STEP_STD:
        return std
    return _quotient(amount[i] - mean, std)


@numba.njit(cache=True, inline="always")
def _quotient(num: float, den: float) -> float:
    """``num / den``, 0 when ``den`` is 0."""
    return num / den if den != 0 else 0.0


@numba.njit(cache=True)
def _windows(
    rows: I64, values: F64, segments: I64, entity_table: I64, columns: Columns, seqs: I64, spans: I64
) -> tuple[I64, F64]:
    """Each window's count ``[w, i]`` and sums ``[w, AMOUNT, FRAUD, SPREAD, FIRST_MARKED or LAST_MARKED, i]``
    for the batch's transactions.

    ``spans[w]`` is a window: (entity kind, how far back, delay, the columns it sums as bits), sorted
    by kind, then how far back. Transaction ``i`` sees the held events of seq below ``seqs[i]``. A
    segment is read backwards; a window is passed over from the first event whose latest time (that
    of every event before it too) is beyond it, and the scan stops when every window is.
    """
    ts, ids, customer, terminal, amount = columns
    m = ts.shape[0]
    n_spans = spans.shape[0]
    counts = np.zeros((n_spans, m), dtype=np.int64)
    sums = np.zeros((n_spans, N_SUMS, m), dtype=np.float64)
    total = np.zeros((n_spans, 2))
    lost = np.zeros((n_spans, 2))  # the compensations
    mean = np.zeros(n_spans)  # the windows' running means and squared deviations (Welford)
    deviations = np.zeros(n_spans)
    first_marked = np.zeros(n_spans)  # the times of the windows' first and last known frauds
    last_marked = np.zeros(n_spans)
    first = np.searchsorted(spans[:, 0], np.arange(KINDS + 1))  # kind k's windows: first[k] to first[k + 1]
    for i in range(m):
        t = ts[i]
        total[:] = 0.0
        lost[:] = 0.0
        mean[:] = 0.0
        deviations[:] = 0.0
        first_marked[:] = np.inf
        last_marked[:] = -np.inf
        for k in range(KINDS):
            if first[k] == first[k + 1]:
                continue
            entity = customer[i] if k == 0 else terminal[i]
            g = entity_table[k, _slot(entity_table[k], entity), SEGMENT]
            if g == FREE:
                continue
            start = segments[k, g, START]
            near, end = first[k], first[k + 1]  # the windows an event may still be in: near to end
            for j in range(start + segments[k, g, LENGTH] - 1, start - 1, -1):
                while near < end and rows[k, j, LATEST] <= t - spans[near, 1]:
                    near += 1  # this event and the ones before it are all beyond window ``near``
                if near == end:
                    break
                if rows[k, j, SEQ] >= seqs[i]:
                    continue
                te = rows[k, j, TS]
                for w in range(near, end):
                    if _in_window(te, rows[k, j, ID], t, ids[i], spans[w, 1], spans[w, 2]):
                        counts[w, i] += 1
                        for c in range(2):
                            if spans[w, 3] & (1 << c):
                                total[w, c], lost[w, c] = compensated_add(total[w, c], lost[w, c], values[k, j, c])
                        if spans[w, 3] & (1 << SPREAD):
                            _welford(mean, deviations, w, counts[w, i], values[k, j, AMOUNT])
                        if spans[w, 3] & (1 << MARKED) and values[k, j, FRAUD] > 0:
                            first_marked[w] = min(first_marked[w], te)
                            last_marked[w] = max(last_marked[w], te)
            for w in range(first[k], first[k + 1]):
                if spans[w, 3] & (1 << SINCE) and first_marked[w] != np.inf:
                    sums[w, SINCE, i] = _count_since(
                        rows, segments, k, g, t, ids[i], seqs[i], spans[w], first_marked[w]
                    )
        for w in range(n_spans):
            for c in range(2):
                sums[w, c, i] = total[w, c] + lost[w, c]
            if spans[w, 2] == 0:  # the window ends with the transaction itself
                counts[w, i] += 1
                sums[w, AMOUNT, i] += amount[i]
                if spans[w, 3] & (1 << SPREAD):
                    _welford(mean, deviations, w, counts[w, i], amount[i])
            if counts[w, i]:
                sums[w, SPREAD, i] = deviations[w] / counts[w, i]
            sums[w, FIRST_MARKED, i] = first_marked[w] if first_marked[w] != np.inf else np.nan
            sums[w, LAST_MARKED, i] = last_marked[w] if last_marked[w] != -np.inf else np.nan
    return counts, sums


@numba.njit(cache=True)
def _count_since(
    rows: I64, segments: I64, k: int, g: int, t: int, tx_id: int, seq: int, span: I64, since: float
) -> int:
    """The events of kind ``k``'s segment ``g`` in the window ``span`` of a transaction (time ``t``, id,
    seq) at or after the time ``since``: a second scan of the segment, as ``_windows``'s."""
    n = 0
    start = segments[k, g, START]
    for j in range(start + segments[k, g, LENGTH] - 1, start - 1, -1):
        if rows[k, j, LATEST] <= t - span[1]:
            break
        if rows[k, j, SEQ] >= seq:
            continue
        te = rows[k, j, TS]
        if te >= since and _in_window(te, rows[k, j, ID], t, tx_id, span[1], span[2]):
            n += 1
    return n


@numba.njit(cache=True, inline="always")
def _in_window(te: int, event_id: int, t: int, tx_id: int, far_us: int, delay_us: int) -> bool:
    """Whether an event (time ``te``, id ``event_id``) is in the window ``(t - far_us, t - delay_us]``
    of a transaction (time ``t``, id ``tx_id``); without a delay, the events before the transaction in
    (time, id) order."""
    if te <= t - far_us:
        return False
    if delay_us == 0:
        return te < t or (te == t and event_id < tx_id)
    return te <= t - delay_us


@numba.njit(cache=True, inline="always")
def _welford(mean: F64, deviations: F64, w: int, n: int, x: float) -> None:
    """Window ``w``'s running mean and sum of squared deviations with its ``n``-th value ``x``."""
    d = x - mean[w]
    mean[w] += d / n
    deviations[w] += d * (x - mean[w])


@numba.njit(cache=True)
def _derived_windows(
    rows: I64,
    values: F64,
    segments: I64,
    tx_table: I64,
    entity_table: I64,
    ts: I64,
    ids: I64,
    customer: I64,
    terminal: I64,
    seqs: I64,
    spans: I64,
    ops: I64,
    reads: I64,
    thresholds: F64,
    limits: F64,
    current: F64,
) -> F64:
    """The batch's own derived values ``current`` kept (``_set_derived``), then each feature over a
    derived value ``[f, i]`` for its transactions, as ``_windows``; every array its own argument (the
    cheap call from Python).

    ``spans[w]``: a window (entity kind, how far back, delay), sorted by kind, then how far back; its
    features are ``ops[w]`` to ``ops[w + 1]``, feature f reading the column ``reads[f, 0]`` of
    ``values`` by its op ``reads[f, 1]``: the MAXIMUM, a COUNT_ABOVE ``thresholds[f]``, or the count
    of the UNEXPLAINED known frauds (amount at most ``limits[f]``, value at most ``thresholds[f]``).
    ``current[c - DERIVED, i]``: transaction ``i``'s own values, in its windows without a delay (its
    label is not known: never a fraud).
    """
    _set_derived(rows, values, segments, tx_table, ids, current)
    m = ts.shape[0]
    n_spans = spans.shape[0]
    out = np.zeros((reads.shape[0], m), dtype=np.float64)
    seen = np.zeros(reads.shape[0], dtype=np.bool_)  # a maximum has a value
    first = np.searchsorted(spans[:, 0], np.arange(KINDS + 1))  # kind k's windows: first[k] to first[k + 1]
    for i in range(m):
        t = ts[i]
        seen[:] = False
        for w in range(n_spans):
            if spans[w, 2] == 0:  # the window ends with the transaction itself
                for f in range(ops[w], ops[w + 1]):
                    v = current[reads[f, 0] - DERIVED, i]
                    if reads[f, 1] == MAXIMUM:
                        out[f, i] = v
                        seen[f] = True
                    elif reads[f, 1] == COUNT_ABOVE and v > thresholds[f]:
                        out[f, i] += 1.0
        for k in range(KINDS):
            if first[k] == first[k + 1]:
                continue
            entity = customer[i] if k == 0 else terminal[i]
            g = entity_table[k, _slot(entity_table[k], entity), SEGMENT]
            if g == FREE:
                continue
            start = segments[k, g, START]
            near, end = first[k], first[k + 1]  # the windows an event may still be in: near to end
            for j in range(start + segments[k, g, LENGTH] - 1, start - 1, -1):
                while near < end and rows[k, j, LATEST] <= t - spans[near, 1]:
                    near += 1  # this event and the ones before it are all beyond window ``near``
                if near == end:
                    break
                if rows[k, j, SEQ] >= seqs[i]:
                    continue
                te = rows[k, j, TS]
                for w in range(near, end):
                    if not _in_window(te, rows[k, j, ID], t, ids[i], spans[w, 1], spans[w, 2]):
                        continue
                    for f in range(ops[w], ops[w + 1]):
                        v = values[k, j, reads[f, 0]]
                        if reads[f, 1] == MAXIMUM:
                            if not seen[f] or v > out[f, i]:
                                out[f, i] = v
                                seen[f] = True
                        elif reads[f, 1] == COUNT_ABOVE:
                            if v > thresholds[f]:
                                out[f, i] += 1.0
                        elif values[k, j, FRAUD] > 0 and values[k, j, AMOUNT] <= limits[f] and v <= thresholds[f]:
                            out[f, i] += 1.0
    return out


@numba.njit(cache=True)
def _set_derived(rows: I64, values: F64, segments: I64, tx_table: I64, ids: I64, derived: F64) -> None:
    """Keeps ``derived[d, i]`` as the derived value ``d`` of the held transaction ``ids[i]``, in every
    kind's segment, where it is not known yet (a transaction held before keeps its own)."""
    for i in range(ids.shape[0]):
        s = _slot(tx_table, ids[i])
        if tx_table[s, 1] == FREE:
            continue
        for k in range(KINDS):
            start = segments[k, tx_table[s, 1 + k], START]
            for j in range(start + segments[k, tx_table[s, 1 + k], LENGTH] - 1, start - 1, -1):
                if rows[k, j, ID] == ids[i]:
                    for d in range(derived.shape[0]):
                        if np.isnan(values[k, j, DERIVED + d]):
                            values[k, j, DERIVED + d] = derived[d, i]
                    break


@numba.njit(cache=True)
def _label(rows: I64, values: F64, segments: I64, tx_table: I64, ids: I64, fraud: F64) -> int:
    """Sets the labels of the held transactions among ``ids``; returns how many they are."""
    held = 0
    for i in range(ids.shape[0]):
        s = _slot(tx_table, ids[i])
        if tx_table[s, 1] != FREE:
            for k in range(KINDS):  # the event in its entity's segment
                start = segments[k, tx_table[s, 1 + k], START]
                for j in range(start + segments[k, tx_table[s, 1 + k], LENGTH] - 1, start - 1, -1):
                    if rows[k, j, ID] == ids[i]:
                        values[k, j, FRAUD] = fraud[i]
                        break
            held += 1
    return held


@numba.njit(cache=True)
def _trim(
    rows: I64,
    values: F64,
    segments: I64,
    n_segments: I64,
    tx_table: I64,
    cutoff: int,
    kind: int,
    segment: int,
    budget: int,
    empties: I64,
) -> tuple[int, int, int, int]:
    """Drops the events up to ``cutoff`` from the segments, from segment ``segment`` of ``kind`` on, in
    order, until ``budget`` rows were read (the later events move up within their segment, in order)
    and their TRANSACTION_IDs from the table; ``empties[k]`` counts the segments of kind k left empty.
    Returns how many transactions went, the oldest time kept in the segments read, and the segment
    to go on from (kind ``KINDS``: every segment was read)."""
    forgotten = 0
    oldest = END_OF_TIME
    read = 0
    while kind < KINDS:
        while segment < n_segments[kind]:
            if read >= budget:
                return forgotten, oldest, kind, segment
            k, g = kind, segment
            start = segments[k, g, START]
            to = start
            for j in range(start, start + segments[k, g, LENGTH]):
                t = rows[k, j, TS]
                if t > cutoff:
                    if to < j:
                        rows[k, to] = rows[k, j]
                        values[k, to] = values[k, j]
                    rows[k, to, LATEST] = t if to == start else max(t, rows[k, to - 1, LATEST])
                    oldest = min(oldest, t)
                    to += 1
                elif k == 0:  # every transaction is in one segment of each kind: forgotten once
                    _delete(tx_table, rows[k, j, ID])
                    forgotten += 1
            read += segments[k, g, LENGTH] + 1
            segments[k, g, LENGTH] = to - start
            empties[k] += to == start
            segment += 1
        kind += 1
        segment = 0
    return forgotten, oldest, kind, segment


@numba.njit(cache=True)
def _repack(
    rows: I64, values: F64, pool_end: I64, segments: I64, n_segments: I64, spare: int, drop_empty: bool
) -> tuple[I64, F64, int]:
    """Rewrites the pools in place, each segment with a quarter more room than its events, and free
    rows after them, half as many again plus ``spare`` (the pools grow first when short of them).
    Returns the pools and the most segments of one kind. Every event keeps its segment, unless
    ``drop_empty``: then the empty segments go and the later ones are renumbered, so the hash tables
    must be rebuilt (``_reindex``)."""
    packed = 0
    for k in range(KINDS):
        end = 0
        for g in range(n_segments[k]):
            if segments[k, g, LENGTH] or not drop_empty:
                end += _room_for(segments[k, g, LENGTH])
        packed = max(packed, end)
    size = packed + packed // 2 + spare
    if size > rows.shape[1]:
        bigger_rows = np.empty((KINDS, size, rows.shape[2]), dtype=np.int64)
        bigger_values = np.empty((KINDS, size, values.shape[2]), dtype=np.float64)
        bigger_rows[:, : rows.shape[1]] = rows
        bigger_values[:, : values.shape[1]] = values
        rows, values = bigger_rows, bigger_values
    for k in range(KINDS):
        n = n_segments[k]
        order = np.argsort(segments[k, :n, START])  # the segments in pool order
        end = 0
        for g in order:  # leftwards, packed tight: a row never lands beyond one still to be read
            start = segments[k, g, START]
            segments[k, g, START] = end
            for j in range(segments[k, g, LENGTH]):
                rows[k, end + j] = rows[k, start + j]
                values[k, end + j] = values[k, start + j]
            end += segments[k, g, LENGTH]
        starts = np.zeros(n, dtype=np.int64)
        end = 0
        for g in order:
            starts[g] = end
            if segments[k, g, LENGTH] or not drop_empty:
                end += _room_for(segments[k, g, LENGTH])
        for g in order[::-1]:  # rightwards to their rooms, the last first: a row never lands on one to be read
            for j in range(segments[k, g, LENGTH] - 1, -1, -1):
                rows[k, starts[g] + j] = rows[k, segments[k, g, START] + j]
                values[k, starts[g] + j] = values[k, segments[k, g, START] + j]
            segments[k, g, START] = starts[g]
            segments[k, g, ROOM] = _room_for(segments[k, g, LENGTH])
        pool_end[k] = end
        n_segments[k] = 0
        for g in range(n):
            if segments[k, g, LENGTH] or not drop_empty:
                segments[k, n_segments[k]] = segments[k, g]
                n_segments[k] += 1
    return rows, values, n_segments.max()


@numba.njit(cache=True, inline="always")
def _room_for(events: int) -> int:
    """A repacked segment's room: a quarter more than its events."""
    return events + events // 4 + FIRST_ROOM


@numba.njit(cache=True)
def _reindex(rows: I64, segments: I64, n_segments: I64, tx_table: I64, entity_table: I64) -> int:
    """Fills the (empty) hash tables from the segments; returns how many transactions they hold."""
    n = 0
    for k in range(KINDS):
        for g in range(n_segments[k]):
            entity = segments[k, g, ENTITY]
            h = _slot(entity_table[k], entity)
            entity_table[k, h, KEY] = entity
            entity_table[k, h, SEGMENT] = g
            start = segments[k, g, START]
            for j in range(start, start + segments[k, g, LENGTH]):
                s = _slot(tx_table, rows[k, j, ID])
                if tx_table[s, 1] == FREE:
                    tx_table[s, KEY] = rows[k, j, ID]
                    n += 1
                tx_table[s, 1 + k] = g
    return n
