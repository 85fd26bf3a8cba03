"""Benchmark: the compiled online state's speed by feature set (FRAUDFLOW, 16 inputs; FRAUDFLOW2, 26,
ten of them windows over a derived value; FRAUDFLOW3, 30; FRAUDFLOW4, 36), on the handbook's
published transactions.

    .venv/bin/python -m benchmarks.online_feature_sets [--transactions ../shared/handbook/transactions.parquet]

The state holds the days before the last 7 (``OnlineState.add``: for FRAUDFLOW2 each event's ratio
to its customer's mean is computed as it is held); the last 7 days arrive in time order, in batches
of 1,000 (each batch's labels fed back and the state trimmed, as the service does) and then, on a
fresh state, the first 20,000 one per call. Wall and CPU time of this process; the machine is
shared, so its load average is printed. Every batch-of-1 row is checked against the batched one.
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import pyarrow.parquet as pq

from benchmarks._measure import machine, table
from benchmarks.online_state import BATCH, Timer, _columns

SINGLE = 20_000
ARRIVING_DAYS = 7


def main() -> None:
    from fraudflow.features.definitions import FRAUDFLOW, FRAUDFLOW2, FRAUDFLOW3, FRAUDFLOW4
    from fraudflow.features.online_state import OnlineState

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--transactions", default="../shared/handbook/transactions.parquet")
    args = ap.parse_args()
    tx = pq.read_table(args.transactions).sort_by([("TX_DATETIME", "ascending"), ("TRANSACTION_ID", "ascending")])
    days = tx["TX_TIME_DAYS"].to_numpy()
    first_new = int(np.searchsorted(days, days.max() - ARRIVING_DAYS + 1))
    cols, fraud = _columns(tx), tx["TX_FRAUD"].to_numpy().astype(np.float64)
    held, new = cols.slice(0, first_new), cols.slice(first_new, len(cols))
    n_held, n_new = first_new, len(cols) - first_new
    seqs = np.arange(n_held, n_held + n_new, dtype=np.int64)
    rows = []
    load_before = os.getloadavg()
    for fs in (FRAUDFLOW, FRAUDFLOW2, FRAUDFLOW3, FRAUDFLOW4):
        warm = OnlineState(fs)  # numba's cache loaded
        warm.add(held.slice(n_held - 5000, n_held), np.arange(5000), fraud[n_held - 5000 : n_held])
        warm.features(new.slice(0, BATCH), seqs[:BATCH])
        warm.features(new.slice(0, 1), seqs[:1])
        load, batched_t, single = Timer(), Timer(), Timer()
        state = OnlineState(fs)
        with load:
            state.add(held, np.arange(n_held, dtype=np.int64), fraud[:n_held])
        batched = np.empty((n_new, len(fs.names)))
        for a in range(0, n_new, BATCH):
            b = min(a + BATCH, n_new)
            with batched_t:
                batched[a:b] = state.features(new.slice(a, b), seqs[a:b])
            frauds = np.flatnonzero(fraud[first_new + a : first_new + b])
            state.label(new.tx_id[a:b][frauds], fraud[first_new + a : first_new + b][frauds])
            state.trim(int(new.ts_us[b - 1]))
        state = OnlineState(fs)
        state.add(held, np.arange(n_held, dtype=np.int64), fraud[:n_held])
        ones = []
        for i in range(min(SINGLE, n_new)):
            with single:
                ones.append(state.features(new.slice(i, i + 1), seqs[i : i + 1]))
        assert np.allclose(np.concatenate(ones), batched[: len(ones)], rtol=1e-12, atol=0)
        name = f"{fs.name} ({len(fs.names)})"
        rows += [
            load.row(f"{name}: add {n_held:,} events", n_held),
            batched_t.row(f"{name}: features, batches of {BATCH:,}", n_new),
            single.row(f"{name}: features, batches of 1", len(ones), per_call=True),
        ]
    print(f"Machine: {machine()}")
    print(f"Load average (1, 5, 15 min): before {load_before}, after {os.getloadavg()}")
    headers = ["what", "transactions", "wall µs/tx", "CPU µs/tx", "tx/s (wall)", "per call p50 / p99 µs"]
    print(table(headers, rows))


if __name__ == "__main__":
    main()
