"""Benchmark: the service's scoring path in CPU time (the machine is shared: wall time misleads).

    .venv/bin/python -m benchmarks.score_cpu --root DIR [--single 3000] [--rows 20000] [--log 5000]

``DIR`` is a lake ``benchmarks.serve`` set up (the default world, its features, a model; the
traffic in ``DIR-traffic``). In process, each case in a fresh process with a fresh store:

- ``single``: ``Scorer.score`` on batches of one (what the service commits at light load), SQLite
  store, the prediction log attached as the service attaches it: CPU µs per call (the thread's
  time: median, 99th percentile, mean), after 2,000 transactions of warm-up;
- ``thousand``: ``Scorer.score`` on batches of 1,000, memory and SQLite stores, the prediction log
  attached: transactions per CPU second (the process's) and per wall second;
- ``parts``: where a transaction's CPU time goes in ``Scorer.score`` on batches of 1,000 (memory
  and SQLite stores, no prediction log): the thread's CPU µs per transaction of each step, timed
  around the scorer's own calls (the columns, the store's record and commit = the rest of the call,
  the windows' features, the vectors' text, the model, the answers' text, the windows' trim), the
  Python objects of the answers made (as the service makes them for single requests) timed apart;
- ``log``: the prediction log's commit of ``--log`` answers (batches of one, as the service adds
  them): the CPU time of ``add`` per batch and of the commit (the committing thread's), and the
  event loop's longest stall while the log's thread commits: an asyncio loop sleeping 1 ms at a
  time, each turn also scoring one transaction (SQLite), the longest gap between turns beyond the
  1 ms (during the commits, and in as many turns without one).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import threading
import time
from typing import Any

from benchmarks._measure import machine, run_case, table
from benchmarks.serve import traffic_transactions as transactions

WARM = 2000


def scorer(root: str, store: str, work: str) -> Any:
    """A scorer of the lake at ``root`` with the prediction log attached (as the app does), its log
    and its online store in ``work`` (the benchmark's own: the lake stays as it was)."""
    from fraudflow.lake import Lake
    from fraudflow.serving.engine import Scorer
    from fraudflow.serving.served_log import ServedLog

    s = Scorer.from_lake(Lake(root), None, store)
    s.served_log = ServedLog(Lake(work), every=float(2**31))
    return s


def case_single(root: str, n: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as work:
        s = scorer(root, f"sqlite://{work}/single.sqlite", work)
        txs = transactions(root, WARM + n)
        for tx in txs[:WARM]:
            s.score([tx])
        cpu = []
        for tx in txs[WARM:]:
            t0 = time.thread_time()
            s.score([tx])
            cpu.append(time.thread_time() - t0)
        s.served_log.close()
        s.store.close()
    cpu.sort()
    return {
        "median_us": statistics.median(cpu) * 1e6,
        "p99_us": cpu[int(0.99 * len(cpu))] * 1e6,
        "mean_us": statistics.fmean(cpu) * 1e6,
    }


def case_thousand(root: str, store: str, rows: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as work:
        url = f"sqlite://{work}/thousand.sqlite" if store == "sqlite" else "memory://"
        s = scorer(root, url, work)
        txs = transactions(root, WARM + rows)
        for i in range(0, WARM, 1000):
            s.score(txs[i : i + 1000])
        c0, t0 = time.process_time(), time.perf_counter()
        for i in range(WARM, len(txs), 1000):
            s.score(txs[i : i + 1000])
        cpu, wall = time.process_time() - c0, time.perf_counter() - t0
        s.served_log.close()
        s.store.close()
    return {"rows": rows, "tx_per_cpu_s": rows / cpu, "tx_per_wall_s": rows / wall}


def case_parts(root: str, store: str, rows: int) -> dict[str, float]:
    from fraudflow.records import TxColumns
    from fraudflow.serving import engine

    with tempfile.TemporaryDirectory() as work:
        url = f"sqlite://{work}/parts.sqlite" if store == "sqlite" else "memory://"
        s = engine.Scorer.from_lake(root, None, url)
        txs = transactions(root, WARM + rows)
        for i in range(0, WARM, 1000):
            s.score(txs[i : i + 1000])
        spent: dict[str, float] = {}

        def timed(name: str, call: Any) -> Any:
            def run(*args: Any, **kwargs: Any) -> Any:
                t0 = time.thread_time()
                try:
                    return call(*args, **kwargs)
                finally:
                    spent[name] = spent.get(name, 0.0) + time.thread_time() - t0

            return run

        columns_of = TxColumns.__dict__["of"]
        TxColumns.of = timed("columns", TxColumns.of)  # type: ignore[method-assign]
        s.state.features = timed("features", s.state.features)  # type: ignore[method-assign]
        s.state.trim = timed("trim", s.state.trim)  # type: ignore[method-assign]
        s._encoder.vector_texts = timed("vectors' text", s._encoder.vector_texts)  # type: ignore[method-assign]
        s._judge = timed("model", s._judge)  # type: ignore[method-assign]
        s._answers = timed("answers' text", s._answers)  # type: ignore[method-assign]
        objects = 0.0
        t0 = time.thread_time()
        for i in range(WARM, len(txs), 1000):
            answers = s.score(txs[i : i + 1000])
            t1 = time.thread_time()
            list(answers)
            objects += time.thread_time() - t1
        total = time.thread_time() - t0 - objects
        setattr(TxColumns, "of", columns_of)  # noqa: B010
        s.store.close()
    parts = {"store record + commit": total - sum(spent.values()), **spent, "answers' objects": objects}
    return {"total": total / rows * 1e6, **{name: t / rows * 1e6 for name, t in parts.items()}}


def case_log(root: str, n: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as work:
        s = scorer(root, f"sqlite://{work}/log.sqlite", work)
        log = s.served_log
        txs = transactions(root, WARM + 3 * n)
        for tx in txs[:WARM]:
            s.score([tx])
        log.flush()
        # the add's cost: the scorer's call to it, timed around the log alone
        add = log.add
        spent = []

        def timed_add(batch: Any) -> None:
            t0 = time.thread_time()
            add(batch)
            spent.append(time.thread_time() - t0)

        log.add = timed_add
        for tx in txs[WARM : WARM + n]:
            s.score([tx])
        log.add = add
        commit_cpu: list[float] = []
        done = threading.Event()

        def commit() -> None:
            t0 = time.thread_time()
            log.flush()
            commit_cpu.append(time.thread_time() - t0)
            done.set()

        async def turns(todo: list[Any], with_commit: bool) -> float:
            """The longest gap between the loop's turns beyond its 1 ms sleep, while scoring ``todo``."""
            if with_commit:
                done.clear()
                threading.Thread(target=commit).start()
            worst, last = 0.0, time.perf_counter()
            for tx in todo:
                await asyncio.sleep(0.001)
                now = time.perf_counter()
                worst = max(worst, now - last - 0.001)
                s.score([tx])
                last = time.perf_counter()
                if with_commit and done.is_set():
                    break
            return worst

        stall = asyncio.run(turns(txs[WARM + n : WARM + 2 * n], True))
        quiet = asyncio.run(turns(txs[WARM + 2 * n : WARM + 2 * n + 500], False))
        log.close()
        s.store.close()
    return {
        "add_us": statistics.fmean(spent) * 1e6,
        "commit_ms": commit_cpu[0] * 1e3,
        "stall_ms": stall * 1e3,
        "quiet_stall_ms": quiet * 1e3,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", required=True)
    ap.add_argument("--single", type=int, default=3000)
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--log", type=int, default=5000)
    ap.add_argument("--only", default="single,thousand,log")
    ap.add_argument("--case", default=None)
    ap.add_argument("--store", default="memory")
    args = ap.parse_args()
    if args.case == "single":
        print(json.dumps(case_single(args.root, args.single)))
        return
    if args.case == "thousand":
        print(json.dumps(case_thousand(args.root, args.store, args.rows)))
        return
    if args.case == "log":
        print(json.dumps(case_log(args.root, args.log)))
        return
    if args.case == "parts":
        print(json.dumps(case_parts(args.root, args.store, args.rows)))
        return
    only = args.only.split(",")
    print(machine(), f"load average {os.getloadavg()[0]:.2f}", flush=True)
    if "single" in only:
        r = run_case("score_cpu", "single", "--root", args.root, "--single", str(args.single))
        print(table(["batch of one, SQLite: CPU µs median", "p99", "mean"], [[f"{r[k]:.0f}" for k in r]]), flush=True)
    if "thousand" in only:
        rows = []
        for store in ("memory", "sqlite"):
            r = run_case("score_cpu", "thousand", "--root", args.root, "--store", store, "--rows", str(args.rows))
            rows.append([store, f"{r['rows']:,}", f"{r['tx_per_cpu_s']:,.0f}", f"{r['tx_per_wall_s']:,.0f}"])
        print(table(["batches of 1,000: store", "transactions", "per CPU second", "per wall second"], rows))
    if "parts" in only:
        results = {
            store: run_case("score_cpu", "parts", "--root", args.root, "--store", store, "--rows", str(args.rows))
            for store in ("memory", "sqlite")
        }
        rows = [[name, *(f"{results[store][name]:.2f}" for store in results)] for name in results["memory"]]
        print(table(["batches of 1,000: CPU µs a transaction", "memory", "sqlite"], rows), flush=True)
    if "log" in only:
        r = run_case("score_cpu", "log", "--root", args.root, "--log", str(args.log))
        head = ["log: add µs a batch", "commit CPU ms", "longest loop stall ms (commit)", "(no commit)"]
        print(table(head, [[f"{r[k]:.1f}" for k in r]]))
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
