"""Benchmark: the compiled online state (``features.online_state``) against the Python online path.

    .venv/bin/python -m benchmarks.online_state [--days 7] [--single 20000] [--reference 5000]

Setup: the default world (183 days) and its next ``--days`` (the simulator's continuation,
generated aside), the FRAUDFLOW feature set (16 features). The state holds the world's last 38 days
(the longest window, 37 days, and the day before), with their labels, under seqs 0, 1, ...; the
arriving transactions are the next days in time order, each with the next seq. Timed, in process:

- ``OnlineState.features`` on batches of 1,000 (holding them included), then each batch's labels
  fed back (``label``) and ``trim`` at its last time, as the service does per batch;
- ``OnlineState.features`` on batches of 1 (per call), the first ``--single`` arrivals;
- today's path on the first ``--reference`` arrivals: per transaction the entities' events read from
  a ``MemoryStore`` holding the same days, ``OnlineFeatures.compute``, and the commit; the three
  timed apart.

Every OnlineState row is checked against the reference's on the arrivals both computed. The load
average is printed before and after: the machine is shared.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

import numpy as np

from benchmarks._measure import machine, table

LOADED_DAYS = 38
BATCH = 1000


def _worlds(root: str, days: int) -> None:
    from fraudflow import WorldParams, generate

    generate(root, WorldParams())
    generate(f"{root}-next", WorldParams(nb_days=183 + days), from_day=183)


def _read(root: str, last: int | None = None):  # type: ignore[no-untyped-def]
    """The transactions of a lake (its ``last`` days), in (time, id) order."""
    from fraudflow import schema
    from fraudflow.lake import Lake

    lake = Lake(root)
    days = lake.partitions("transactions")
    t = lake.read_partitions("transactions", days[-last:] if last else days)
    return t.take(np.lexsort((t[schema.TRANSACTION_ID].to_numpy(), schema.timestamps_us(t[schema.TX_DATETIME]))))


def _columns(t):  # type: ignore[no-untyped-def]
    from fraudflow import schema
    from fraudflow.features.online_state import TxColumns

    return TxColumns(
        schema.timestamps_us(t[schema.TX_DATETIME]).astype(np.int64),
        t[schema.TRANSACTION_ID].to_numpy().astype(np.int64),
        t[schema.CUSTOMER_ID].to_numpy().astype(np.int64),
        t[schema.TERMINAL_ID].to_numpy().astype(np.int64),
        t[schema.TX_AMOUNT].to_numpy().astype(np.float64),
    )


def _take(cols, a: int, b: int):  # type: ignore[no-untyped-def]
    from fraudflow.features.online_state import TxColumns

    return TxColumns(cols.ts_us[a:b], cols.tx_id[a:b], cols.customer[a:b], cols.terminal[a:b], cols.amount[a:b])


def run(root: str, n_single: int, n_reference: int) -> None:
    from fraudflow.features.definitions import FRAUDFLOW
    from fraudflow.features.online import OnlineFeatures
    from fraudflow.features.online_state import OnlineState
    from fraudflow.records import ENTITIES, Transaction
    from fraudflow.store.online.memory import MemoryStore

    history = _read(root, LOADED_DAYS)
    arriving = _read(f"{root}-next")
    held, new = _columns(history), _columns(arriving)
    held_fraud = history["TX_FRAUD"].to_numpy().astype(np.float64)
    new_fraud = arriving["TX_FRAUD"].to_numpy().astype(np.float64)
    n_held, n_new = len(held), len(new)
    seqs = np.arange(n_held, n_held + n_new, dtype=np.int64)

    def loaded() -> tuple[OnlineState, float]:
        state = OnlineState(FRAUDFLOW)
        t0 = time.perf_counter()
        state.add(held, np.arange(n_held, dtype=np.int64), held_fraud)
        return state, time.perf_counter() - t0

    warm, _ = loaded()  # numba's cache loaded, pages touched
    warm.features(_take(new, 0, BATCH), seqs[:BATCH])

    load_before = os.getloadavg()
    state, load_seconds = loaded()
    batched = np.empty((n_new, len(FRAUDFLOW.features)))
    t_features = t_rest = 0.0
    for a in range(0, n_new, BATCH):
        b = min(a + BATCH, n_new)
        batch = _take(new, a, b)
        t0 = time.perf_counter()
        batched[a:b] = state.features(batch, seqs[a:b])
        t1 = time.perf_counter()
        frauds = np.flatnonzero(new_fraud[a:b])
        state.label(batch.tx_id[frauds], new_fraud[a:b][frauds])
        state.trim(int(batch.ts_us.max()))
        t_rest += time.perf_counter() - t1
        t_features += t1 - t0

    state, _ = loaded()
    singles = min(n_single, n_new)
    t_single = 0.0
    for i in range(singles):
        one = _take(new, i, i + 1)
        t0 = time.perf_counter()
        row = state.features(one, seqs[i : i + 1])
        t_single += time.perf_counter() - t0
        if new_fraud[i]:
            state.label(one.tx_id, new_fraud[i : i + 1])
        assert np.array_equal(row[0], batched[i], equal_nan=True) or np.allclose(row[0], batched[i], rtol=1e-12)

    store, online = MemoryStore(), OnlineFeatures(FRAUDFLOW)
    rows = zip(
        held.ts_us.tolist(),
        held.tx_id.tolist(),
        held.customer.tolist(),
        held.terminal.tolist(),
        held.amount.tolist(),
        strict=True,
    )
    store.load(rows, {int(i): 1 for i in held.tx_id[held_fraud == 1]})
    keep = online.history_us
    txs = [
        Transaction(int(i), dt, int(c), int(m), float(x))
        for i, dt, c, m, x in zip(
            new.tx_id[:n_reference],
            arriving["TX_DATETIME"].to_pylist()[:n_reference],
            new.customer[:n_reference],
            new.terminal[:n_reference],
            new.amount[:n_reference],
            strict=True,
        )
    ]
    t_reads = t_compute = t_commit = 0.0
    worst = 0.0
    for i, tx in enumerate(txs):
        t0 = time.perf_counter()
        events = {kind: store.events(kind, tx.entity(kind), tx.ts_us - keep[kind]) for kind in ENTITIES}
        t1 = time.perf_counter()
        values = online.compute(tx, events)
        t2 = time.perf_counter()
        store.commit(tx, "", keep)
        if new_fraud[i]:
            store.add_labels({tx.transaction_id: 1})
        t_commit += time.perf_counter() - t2
        t_reads += t1 - t0
        t_compute += t2 - t1
        want = np.array([values[n] for n in FRAUDFLOW.names])
        worst = max(worst, float(np.max(np.abs(batched[i] - want) / np.maximum(np.abs(want), 1e-300))))
        assert np.allclose(batched[i], want, rtol=1e-12, atol=0), (tx, batched[i], want)
    load_after = os.getloadavg()

    def us(seconds: float, n: int) -> str:
        return f"{seconds / n * 1e6:.2f}"

    def per_s(seconds: float, n: int) -> str:
        return f"{n / seconds:,.0f}"

    print(f"Machine: {machine()}")
    print(f"Load average (1, 5, 15 min): before {load_before}, after {load_after}")
    print(
        f"State: {n_held:,} events ({LOADED_DAYS} days) loaded by OnlineState.add in {load_seconds:.3f} s; "
        f"{n_new:,} arriving transactions"
    )
    print(
        table(
            ["what", "transactions", "µs per transaction", "transactions/s"],
            [
                [
                    "OnlineState.features, batches of 1,000",
                    f"{n_new:,}",
                    us(t_features, n_new),
                    per_s(t_features, n_new),
                ],
                ["  then label + trim per batch", f"{n_new:,}", us(t_rest, n_new), per_s(t_rest, n_new)],
                [
                    "OnlineState.features, batches of 1 (per call)",
                    f"{singles:,}",
                    us(t_single, singles),
                    per_s(t_single, singles),
                ],
                ["today: MemoryStore.events reads", f"{len(txs):,}", us(t_reads, len(txs)), ""],
                ["today: OnlineFeatures.compute", f"{len(txs):,}", us(t_compute, len(txs)), per_s(t_compute, len(txs))],
                ["today: MemoryStore.commit", f"{len(txs):,}", us(t_commit, len(txs)), ""],
            ],
        )
    )
    print(
        f"Checked: the first {len(txs):,} rows equal OnlineFeatures.compute's (largest relative difference {worst:.1e})"
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
