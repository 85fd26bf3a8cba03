"""Benchmark: the compiled online state (``features.online_state``) against the Python online path.

    .venv/bin/python -m benchmarks.online_state [--days 7] [--single 20000] [--reference 5000]

Setup: the default world (183 days) and its next ``--days`` (the simulator's continuation,
generated aside), the FRAUDFLOW feature set (16 features: the workload docs/BENCHMARKS.md's figures
compare on, not the default model's fraudflow-4, which benchmarks/online_feature_sets.py measures
beside it). The state holds the world's last 38 days
(the longest window, 37 days, and the day before), with their labels, under seqs 0, 1, ...; the
arriving transactions are the next days in time order, each with the next seq. Timed, in process:

- ``OnlineState.features`` on batches of 1,000 (holding them included), then each batch's labels
  fed back (``label``) and ``trim`` at its last time, as the service does per batch;
- ``OnlineState.features`` on batches of 1 (per call), the first ``--single`` arrivals;
- the per-transaction Python path the service had before, on the first ``--reference`` arrivals:
  per transaction the entities' events read from Python lists holding the same days,
  ``OnlineFeatures.compute``, and the transaction added to the lists; the three timed apart.

Each is timed in wall and CPU time (this process's: the machine is shared, and its load average is
printed before and after); per call, the wall time's median and 99th percentile (two clock reads
included). Every batch-of-1 row is checked against the batched one, and both against the
reference's on the arrivals it computed (integers exactly, floats within 1e-12 relative).
"""

from __future__ import annotations

import argparse
import bisect
import math
import os
import shutil
import tempfile
import time
from typing import TYPE_CHECKING

import numpy as np

from benchmarks._measure import machine, table

if TYPE_CHECKING:
    import pyarrow as pa

    from fraudflow.records import TxColumns

LOADED_DAYS = 38
BATCH = 1000


def _worlds(root: str, days: int) -> None:
    from fraudflow import WorldParams, generate

    generate(root, WorldParams())
    generate(f"{root}-next", WorldParams(nb_days=183 + days), from_day=183)


def _read(root: str, last: int | None = None) -> pa.Table:
    """The transactions of a lake (its ``last`` days), in (time, id) order."""
    from fraudflow import schema
    from fraudflow.lake import Lake

    lake = Lake(root)
    days = lake.partitions("transactions")
    t = lake.read_partitions("transactions", days[-last:] if last else days)
    return t.take(np.lexsort((t[schema.TRANSACTION_ID].to_numpy(), schema.timestamps_us(t[schema.TX_DATETIME]))))


def _columns(t: pa.Table) -> TxColumns:
    from fraudflow import schema
    from fraudflow.records import TxColumns

    return TxColumns(
        schema.timestamps_us(t[schema.TX_DATETIME]).astype(np.int64),
        t[schema.TRANSACTION_ID].to_numpy().astype(np.int64),
        t[schema.CUSTOMER_ID].to_numpy().astype(np.int64),
        t[schema.TERMINAL_ID].to_numpy().astype(np.int64),
        t[schema.TX_AMOUNT].to_numpy().astype(np.float64),
    )


class Timer:
    """The wall and CPU time of the calls timed with it (``with timer:``), each call's wall time kept."""

    def __init__(self) -> None:
        self.calls: list[float] = []
        self.cpu = 0.0

    def __enter__(self) -> None:
        self._wall, self._cpu = time.perf_counter(), time.process_time()

    def __exit__(self, *exc: object) -> None:
        self.cpu += time.process_time() - self._cpu
        self.calls.append(time.perf_counter() - self._wall)

    def row(self, what: str, transactions: int, per_call: bool = False) -> list[str]:
        """A table row: what, transactions, wall and CPU µs per transaction, transactions/s (wall),
        and the calls' median and 99th percentile (µs) when ``per_call``."""
        wall = sum(self.calls)
        p50, p99 = (np.percentile(self.calls, [50, 99]) * 1e6).tolist() if per_call else ("", "")
        return [
            what,
            f"{transactions:,}",
            f"{wall / transactions * 1e6:.2f}",
            f"{self.cpu / transactions * 1e6:.2f}",
            f"{transactions / wall:,.0f}",
            f"{p50:.1f} / {p99:.1f}" if per_call else "",
        ]


