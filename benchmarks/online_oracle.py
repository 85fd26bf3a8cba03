"""Benchmark: replay all 183 days of the handbook through the online path, check every feature.

    .venv/bin/python -m benchmarks.online_oracle [--handbook ../shared/handbook]

Each transaction in TRANSACTION_ID order through ``Scorer.features`` (memory store), each fraud
label fed back right after it; the result is compared with the handbook's ``features.parquet``
(integers exactly, floats within 1e-9; the 20 rows the spec documents are counted apart).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from benchmarks._measure import machine, table

PAIRS = (
    121453,
    121454,
    163831,
    163832,
    174806,
    174807,
    619758,
    619759,
    1240489,
    1240490,
    1350833,
    1350834,
    1472490,
    1472491,
    1553976,
    1553977,
    1633924,
    1633926,
    1653669,
    1653670,
)


def main() -> None:
    from fraudflow.features import DEFAULT
    from fraudflow.features.online import Transaction
    from fraudflow.serving.engine import Scorer
    from fraudflow.store.online import MemoryStore

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--handbook", default="../shared/handbook")
    args = ap.parse_args()
    tx = pq.read_table(Path(args.handbook) / "transactions.parquet")
    oracle = pq.read_table(Path(args.handbook) / "features.parquet")
    cols = [tx[c].to_pylist() for c in ("TRANSACTION_ID", "TX_DATETIME", "CUSTOMER_ID", "TERMINAL_ID", "TX_AMOUNT")]
    frauds = tx["TX_FRAUD"].to_pylist()
    scorer = Scorer(MemoryStore(), DEFAULT)
    names = DEFAULT.names[1:]
    got = np.empty((tx.num_rows, len(names)))
    t0 = time.perf_counter()
    for i, (values, fraud) in enumerate(zip(zip(*cols, strict=True), frauds, strict=True)):
        features = scorer.features(Transaction(*values)).features
        got[i] = [features[n] for n in names]
        if fraud:
            scorer.store.add_labels({values[0]: 1})
    seconds = time.perf_counter() - t0
    expected = np.column_stack([oracle[n].to_numpy() for n in names])
    bad = ~np.isclose(got, expected, rtol=1e-9, atol=1e-9)
    documented = np.isin(np.array(cols[0]), PAIRS)
    print(f"machine: {machine()}\n")
    print(
        table(
            ["what", "value"],
            [
                ["transactions replayed", f"{tx.num_rows:,}"],
                ["seconds (one thread)", f"{seconds:.1f}"],
                ["transactions/s", f"{tx.num_rows / seconds:,.0f}"],
                [
                    "rows differing from the oracle, outside the 20 documented",
                    f"{int(bad[~documented].any(axis=1).sum())}",
                ],
                [
                    "documented rows differing (customer features only, as the spec says)",
                    f"{int(bad[documented].any(axis=1).sum())} of {int(documented.sum())}",
                ],
            ],
        )
    )


if __name__ == "__main__":
    sys.exit(main())
