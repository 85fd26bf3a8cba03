"""The compiled online state gives the Python online path's features (``OnlineFeatures.compute``).

Random streams drive an ``OnlineState`` and a plain model of what it holds (each held transaction
with its seq, the labels known) through the calls a service makes: batches of arriving
transactions, events caught up from other processes (``add``), labels, ``trim`` (the model forgets
what the state does, which must be exactly the events out of every window's reach). Every arriving
transaction's features must equal the reference's over the model's events of a lower seq (integers
exactly, floats within 1e-12 relative). The streams have same-time ties in both id orders, rows on
the windows' boundaries, late arrivals (older than transactions already held), labels arriving
after the event, duplicates and transactions recorded before but never answered (features over the
seqs below their own). Then a replay of the default world through the state gives the offline
store's features (the batch engine's, and the handbook's golden fingerprints).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from fraudflow import schema
from fraudflow.features import FRAUDFLOW, HANDBOOK, FeatureSet, compute, online_state
from fraudflow.features.aggregations import AGGREGATIONS
from fraudflow.features.definitions import FRAUDFLOW2, FRAUDFLOW3, FRAUDFLOW4
from fraudflow.features.online import OnlineFeatures
from fraudflow.features.online_state import CODES, SMALL_BATCH, OnlineState, _delete, _slot
from fraudflow.records import ENTITIES, EPOCH, US_PER_DAY, Events, Transaction, TxColumns
from tests.conftest import read_lake_table
from tests.features.test_aggregations import CASES, HAND_BUILT, random_rows, table
from tests.serving.test_online_oracle import assert_golden, days

#: Every feature of the aggregations' parity cases: windows of 1 to 3 days, delays 0 to 3, both
#: entities summing amounts and labels, ratios, calendar flags.
EVERY_CASE = FeatureSet(tuple(f for features in CASES.values() for f in features), "cases")
US_PER_HOUR = US_PER_DAY // 24


@dataclass
class Model:
    """What an OnlineState holds, plainly: each transaction with its first seq, the labels known,
    and the derived values windows read, as each transaction was first held."""

    feature_set: FeatureSet
    held: dict[int, tuple[int, Transaction]] = field(default_factory=dict)
    labels: dict[int, int] = field(default_factory=dict)
    derived: dict[int, dict[str, float]] = field(default_factory=dict)
    last_seq: int = -1  # the highest seq seen, of a transaction or a label

    def hold(self, txs: list[Transaction], seqs: list[int], fraud: list[int] | None = None) -> None:
        self.last_seq = max([self.last_seq, *seqs])
        new = []
        for i, (tx, seq) in enumerate(zip(txs, seqs, strict=True)):
            if tx.transaction_id not in self.held:
                self.held[tx.transaction_id] = (seq, tx)
                new.append((tx, seq))
                if fraud is not None:
                    self.labels[tx.transaction_id] = fraud[i]
        reference = OnlineFeatures(self.feature_set)
        for tx, seq in new if reference.derivations else []:  # over the events of a lower seq, the batch's too
            events = self.events(tx, seq)
            self.derived[tx.transaction_id] = {
                name: engine.compute(tx, events)[name] for name, engine in reference.derivations.items()
            }

    def label(self, labels: dict[int, int], seqs: list[int] | None = None) -> int:
        self.last_seq = max([self.last_seq, *(seqs or [])])
        held = {i: f for i, f in labels.items() if i in self.held}
        self.labels.update(held)
        return len(held)

    def events(self, tx: Transaction, seq: int) -> dict[str, Events]:
        """The held events of a lower seq of ``tx``'s entities."""
        return {
            kind: Events.from_rows(
                sorted(
                    (h.ts_us, h.transaction_id, h.amount, self.labels.get(h.transaction_id, 0))
                    for s, h in self.held.values()
                    if s < seq and h.entity(kind) == tx.entity(kind)
                )
            )
            for kind in ENTITIES
        }

    def features(self, tx: Transaction, seq: int) -> list[float]:
        """The reference: OnlineFeatures.compute over the held events of a lower seq."""
        values = OnlineFeatures(self.feature_set).compute(tx, self.events(tx, seq), self.derived)
        return [values[n] for n in self.feature_set.names]


def assert_rows_equal(got: np.ndarray, want: np.ndarray, feature_set: FeatureSet, where: object = "") -> None:
    """Integer features exactly, floats within 1e-12 relative."""
    assert got.shape == want.shape, where
    for j, f in enumerate(feature_set.features):
        if f.dtype == "int64":
            bad = got[:, j] != want[:, j]
        else:
            bad = ~np.isclose(got[:, j], want[:, j], rtol=1e-12, atol=0)
        assert not bad.any(), (where, f.name, got[bad, j][:5], want[bad, j][:5], np.flatnonzero(bad)[:5])