def run(root: str, n_single: int, n_reference: int) -> None:
    from fraudflow.features.definitions import FRAUDFLOW
    from fraudflow.features.online import OnlineFeatures
    from fraudflow.features.online_state import OnlineState
    from fraudflow.records import CUSTOMER, ENTITIES, TERMINAL, Events, Transaction

    history = _read(root, LOADED_DAYS)
    arriving = _read(f"{root}-next")
    held, new = _columns(history), _columns(arriving)
    held_fraud = history["TX_FRAUD"].to_numpy().astype(np.float64)
    new_fraud = arriving["TX_FRAUD"].to_numpy().astype(np.float64)
    n_held, n_new = len(held), len(new)
    seqs = np.arange(n_held, n_held + n_new, dtype=np.int64)

    def loaded(timer: Timer | None = None) -> OnlineState:
        state = OnlineState(FRAUDFLOW)
        with timer or Timer():
            state.add(held, np.arange(n_held, dtype=np.int64), held_fraud)
        return state

    warm = loaded()  # numba's cache loaded, pages touched
    warm.features(new.slice(0, BATCH), seqs[:BATCH])
    warm.features(new.slice(BATCH, BATCH + 1), seqs[BATCH : BATCH + 1])

    load_before = os.getloadavg()
    load = Timer()
    state = loaded(load)
    batched = np.empty((n_new, len(FRAUDFLOW.features)))
    features, upkeep = Timer(), Timer()
    for a in range(0, n_new, BATCH):
        b = min(a + BATCH, n_new)
        batch = new.slice(a, b)
        with features:
            batched[a:b] = state.features(batch, seqs[a:b])
        frauds = np.flatnonzero(new_fraud[a:b])
        with upkeep:
            state.label(batch.tx_id[frauds], new_fraud[a:b][frauds])
            state.trim(int(batch.ts_us.max()))

    state = loaded()
    singles = min(n_single, n_new)
    ones = [new.slice(i, i + 1) for i in range(singles)]
    single = Timer()
    rows_of_one = []
    for i, one in enumerate(ones):
        with single:
            rows_of_one.append(state.features(one, seqs[i : i + 1]))
        if new_fraud[i]:
            state.label(one.tx_id, new_fraud[i : i + 1])
    assert np.allclose(np.concatenate(rows_of_one), batched[:singles], rtol=1e-12, atol=0)

    online = OnlineFeatures(FRAUDFLOW)
    keep = online.history_us
    # the per-transaction path: each entity's events (time, id, amount) in a Python list, in (time, id) order
    lists: dict[tuple[str, int], list[tuple[int, int, float]]] = {}
    labels = {int(i): 1 for i in held.tx_id[held_fraud == 1]}

    def hold(ts: int, tx_id: int, customer: int, terminal: int, amount: float) -> None:
        for kind, entity in ((CUSTOMER, customer), (TERMINAL, terminal)):
            events = lists.setdefault((kind, entity), [])
            bisect.insort(events, (ts, tx_id, amount))
            del events[: bisect.bisect_right(events, (ts - keep[kind], math.inf))]

    def read(kind: str, entity: int, since_us: int) -> Events:
        events = lists.get((kind, entity), [])
        rows = events[bisect.bisect_right(events, (since_us, math.inf)) :]
        return Events([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], labels=labels)

    columns = (held.ts_us, held.tx_id, held.customer, held.terminal, held.amount)
    for row in zip(*(c.tolist() for c in columns), strict=True):
        hold(*row)
    when = arriving["TX_DATETIME"].to_pylist()
    txs = [
        Transaction(int(new.tx_id[i]), when[i], int(new.customer[i]), int(new.terminal[i]), float(new.amount[i]))
        for i in range(min(n_reference, n_new))
    ]
    reads, compute, commit = Timer(), Timer(), Timer()
    reference = []
    for i, tx in enumerate(txs):
        with reads:
            events = {kind: read(kind, tx.entity(kind), tx.ts_us - keep[kind]) for kind in ENTITIES}
        with compute:
            values = online.compute(tx, events)
        with commit:
            hold(tx.ts_us, tx.transaction_id, tx.customer_id, tx.terminal_id, tx.amount)
            if new_fraud[i]:
                labels[tx.transaction_id] = 1
        reference.append([values[n] for n in FRAUDFLOW.names])
    want, got = np.array(reference), batched[: len(txs)]
    assert np.allclose(got, want, rtol=1e-12, atol=0)
    worst = float(np.max(np.abs(got - want) / np.maximum(np.abs(want), 1e-300)))
    load_after = os.getloadavg()

    print(f"Machine: {machine()}")
    print(f"Load average (1, 5, 15 min): before {load_before}, after {load_after}")
    print(
        f"State: {n_held:,} events ({LOADED_DAYS} days) loaded by OnlineState.add in {sum(load.calls):.3f} s; "
        f"{n_new:,} arriving transactions"
    )
    headers = ["what", "transactions", "wall µs/tx", "CPU µs/tx", "tx/s (wall)", "per call p50 / p99 µs"]
    print(
        table(
            headers,
            [
                features.row(f"OnlineState.features, batches of {BATCH:,}", n_new),
                upkeep.row("  then label + trim, per batch", n_new),
                single.row("OnlineState.features, batches of 1", singles, per_call=True),
                reads.row("per transaction: entity event reads", len(txs), per_call=True),
                compute.row("per transaction: OnlineFeatures.compute", len(txs), per_call=True),
                commit.row("per transaction: events held (+ labels)", len(txs), per_call=True),
            ],
        )
    )
    print(
        f"Checked: every batch-of-1 row equals the batched one, and the first {len(txs):,} equal "
        f"OnlineFeatures.compute's (largest relative difference {worst:.1e})"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--days", type=int, default=7, help="arriving days (default 7)")
    ap.add_argument("--single", type=int, default=20_000, help="arrivals scored one per call (default 20,000)")
    ap.add_argument("--reference", type=int, default=5_000, help="arrivals through today's path (default 5,000)")
    ap.add_argument("--root", help="an existing folder with the worlds (ROOT and ROOT-next); default: generated aside")
    args = ap.parse_args()
    root = args.root
    tmp = None
    if root is None:
        tmp = tempfile.mkdtemp(prefix="ff-online-state-")
        root = f"{tmp}/world"
        _worlds(root, args.days)
    try:
        run(root, args.single, args.reference)
    finally:
        if tmp:
            shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
