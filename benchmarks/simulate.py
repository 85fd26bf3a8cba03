"""Benchmark: the default world (the handbook's) generated and written, against the plain way.

    .venv/bin/python -m benchmarks.simulate            # fraudflow (warm JIT cache) + plain pandas
    .venv/bin/python -m benchmarks.simulate --large    # also 1,000,000 customers x 200,000 terminals x 60 days

Each case runs in a fresh process so peak RSS is its own. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._measure import machine, peak_rss_mb, run_case, table, throughput_row

LARGE = dict(n_customers=1_000_000, n_terminals=200_000, nb_days=60)


def case_fraudflow(large: bool, repeats: int) -> dict[str, float]:
    from fraudflow import WorldParams, generate

    params = WorldParams(**LARGE) if large else WorldParams()
    times, rows = [], 0
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            summary = generate(tmp, params)
            times.append(summary.seconds)
            rows = summary.rows
    best = sorted(times)[len(times) // 2]
    return {"seconds": best, "rows": rows, "rows_per_s": rows / best, "peak_rss_mb": peak_rss_mb()}


def case_cli() -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        subprocess.run(
            [str(Path(sys.executable).parent / "fraudflow"), "generate", "--out", tmp, "--json"],
            check=True,
            capture_output=True,
        )
        return {"seconds": time.perf_counter() - t0}


def case_plain() -> dict[str, float]:
    from benchmarks.plain_simulator import plain_generate

    t0 = time.perf_counter()
    df = plain_generate()
    with tempfile.TemporaryDirectory() as tmp:
        df.to_parquet(f"{tmp}/transactions.parquet")
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "rows": len(df), "rows_per_s": len(df) / seconds, "peak_rss_mb": peak_rss_mb()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--large", action="store_true", help="also run the 120-million-row world")
    ap.add_argument("--skip-plain", action="store_true", help="skip the slow plain-pandas baseline")
    args = ap.parse_args()
    if args.case:
        result = {
            "fraudflow": lambda: case_fraudflow(False, 3),
            "large": lambda: case_fraudflow(True, 1),
            "cli": case_cli,
            "plain": case_plain,
        }[args.case]()
        print(json.dumps(result))
        return
    run_case("simulate", "fraudflow")  # warms numba's on-disk cache
    rows = []
    r = run_case("simulate", "fraudflow")
    rows.append(
        throughput_row(
            "fraudflow `generate()`, default world (median of 3, warm JIT cache)",
            r["rows"],
            r["seconds"],
            r["peak_rss_mb"],
            digits=2,
        )
    )
    c = run_case("simulate", "cli")
    rows.append(
        throughput_row(
            "`fraudflow generate` CLI, default world, new process (imports included)",
            r["rows"],
            c["seconds"],
            None,
            digits=2,
        )
    )
    if not args.skip_plain:
        p = run_case("simulate", "plain")
        rows.append(
            throughput_row(
                "plain Python + pandas from the spec (benchmarks/plain_simulator.py)",
                p["rows"],
                p["seconds"],
                p["peak_rss_mb"],
                digits=1,
            )
        )
        rows.append(["speed-up, fraudflow over plain", "", f"{p['seconds'] / r['seconds']:.0f}x", "", ""])
    if args.large:
        g = run_case("simulate", "large")
        rows.append(
            throughput_row(
                "fraudflow, 1,000,000 customers x 200,000 terminals x 60 days",
                g["rows"],
                g["seconds"],
                g["peak_rss_mb"],
                digits=0,
            )
        )
    print(f"machine: {machine()}\n")
    print(table(["what", "rows", "seconds", "rows/s", "peak RSS MB"], rows))


if __name__ == "__main__":
    sys.exit(main())
