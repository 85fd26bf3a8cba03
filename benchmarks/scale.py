"""Benchmark: simulate + features at 1x, 4x and 16x the default world, local and Spark engines.

    .venv/bin/python -m benchmarks.scale [--scales 1 4 16] [--engines local spark]

A k-times world is the default one k times over: k x 5,000 customers and k x 10,000 terminals on
the same square, the radius divided by sqrt(k), 183 days. Each customer still has about 78
terminals within reach and each terminal as many transactions a day, so the rows grow k-fold and
the windows (rows per customer and per terminal) stay the same size, as in a bigger bank.

Each step (simulate, then features: the handbook's 15, all days) runs in a fresh process; the peak
resident memory is that of the whole process tree, sampled every 0.2 s (for Spark: the driver JVM
and its Python workers). Spark runs ``local[*]`` (every core of this machine); its session start
is timed apart and not counted in the steps. Figures go to docs/BENCHMARKS.md and docs/SCALING.md.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import tempfile
import time

from benchmarks._measure import machine, run_case_tree, table
from fraudflow.simulate.world import WorldParams

FEATURE_ENGINE = {"local": "compiled", "spark": "spark"}


def _session(engine: str) -> float:
    if engine != "spark":
        return 0.0
    from fraudflow.distributed.session import spark_session

    t0 = time.perf_counter()
    spark_session().range(1).count()  # the JVM and one Python worker are up
    return time.perf_counter() - t0


def world(scale: int) -> WorldParams:
    d = WorldParams()
    return WorldParams(
        n_customers=d.n_customers * scale, n_terminals=d.n_terminals * scale, radius=d.radius / math.sqrt(scale)
    )


def case_simulate(engine: str, scale: int, root: str) -> dict[str, float]:
    from fraudflow import generate

    start = _session(engine)
    t0 = time.perf_counter()
    s = generate(root, world(scale), engine=engine)
    return {"rows": s.rows, "seconds": time.perf_counter() - t0, "session_seconds": start}


def case_features(engine: str, root: str) -> dict[str, float]:
    from fraudflow.features import build_features

    start = _session(engine)
    t0 = time.perf_counter()
    s = build_features(root, engine=FEATURE_ENGINE[engine])
    return {"rows": s.rows, "seconds": time.perf_counter() - t0, "session_seconds": start}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--engine", default="local", help=argparse.SUPPRESS)
    ap.add_argument("--scale", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--root", help=argparse.SUPPRESS)
    ap.add_argument("--scales", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--engines", nargs="+", default=["local", "spark"])
    args = ap.parse_args()
    if args.case == "simulate":
        print(json.dumps(case_simulate(args.engine, args.scale, args.root)))
        return
    if args.case == "features":
        print(json.dumps(case_features(args.engine, args.root)))
        return
    rows, results = [], []
    for scale in args.scales:
        for engine in args.engines:
            root = tempfile.mkdtemp(prefix="ff-scale-")
            try:
                sim = run_case_tree("scale", "simulate", "--engine", engine, "--scale", str(scale), "--root", root)
                feat = run_case_tree("scale", "features", "--engine", engine, "--root", root)
            finally:
                shutil.rmtree(root)
            for step, r in (("simulate", sim), ("features", feat)):
                results.append({"scale": scale, "engine": engine, "step": step, **r})
                rows.append(
                    [
                        f"{scale}x",
                        engine,
                        step,
                        f"{r['rows']:,}",
                        f"{r['seconds']:.1f}",
                        f"{r['rows'] / r['seconds']:,.0f}",
                        f"{r['peak_tree_rss_mb']:,.0f}",
                        f"{r['session_seconds']:.1f}" if engine == "spark" else "",
                    ]
                )
            print(rows[-2], rows[-1], flush=True)
    print(f"\nMachine: {machine()}\n")
    headers = ["world", "engine", "step", "rows", "seconds", "rows/s", "peak RSS, MiB (tree)", "Spark start, s"]
    print(table(headers, rows))
    print("\n" + json.dumps(results))


if __name__ == "__main__":
    main()
