"""Benchmark: the 15 handbook features of the default dataset, computed and written.

    .venv/bin/python -m benchmarks.features

Cases, each in a fresh process: fraudflow's compiled engine (median of 5 after a warm-up),
fraudflow's DuckDB SQL engine (median of 3), incremental (the last day only), scaling (1x, 2x,
4x rows, by concatenating shifted copies of the default world), and plain pandas rolling windows.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time

from benchmarks._measure import machine, peak_rss_mb, run_case, table, throughput_row


def _lake(copies: int = 1) -> str:
    """A lake with the default world, or ``copies`` of it side by side (more customers)."""
    import numpy as np
    import pyarrow.compute as pc

    from fraudflow import Lake, generate

    root = tempfile.mkdtemp(prefix="ff-bench-")
    generate(root)
    if copies > 1:
        lake = Lake(root)
        for day in lake.partitions("transactions"):
            t = lake.read_partitions("transactions", [day])
            parts = [t]
            for k in range(1, copies):
                c = t.set_column(0, "TRANSACTION_ID", pc.add(t["TRANSACTION_ID"], k * 10_000_000))
                c = c.set_column(2, "CUSTOMER_ID", pc.add(t["CUSTOMER_ID"], k * 5000))
                parts.append(c.set_column(3, "TERMINAL_ID", pc.add(t["TERMINAL_ID"], k * 10000)).cast(t.schema))
            import pyarrow as pa

            merged = pa.concat_tables(parts)
            order = np.lexsort((merged["TRANSACTION_ID"].to_numpy(), merged["TX_DATETIME"].to_numpy()))
            lake.write_partition("transactions", day, merged.take(order))
    return root


def case_engine(engine: str, repeats: int, copies: int = 1) -> dict[str, float]:
    from fraudflow.features import build_features

    root = _lake(copies)
    try:
        build_features(root, engine=engine)  # warm-up: numba cache load, file cache
        times = [build_features(root, engine=engine).seconds for _ in range(repeats)]
        rows = build_features(root, engine=engine).rows
    finally:
        shutil.rmtree(root)
    return {"seconds": statistics.median(times), "rows": rows, "peak_rss_mb": peak_rss_mb()}


def case_incremental() -> dict[str, float]:
    from fraudflow import Lake
    from fraudflow.features import build_features

    root = _lake()
    try:
        build_features(root)
        last = Lake(root).partitions("transactions")[-1]
        times = [build_features(root, from_date=last).seconds for _ in range(5)]
        rows = build_features(root, from_date=last).rows
    finally:
        shutil.rmtree(root)
    return {"seconds": statistics.median(times), "rows": rows}


def case_plain() -> dict[str, float]:
    import pandas as pd

    from benchmarks.plain_features import plain_features

    root = _lake()
    try:
        tx = pd.read_parquet(f"{root}/transactions")
        t0 = time.perf_counter()
        feats = plain_features(tx)
        feats.to_parquet(f"{root}/plain.parquet")
        seconds = time.perf_counter() - t0
    finally:
        shutil.rmtree(root)
    return {"seconds": seconds, "rows": len(feats), "peak_rss_mb": peak_rss_mb()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--copies", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--skip-plain", action="store_true", help="skip the slow pandas baseline")
    args = ap.parse_args()
    if args.case:
        cases = {
            "compiled": lambda: case_engine("compiled", 5, args.copies),
            "duckdb": lambda: case_engine("duckdb", 3),
            "incremental": case_incremental,
            "plain": case_plain,
        }
        print(json.dumps(cases[args.case]()))
        return
    rows = []
    for copies in (1, 2, 4):
        r = run_case("features", "compiled", "--copies", str(copies))
        rows.append(
            throughput_row(
                f"fraudflow compiled engine, {copies}x the default rows (median of 5)",
                r["rows"],
                r["seconds"],
                r["peak_rss_mb"],
                digits=2,
            )
        )
    d = run_case("features", "duckdb")
    rows.append(
        throughput_row("fraudflow DuckDB SQL engine (median of 3)", d["rows"], d["seconds"], d["peak_rss_mb"], digits=2)
    )
    i = run_case("features", "incremental")
    rows.append(
        throughput_row(
            "fraudflow incremental: the last day only (37 days of history read)",
            i["rows"],
            i["seconds"],
            None,
            digits=2,
        )
    )
    if not args.skip_plain:
        p = run_case("features", "plain")
        rows.append(
            throughput_row(
                "plain pandas rolling windows (benchmarks/plain_features.py)",
                p["rows"],
                p["seconds"],
                p["peak_rss_mb"],
                digits=1,
            )
        )
    print(f"machine: {machine()}\n")
    print(table(["what", "rows", "seconds", "rows/s", "peak RSS MB"], rows))


if __name__ == "__main__":
    sys.exit(main())