def tx_columns(tx: pa.Table) -> TxColumns:
    """A transactions table's columns as the online state takes them."""
    return TxColumns(
        schema.timestamps_us(tx["TX_DATETIME"]).astype(np.int64),
        tx["TRANSACTION_ID"].to_numpy().astype(np.int64),
        tx["CUSTOMER_ID"].to_numpy().astype(np.int64),
        tx["TERMINAL_ID"].to_numpy().astype(np.int64),
        tx["TX_AMOUNT"].to_numpy().astype(np.float64),
    )


def transaction(tx_id: int, ts_us: int, customer: int, terminal: int, amount: float) -> Transaction:
    return Transaction(tx_id, EPOCH + dt.timedelta(microseconds=ts_us), customer, terminal, amount)


def random_transactions(rng: np.random.Generator, n: int, days: int, boundaries: list[int]) -> list[Transaction]:
    """``n`` transactions of 3 customers and 4 terminals over ``days`` days, in arrival order.

    Times are on a coarse grid, an earlier time again (same-time ties, their ids in random order),
    or a window's length (``boundaries``, µs) and -1, 0 or +1 µs from an earlier time; then about one
    in eight arrives late, after up to 30 transactions of later times.
    """
    ts: list[int] = []
    for _ in range(n):
        draw = rng.random()
        if ts and draw < 0.15:
            ts.append(int(rng.choice(ts)))
        elif ts and draw < 0.4:
            ts.append(int(rng.choice(ts)) + int(rng.choice(boundaries)) + int(rng.integers(-1, 2)))
        else:
            ts.append(int(rng.integers(0, days * 24)) * US_PER_HOUR + int(rng.choice([0, 0, 0, 1_000_000])))
    order = list(np.argsort(ts, kind="stable"))
    for i in rng.choice(n, n // 8, replace=False):
        j = order.index(i)
        order.insert(min(n - 1, j + int(rng.integers(1, 30))), order.pop(j))
    ids = rng.choice(np.arange(1, 50 * n), n, replace=False) * int(rng.choice([1, 2**36]))
    return [
        transaction(
            int(ids[k]),
            ts[i],
            int(rng.integers(0, 3)),
            int(rng.integers(0, 4)),
            float(rng.choice([0.0, round(float(rng.uniform(1, 300)), 2)], p=[0.05, 0.95])),
        )
        for k, i in enumerate(order)
    ]


def boundaries_of(feature_set: FeatureSet) -> list[int]:
    """The lengths that put a row on a window's edge: windows, delays and both together, in µs."""
    lengths = {d for f in feature_set.features if f.is_window for d in (f.window_days, f.delay_days, f.history_days)}
    return sorted(d * US_PER_DAY for d in lengths if d)


class Stream:
    """Drives an OnlineState and its Model with the same calls, checking every feature row."""

    def __init__(self, feature_set: FeatureSet, rng: np.random.Generator) -> None:
        self.feature_set = feature_set
        self.rng = rng
        self.state = OnlineState(feature_set)
        self.model = Model(feature_set)
        self.seq = 0  # the log's next seq
        self.checked = 0
        self.trims = 0

    def next_seqs(self, n: int) -> list[int]:
        self.seq += n
        return list(range(self.seq - n, self.seq))

    def features(self, txs: list[Transaction], seqs: list[int]) -> None:
        got = self.state.features(TxColumns.of(txs), np.array(seqs, dtype=np.int64))
        self.model.hold(txs, seqs)
        want = np.array([self.model.features(tx, seq) for tx, seq in zip(txs, seqs, strict=True)])
        assert_rows_equal(got, want.reshape(got.shape), self.feature_set, [t.transaction_id for t in txs])
        self.checked += len(txs)
        assert self.state.held == len(self.model.held)
        assert self.state.last_seq == self.model.last_seq

    def add(self, txs: list[Transaction]) -> None:
        """Transactions other processes recorded: caught up, some with their labels known."""
        seqs = self.next_seqs(len(txs))
        fraud = [int(self.rng.random() < 0.3) for _ in txs]
        self.state.add(TxColumns.of(txs), np.array(seqs), np.array(fraud))
        self.model.hold(txs, seqs, fraud)

    def label(self) -> None:
        """Labels for some held transactions (set or reset), and for one never seen; from the log (with
        their seqs) or not."""
        ids = list(self.model.held)
        chosen = [ids[i] for i in self.rng.choice(len(ids), min(len(ids), 5), replace=False)]
        labels = {i: int(self.rng.random() < 0.7) for i in chosen} | {-12345: 1}
        seqs = self.next_seqs(len(labels)) if self.rng.random() < 0.5 else None
        n = self.state.label(np.array(list(labels)), np.array(list(labels.values())), seqs and np.array(seqs))
        assert n == self.model.label(labels, seqs)
        assert self.state.last_seq == self.model.last_seq

    def trim(self) -> None:
        """Trims at the latest time held: what the state forgets (if it does now), the model forgets."""
        now = max(tx.ts_us for _, tx in self.model.held.values())
        self.state.trim(now)
        if self.state.held < len(self.model.held):
            keep = max(self.state.history_us.values())
            self.model.held = {i: (s, tx) for i, (s, tx) in self.model.held.items() if tx.ts_us > now - keep}
            self.trims += 1
        assert self.state.held == len(self.model.held)

    def resent(self, k: int) -> tuple[list[Transaction], list[int]]:
        """``k`` held transactions with their seqs: sent again, or recorded before but never answered."""
        held = list(self.model.held.values())
        picked = [held[i] for i in self.rng.choice(len(held), min(k, len(held)), replace=False)]
        return [tx for _, tx in picked], [seq for seq, _ in picked]

    def run(self, txs: list[Transaction], trims: bool = True) -> None:
        """The transactions in random batches, each batch with a few resent and duplicated ones mixed
        in; caught-up events and labels between batches (and trims, unless ``trims`` is False)."""
        at = 0
        while at < len(txs):
            step = int(self.rng.choice([1, 1, 2, 5, 8, 20, 60]))
            if self.rng.random() < 0.15:
                self.add(txs[at : at + step])
            else:
                batch, seqs = txs[at : at + step], self.next_seqs(len(txs[at : at + step]))
                if self.model.held and self.rng.random() < 0.3:
                    old, old_seqs = self.resent(int(self.rng.integers(1, 3)))
                    cut = int(self.rng.integers(0, len(batch) + 1))
                    batch, seqs = batch[:cut] + old + batch[cut:], seqs[:cut] + old_seqs + seqs[cut:]
                if self.rng.random() < 0.1:
                    batch, seqs = [*batch, batch[0]], [*seqs, seqs[0]]  # the same transaction twice in flight
                self.features(batch, seqs)
            at += step
            if self.model.held and self.rng.random() < 0.3:
                self.label()
            if self.model.held and self.rng.random() < 0.3 and trims:
                self.trim()


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("feature_set", [EVERY_CASE, FRAUDFLOW], ids=["every-case", "fraudflow"])
def test_random_streams_give_the_reference_features(feature_set: FeatureSet, seed: int) -> None:
    rng = np.random.default_rng(seed)
    span = 3 * max(f.history_days for f in feature_set.features)
    stream = Stream(feature_set, rng)
    stream.run(random_transactions(rng, 400, span, boundaries_of(feature_set)))
    assert stream.checked >= 200 and stream.trims >= 1


@pytest.mark.parametrize("rows", ["hand-built", "random"])
def test_the_aggregations_rows_arriving_in_order_give_the_batch_features(rows: str) -> None:
    """The aggregations' parity rows (tests/features/test_aggregations.py: rows on every window's and
    threshold's edges) arriving in (time, id) order, in batches of 1 to 50 within a day (the shortest
    delay: a delayed window never reaches into its own batch), each labelled once answered: every
    case's features equal the compiled engine's."""
    tx = table(HAND_BUILT if rows == "hand-built" else random_rows())
    expected = compute(tx, EVERY_CASE, "compiled")
    cols = tx_columns(tx)
    fraud = tx["TX_FRAUD"].to_numpy().astype(np.float64)
    rng = np.random.default_rng(5)
    state = OnlineState(EVERY_CASE)
    got = []
    at = 0
    while at < len(cols):
        within_a_day = int(np.searchsorted(cols.ts_us, cols.ts_us[at] + US_PER_DAY))
        batch = cols.slice(at, min(at + int(rng.choice([1, 2, 7, 50])), within_a_day))
        got.append(state.features(batch, np.arange(at, at + len(batch))))
        state.label(batch.tx_id, fraud[at : at + len(batch)])
        at += len(batch)
    want = np.column_stack([expected[n].to_numpy().astype(np.float64) for n in EVERY_CASE.names])
    assert_rows_equal(np.concatenate(got), want, EVERY_CASE)


def test_ties_in_both_id_orders_and_a_late_arrival() -> None:
    """Hand-built: a tie seen from either side, and a transaction older than the ones held."""
    c = "CUSTOMER_ID_NB_TX_1DAY_WINDOW"
    stream = Stream(FRAUDFLOW, np.random.default_rng(0))
    t = 100 * US_PER_DAY
    first, tie_before, tie_after = (
        transaction(50, t, 1, 1, 10.0),
        transaction(40, t, 1, 2, 20.0),
        transaction(60, t, 1, 3, 30.0),
    )
    late = transaction(70, t - US_PER_HOUR, 1, 4, 40.0)
    stream.features([first, tie_before, tie_after], stream.next_seqs(3))
    stream.features([late], stream.next_seqs(1))
    got = stream.state.features(TxColumns.of([first, tie_before, tie_after, late]), np.array([0, 1, 2, 3]))
    counts = got[:, FRAUDFLOW.names.index(c)].tolist()
    # id 50 first: alone; id 40 after it, but before it in (time, id) order: alone too; id 60 sees
    # both; the late one (an hour earlier) none of them
    assert counts == [1, 1, 3, 1]


def test_a_transaction_recorded_before_but_never_answered_sees_only_the_seqs_below_its_own() -> None:
    stream = Stream(FRAUDFLOW, np.random.default_rng(1))
    t = 200 * US_PER_DAY
    txs = [transaction(i, t + i, 7, 7, float(i)) for i in range(1, 6)]
    stream.add(txs[:3])  # seqs 0, 1, 2: recorded by a process that died before answering
    stream.features(txs[3:], stream.next_seqs(2))  # seqs 3, 4
    stream.features([txs[1]], [1])  # answered now: sees seq 0 only
    got = stream.state.features(TxColumns.of([txs[1]]), np.array([1]))
    assert got[0, FRAUDFLOW.names.index("CUSTOMER_ID_NB_TX_1DAY_WINDOW")] == 2  # seq 0's and its own


def test_adding_held_transactions_again_changes_nothing() -> None:
    """Caught-up entries this process holds already (its own, or seen before) are skipped."""
    stream = Stream(FRAUDFLOW, np.random.default_rng(6))
    t = 250 * US_PER_DAY
    txs = [transaction(i, t - i * US_PER_DAY // 2, i % 2, 3, 10.0 * i) for i in range(1, 40)]
    stream.add(txs[:20])
    stream.features(txs[20:], stream.next_seqs(19))
    cols, seqs = TxColumns.of(txs), np.arange(len(txs))
    before = stream.state.features(cols, seqs)
    stream.state.add(cols, seqs, np.ones(len(txs)))
    assert stream.state.held == len(txs) and stream.state.last_seq == len(txs) - 1
    assert np.array_equal(stream.state.features(cols, seqs), before)


def test_labels_reach_the_delayed_windows_once_known() -> None:
    risk = FRAUDFLOW.names.index("TERMINAL_ID_RISK_7DAY_WINDOW")
    stream = Stream(FRAUDFLOW, np.random.default_rng(2))
    t = 300 * US_PER_DAY
    early = [transaction(i, t + i * US_PER_HOUR, i, 9, 5.0) for i in range(1, 5)]
    stream.features(early, stream.next_seqs(4))
    later = transaction(10, t + 10 * US_PER_DAY, 1, 9, 5.0)
    assert stream.state.features(TxColumns.of([later]), np.array([100]))[0, risk] == 0.0
    assert stream.state.label(np.array([1, 2, 999]), np.array([1, 1, 1])) == 2
    stream.model.label({1: 1, 2: 1})
    stream.features([later], [100])
    got = stream.state.features(TxColumns.of([later]), np.array([100]))
    assert got[0, risk] == 0.5


@pytest.mark.parametrize("feature_set", [EVERY_CASE, FRAUDFLOW], ids=["every-case", "fraudflow"])
def test_trim_forgets_only_what_no_window_can_reach(feature_set: FeatureSet) -> None:
    """After trim(now), transactions from now on get the same features; the events held are exactly
    those later than now minus the longest history, the edge included."""
    rng = np.random.default_rng(3)
    keep = feature_set.history_days * US_PER_DAY  # a window over a derived value: its value's history too
    stream = Stream(feature_set, rng)
    now = 4 * keep
    txs = random_transactions(rng, 300, 4 * keep // US_PER_DAY, boundaries_of(feature_set))
    edge = [transaction(10**9 + i, now - keep + d, i % 3, i % 4, 1.5) for i, d in enumerate((-1, 0, 1, 2))]
    stream.run([tx for tx in txs if tx.ts_us < now] + edge, trims=False)  # the trim at ``now`` must happen
    everything = Model(feature_set, dict(stream.model.held), dict(stream.model.labels), dict(stream.model.derived))
    stream.state.trim(now)
    kept = {i for i, (_, tx) in stream.model.held.items() if tx.ts_us > now - keep}
    assert stream.state.held == len(kept) < len(stream.model.held)
    dropped = [i for i in stream.model.held if i not in kept]
    assert stream.state.label(np.array(dropped), np.ones(len(dropped))) == 0
    stream.model.held = {i: stream.model.held[i] for i in kept}
    # from now on (the edge: now - keep + 1 is in the longest window, now - keep out), as if nothing had gone
    later = [transaction(2 * 10**9 + i, now + i % 3, i % 3, i % 4, 2.5) for i in range(12)]
    seqs = stream.next_seqs(len(later))
    got = stream.state.features(TxColumns.of(later), np.array(seqs))
    everything.hold(later, seqs)
    assert_rows_equal(
        got, np.array([everything.features(tx, s) for tx, s in zip(later, seqs, strict=True)]), feature_set
    )
    stream.model.hold(later, seqs)
    stream.run([tx for tx in txs if tx.ts_us >= now])


def test_trim_waits_until_an_eighth_of_the_history_can_go() -> None:
    state = OnlineState(FRAUDFLOW)
    keep = max(state.history_us.values())
    txs = [transaction(i, i * US_PER_HOUR, i % 5, i % 7, 1.0) for i in range(24 * 10)]
    state.add(TxColumns.of(txs), np.arange(len(txs)))
    state.trim(keep + US_PER_DAY)  # a day's events unreachable: kept for now
    assert state.held == len(txs)
    state.trim(keep + 5 * US_PER_DAY)  # five days: forgotten
    assert state.held == sum(tx.ts_us > 5 * US_PER_DAY for tx in txs)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("feature_set", [EVERY_CASE, FRAUDFLOW], ids=["every-case", "fraudflow"])
def test_a_pass_a_slice_at_a_time_gives_the_features_of_a_whole_one(
    feature_set: FeatureSet, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two states fed the same random stream (late arrivals, labels, a trim after every batch), one
    forgetting a whole pass a call, the other one segment a call (a pass over as many batches): the
    same features, bit for bit, for every transaction not older than the newest before it, and once
    both passes at a last time are done, the same events held. (A late arrival's windows may reach
    events a whole pass already forgot and a sliced one not yet: its features may differ.)"""
    rng = np.random.default_rng(seed)
    span = 3 * max(f.history_days for f in feature_set.features)
    txs = random_transactions(rng, 600, span, boundaries_of(feature_set))
    whole, sliced = OnlineState(feature_set), OnlineState(feature_set)
    whole_slice = online_state.TRIM_SLICE_ROWS

    def trim_both(now: int) -> None:
        whole.trim(now)
        monkeypatch.setattr(online_state, "TRIM_SLICE_ROWS", 1)  # a segment a call
        sliced.trim(now)
        monkeypatch.setattr(online_state, "TRIM_SLICE_ROWS", whole_slice)

    seq, calls_in_a_pass, now, checked = 0, 0, 0, 0
    for a in range(0, len(txs), 5):
        batch = TxColumns.of(txs[a : a + 5])
        seqs = np.arange(seq + 1, seq + 1 + len(batch), dtype=np.int64)
        seq += len(batch)
        on_time = batch.ts_us >= now  # a late arrival is older than the newest before it
        got, want = sliced.features(batch, seqs), whole.features(batch, seqs)
        assert_rows_equal(got[on_time], want[on_time], feature_set, where=a)
        checked += int(on_time.sum())
        if rng.random() < 0.3:
            ids, fraud = batch.tx_id[:2], np.array([1, 0])[: len(batch.tx_id[:2])]
            assert sliced.label(ids, fraud) == whole.label(ids, fraud)
        now = max(now, int(batch.ts_us.max()))
        trim_both(now)
        calls_in_a_pass += sliced.trimming
    assert calls_in_a_pass >= 5 and whole.held < len(txs) and checked > 400
    while sliced.trimming:  # the pass under way ends
        trim_both(now)
    last = now + max(sliced.history_us.values()) // 2  # and one more forgets the older half
    trim_both(last)
    while sliced.trimming:
        trim_both(last)
    assert 0 < sliced.held == whole.held < len(txs)


def test_a_bulk_load_then_arrivals_grow_and_repack_the_pools() -> None:
    """Thousands of events for one customer and one terminal (segments moving and the pools
    repacked many times), then arrivals: the same features as the reference."""
    rng = np.random.default_rng(4)
    stream = Stream(FRAUDFLOW, rng)
    t = 500 * US_PER_DAY
    bulk = [transaction(i, t + i * 60_000_000, 1, 2, float(i % 97)) for i in range(6000)]
    stream.add(bulk)
    arriving = [transaction(10**6 + i, t + 6000 * 60_000_000 + i, 1 + i % 2, 2, 3.0) for i in range(50)]
    stream.run(arriving)
    assert stream.state.held == 6050


def test_entities_gone_quiet_are_forgotten_too() -> None:
    """A hundred customers, then three: once their events are trimmed, their empty segments go (the
    pools repacked and the tables rebuilt), and the stream goes on exactly."""
    rng = np.random.default_rng(7)
    stream = Stream(EVERY_CASE, rng)
    early = [transaction(i, i * 60_000_000, i % 100, i % 150, 1.0 + i % 7) for i in range(1, 400)]
    stream.run(early)
    late = [transaction(10**6 + i, 20 * US_PER_DAY + i * 60_000_000, i % 3, i % 4, 2.0) for i in range(200)]
    stream.run(late[:100])
    stream.trim()
    assert stream.state.held == sum(tx.ts_us >= 20 * US_PER_DAY for _, tx in stream.model.held.values())
    assert stream.state._entities <= 4  # the segments of the entities gone quiet were dropped
    stream.run(late[100:])


def test_the_hash_table_finds_what_it_holds_after_deletions() -> None:
    """Keys crowding the same rows, inserted and deleted at random: every key held is found, no other."""
    rng = np.random.default_rng(8)
    table = np.full((64, 3), -1, dtype=np.int64)
    held: set[int] = set()
    keys = [int(k) for k in rng.choice(10_000, 3000)]
    for key in keys:
        if key in held and rng.random() < 0.6:
            _delete(table, key)
            held.remove(key)
        elif key not in held and len(held) < 32:
            row = _slot(table, key)
            table[row] = (key, 0, 0)
            held.add(key)
        found = {k for k in range(10_000) if table[_slot(table, k), 1] != -1} if key % 50 == 0 else held
        assert found == held


def test_an_empty_batch() -> None:
    state = OnlineState(FRAUDFLOW)
    assert state.features(TxColumns.of([]), np.array([], dtype=np.int64)).shape == (0, len(FRAUDFLOW.names))
    assert state.held == 0 and state.last_seq == -1


@pytest.mark.slow
def test_replaying_the_default_world_gives_the_offline_stores_features(default_lake: Path) -> None:
    """61 days (past the 30-day customer window, the 37-day terminal history and the 7-day label
    delay): the first 38 loaded as a service starts (``add``, labels known), the rest arriving in
    batches of 1 to 2,000 (the online forms and the compiled ones), each batch's labels fed back
    after it and the state trimmed, as the service does. Every row equals the batch engine's (the
    offline store's), and the days' golden fingerprints are the handbook's."""
    rng = np.random.default_rng(5)
    tx = days(read_lake_table(default_lake), range(61))
    cols = tx_columns(tx)
    fraud = tx["TX_FRAUD"].to_numpy().astype(np.int64)
    loaded = int(np.searchsorted(tx["TX_TIME_DAYS"].to_numpy(), 38))
    state = OnlineState(FRAUDFLOW)
    state.add(cols.slice(0, loaded), np.arange(loaded), fraud[:loaded])
    rows = [np.empty((0, len(FRAUDFLOW.names)))]
    at = loaded
    while at < len(cols):
        n = int(rng.choice([1, 7, 100, 2000]))
        batch = cols.slice(at, at + n)
        rows.append(state.features(batch, np.arange(at, at + len(batch))))
        frauds = np.flatnonzero(fraud[at : at + n])
        state.label(batch.tx_id[frauds], fraud[at : at + n][frauds])
        state.trim(int(batch.ts_us.max()))
        at += len(batch)
    got = np.concatenate(rows)
    expected = compute(tx, FRAUDFLOW).slice(loaded)
    want = np.column_stack([expected[n].to_numpy().astype(np.float64) for n in FRAUDFLOW.names])
    assert_rows_equal(got, want, FRAUDFLOW)
    streamed = tx.slice(loaded)
    table = pa.table(
        {"TRANSACTION_ID": streamed["TRANSACTION_ID"], **{n: got[:, j] for j, n in enumerate(FRAUDFLOW.names)}}
    )
    assert_golden(streamed, table.select(["TRANSACTION_ID", *HANDBOOK.names]), range(38, 61))


def test_columns_of_different_lengths_are_refused() -> None:
    state = OnlineState(FRAUDFLOW)
    cols = TxColumns.of([transaction(1, 0, 1, 1, 1.0), transaction(2, 0, 1, 1, 1.0)])
    with pytest.raises(ValueError, match="different lengths"):
        state.features(cols, np.array([0]))
    with pytest.raises(ValueError, match="different lengths"):
        state.add(cols, np.array([0, 1]), np.array([1]))
    with pytest.raises(ValueError, match="different lengths"):
        state.label(np.array([1, 2]), np.array([1]))
    assert state.held == 0


@pytest.fixture(scope="module")
def small_world(tmp_path_factory: pytest.TempPathFactory) -> pa.Table:
    """A generated world of 70 days: past FRAUDFLOW2's 44 days of history."""
    from fraudflow import WorldParams, generate

    root = tmp_path_factory.mktemp("world")
    generate(root, WorldParams(n_customers=300, n_terminals=400, nb_days=70, radius=10.0))
    return read_lake_table(root)


@pytest.mark.parametrize("fs", [FRAUDFLOW2, FRAUDFLOW3, FRAUDFLOW4], ids=lambda fs: fs.name)
def test_candidate_sets_by_every_engine_and_replayed_online(small_world: pa.Table, fs: FeatureSet) -> None:
    """FRAUDFLOW2 (windows over the amount's ratio to the customer's mean), FRAUDFLOW3 (and the
    terminal's known frauds' ages) and FRAUDFLOW4 (and the terminal's frauds the amount rules leave
    unexplained, over the customers' ratios, and its fraud share since the first) on a generated
    world: DuckDB equals the compiled engine; 45 days
    loaded as a service starts (``add``: each event's ratio as it arrived), the rest arriving in
    batches of 1 to 500 (online and compiled forms), labelled as they arrive, give its rows."""
    from tests.features.test_oracle import assert_features_equal

    tx = small_world
    expected = compute(tx, fs, "compiled")
    assert_features_equal(compute(tx, fs, "duckdb"), expected, fs.names)
    spikes = expected["CUSTOMER_ID_NB_TX_ABOVE_2X_AVG_14DAY_WINDOW"].to_numpy()
    assert 0 < (spikes > 0).mean() < 0.5
    if fs is FRAUDFLOW3:
        ages = expected["TERMINAL_ID_DAYS_SINCE_LAST_FRAUD_28DAY_WINDOW"].to_numpy()
        assert 0 < (ages < 35).mean() < 1 and ages.min() >= 7  # some terminals with a known fraud, not all
    if fs is FRAUDFLOW4:
        plain = expected["TERMINAL_ID_NB_FRAUD_28DAY_WINDOW"].to_numpy()
        unexplained = expected["TERMINAL_ID_NB_UNEXPLAINED_FRAUD_2X_28DAY_WINDOW"].to_numpy()
        assert (unexplained <= plain).all() and 0 < (unexplained < plain).mean() and (unexplained > 0).any()
        share = expected["TERMINAL_ID_FRAUD_SHARE_SINCE_FIRST_28DAY_WINDOW"].to_numpy()
        assert 0 < (share > 0).mean() < 1 and share.max() <= 1
    rng = np.random.default_rng(7)
    cols = tx_columns(tx)
    fraud = tx["TX_FRAUD"].to_numpy().astype(np.int64)
    loaded = int(np.searchsorted(tx["TX_TIME_DAYS"].to_numpy(), 45))
    state = OnlineState(fs)
    state.add(cols.slice(0, loaded), np.arange(loaded), fraud[:loaded])
    rows = [np.empty((0, len(fs.names)))]
    at = loaded
    while at < len(cols):
        batch = cols.slice(at, at + int(rng.choice([1, 3, 50, 500])))
        rows.append(state.features(batch, np.arange(at, at + len(batch))))
        frauds = np.flatnonzero(fraud[at : at + len(batch)])
        state.label(batch.tx_id[frauds], fraud[at : at + len(batch)][frauds])
        state.trim(int(batch.ts_us.max()))
        at += len(batch)
    want = expected.slice(loaded)
    assert_rows_equal(
        np.concatenate(rows), np.column_stack([want[n].to_numpy().astype(np.float64) for n in fs.names]), fs
    )


def test_a_window_over_the_other_entitys_value_holds_that_entitys_history_too() -> None:
    """FRAUDFLOW4's terminal windows over each transaction's customer ratio reach 65 days (35 of labels,
    the ratio's 30 before): both kinds' events are held that long, so a value can be computed for
    every event a window reads when a service loads its history."""
    state = OnlineState(FRAUDFLOW4)
    assert state.history_us == {kind: 65 * US_PER_DAY for kind in ENTITIES} and FRAUDFLOW4.history_days == 65


def test_fraudflow_2_random_streams_give_the_reference_features() -> None:
    rng = np.random.default_rng(11)
    stream = Stream(FRAUDFLOW2, rng)
    stream.run(random_transactions(rng, 300, 3 * FRAUDFLOW2.history_days, boundaries_of(FRAUDFLOW2)))
    assert stream.checked >= 150


def assert_same_bits(got: np.ndarray, want: np.ndarray, feature_set: FeatureSet, where: object = "") -> None:
    """Every value the same float64, bit for bit (the features are stored and feed the model)."""
    assert got.shape == want.shape, where
    bad = got.view(np.int64) != want.view(np.int64)
    for j in np.flatnonzero(bad.any(axis=0)):
        rows = np.flatnonzero(bad[:, j])[:5]
        raise AssertionError((where, feature_set.names[j], got[rows, j].tolist(), want[rows, j].tolist()))


def test_every_aggregation_has_a_step_in_the_kernel() -> None:
    """A few transactions are computed in the kernel call that holds them only when every feature's
    aggregation has its step there (``CODES``): a new aggregation without one would send every
    single transaction the batch route, about twice as slow."""
    assert set(CODES) == {a.name for a in AGGREGATIONS}
    assert OnlineState(EVERY_CASE)._program is not None


@pytest.mark.parametrize(
    "feature_set", [EVERY_CASE, FRAUDFLOW, FRAUDFLOW4], ids=["every-case", "fraudflow", "fraudflow-4"]
)
def test_a_few_transactions_at_a_time_give_the_batch_routes_features_bit_for_bit(feature_set: FeatureSet) -> None:
    """3,000 transactions of 3 customers and 4 terminals (the same entities again and again, within a
    batch too; ties, windows' edges, late arrivals) in batches of 1 to 8 (a tenth of them up to
    SMALL_BATCH - 1) through a state, each batch computed in the kernel call that holds it
    (``_rows_flat``), and the same calls through a twin that takes the batch route (the compiled
    forms over the batch's arrays, as from SMALL_BATCH transactions on) for every batch: the same
    bits for every feature. Between batches, as a service sees them: labels arriving for held
    transactions (set and reset), transactions caught up from other processes with their labels,
    resent transactions and duplicates within a batch, trims."""
    rng = np.random.default_rng(21)
    fast, reference = OnlineState(feature_set), OnlineState(feature_set)
    reference._program = None  # every batch by the batch route
    txs = random_transactions(rng, 3000, 3 * feature_set.history_days, boundaries_of(feature_set))
    both = (fast, reference)
    held: list[tuple[Transaction, int]] = []
    seq = at = checked = labelled = 0
    while at < len(txs):
        part = txs[at : at + int(rng.integers(1, 9) if rng.random() < 0.9 else rng.integers(9, SMALL_BATCH))]
        at += len(part)
        seqs = list(range(seq, seq + len(part)))
        seq += len(part)
        if rng.random() < 0.1:  # caught up from another process, some labels known
            fraud = (rng.random(len(part)) < 0.3).astype(np.float64)
            for state in both:
                state.add(TxColumns.of(part), np.array(seqs), fraud)
        else:
            if held and rng.random() < 0.2:  # one sent again (or recorded but never answered), with its seq
                old, old_seq = held[int(rng.integers(0, len(held)))]
                part, seqs = [*part, old][1 - SMALL_BATCH :], [*seqs, old_seq][1 - SMALL_BATCH :]
            if rng.random() < 0.1:  # the same transaction twice in one batch
                part, seqs = [*part, part[0]][1 - SMALL_BATCH :], [*seqs, seqs[0]][1 - SMALL_BATCH :]
            assert len(part) < SMALL_BATCH  # the kernel's rows, not the batch route
            cols = TxColumns.of(part)
            got, want = (state.features(cols, np.array(seqs)) for state in both)
            assert_same_bits(got, want, feature_set, [tx.transaction_id for tx in part])
            checked += len(part)
        held += zip(part, seqs, strict=True)
        if rng.random() < 0.4:  # labels of transactions held (most a while ago), frauds and not
            picked = [held[int(i)][0].transaction_id for i in rng.integers(0, len(held), 4)]
            fraud = (rng.random(len(picked)) < 0.5).astype(np.float64)
            labelled += sum(state.label(np.array(picked), fraud) for state in both) // 2
        if rng.random() < 0.05:
            for state in both:
                state.trim(max(tx.ts_us for tx in part))
        assert fast.held == reference.held and fast.last_seq == reference.last_seq
    assert checked > 2500 and labelled > 500
