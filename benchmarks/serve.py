"""Benchmark: online features + scoring in process, and the HTTP service under a steady load.

    .venv/bin/python -m benchmarks.serve [--seconds 60] [--rate 500]

Setup: the default world, its 16 features, a model (fraudflow's parameters). Traffic: the world's
next days (the simulator's continuation). In process: ``Scorer.score`` over batches of 1,000
(features one by one, committed to the store, then one model call for the answers). HTTP: `fraudflow serve` in one
process, a load generator in another (open loop: request i leaves at i/rate whatever the answers),
both on loopback on this 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

from benchmarks._measure import machine, table


def setup(root: str, extra_days: int) -> None:
    from fraudflow import WorldParams, generate
    from fraudflow.features import FRAUDFLOW, build_features
    from fraudflow.lake import Lake
    from fraudflow.training import workflow

    generate(root, WorldParams())
    build_features(root, FRAUDFLOW)
    workflow.train(Lake(root), dt.date(2018, 9, 1))
    # the traffic: the next days of the world, generated aside (the served lake stays at 183 days)
    generate(f"{root}-traffic", WorldParams(nb_days=183 + extra_days), from_day=183)


def traffic(root: str) -> list[dict[str, object]]:
    from fraudflow.jobs.replay import request_bodies
    from fraudflow.lake import Lake

    lake = Lake(f"{root}-traffic")
    return request_bodies(lake.read_partitions("transactions", lake.partitions("transactions")))


def case_inprocess(root: str, store_url: str) -> dict[str, float]:
    from fraudflow.features import registry
    from fraudflow.lake import Lake
    from fraudflow.records import Transaction
    from fraudflow.serving.engine import Scorer
    from fraudflow.store.online.connect import open_store
    from fraudflow.store.online.materialize import materialize
    from fraudflow.training import model

    lake = Lake(root)
    fs = registry.registered(lake)
    assert fs is not None
    store = open_store(store_url.replace("ROOT", root))
    store.clear()
    materialize(lake, store, fs)
    mid = model.latest_model(lake)
    scorer = Scorer(store, fs, model.load(lake, mid), mid)
    txs = [
        Transaction(
            b["TRANSACTION_ID"],
            dt.datetime.fromisoformat(b["TX_DATETIME"]),
            b["CUSTOMER_ID"],  # type: ignore[arg-type]
            b["TERMINAL_ID"],
            b["TX_AMOUNT"],
        )
        for b in traffic(root)
    ]  # type: ignore[arg-type]
    t0 = time.perf_counter()
    for i in range(0, len(txs), 1000):
        scorer.score(txs[i : i + 1000])
    seconds = time.perf_counter() - t0
    return {"rows": len(txs), "seconds": seconds, "tx_per_s": len(txs) / seconds}


async def _connection(
    host: str, port: int, queue: asyncio.Queue[tuple[float, bytes] | None], latencies: list[float], errors: list[int]
) -> None:
    """One keep-alive HTTP/1.1 connection sending queued requests (a minimal client: the load
    generator must cost far less than the server, which general-purpose async clients do not)."""
    reader, writer = await asyncio.open_connection(host, port)
    while (item := await queue.get()) is not None:
        due, request = item
        writer.write(request)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(
            next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
        )
        await reader.readexactly(length)
        latencies.append(time.perf_counter() - due)  # from when it should have left: no coordinated omission
        if not head.startswith(b"HTTP/1.1 200"):
            errors.append(1)
    writer.close()


async def _load(url: str, bodies: list[dict[str, object]], rate: float, seconds: float) -> dict[str, float]:
    host, port = url.removeprefix("http://").split(":")
    n = min(len(bodies), int(rate * seconds))
    requests = []
    for body in bodies[:n]:
        data = json.dumps(body).encode()
        requests.append(
            b"POST /v1/score HTTP/1.1\r\nHost: " + host.encode() + b"\r\nContent-Type: application/json"
            b"\r\nContent-Length: " + str(len(data)).encode() + b"\r\n\r\n" + data
        )
    latencies: list[float] = []
    errors: list[int] = []
    queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
    conns = [asyncio.create_task(_connection(host, int(port), queue, latencies, errors)) for _ in range(16)]
    t0 = time.perf_counter()
    for i in range(n):
        due = t0 + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait((due, requests[i]))
    for _ in conns:
        queue.put_nowait(None)
    await asyncio.gather(*conns)
    elapsed = time.perf_counter() - t0
    lat = np.array(latencies) * 1000
    return {
        "requests": n,
        "errors": len(errors),
        "seconds": elapsed,
        "achieved_rps": n / elapsed,
        "p50_ms": float(np.percentile(lat, 50)),
        "p95_ms": float(np.percentile(lat, 95)),
        "p99_ms": float(np.percentile(lat, 99)),
        "max_ms": float(lat.max()),
    }


def case_load(root: str, url: str, rate: float, seconds: float) -> dict[str, float]:
    return asyncio.run(_load(url, traffic(root), rate, seconds))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--root", help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--store", help=argparse.SUPPRESS)
    ap.add_argument("--rate", type=float, default=500)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--workers", type=int, default=1, help="service processes (sharing the SQLite store)")
    args = ap.parse_args()
    if args.case == "inprocess":
        print(json.dumps(case_inprocess(args.root, args.store)))
        return
    if args.case == "load":
        print(json.dumps(case_load(args.root, args.url, args.rate, args.seconds)))
        return
    root = tempfile.mkdtemp(prefix="ff-serve-")
    days = int(np.ceil(args.rate * args.seconds / 9000)) + 1
    try:
        setup(root, days)
        rows = []
        for label, store in (("memory", "memory://"), ("SQLite", "sqlite://ROOT/bench.sqlite")):
            out = subprocess.run(
                [sys.executable, "-m", "benchmarks.serve", "--case", "inprocess", "--root", root, "--store", store],
                check=True,
                capture_output=True,
                text=True,
            )
            r = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append(
                [
                    f"in process, {label} store: online features + commit + XGBoost (batches of 1,000)",
                    f"{r['rows']:,}",
                    f"{r['tx_per_s']:,.0f} tx/s",
                    "",
                    "",
                ]
            )
        port = 18765
        server = subprocess.Popen(
            [
                str(os.path.join(os.path.dirname(sys.executable), "fraudflow")),
                "serve",
                "--data",
                root,
                "--port",
                str(port),
                "--workers",
                str(args.workers),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        import httpx

        for _ in range(600):
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "benchmarks.serve",
                "--case",
                "load",
                "--root",
                root,
                "--url",
                url,
                "--rate",
                str(args.rate),
                "--seconds",
                str(args.seconds),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        server.terminate()
        server.wait(10)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(
            [
                f"HTTP POST /v1/score, {args.rate:.0f} req/s offered for {args.seconds:.0f} s, "
                f"{args.workers} service process(es), SQLite store",
                f"{r['requests']:,} ({r['errors']} errors)",
                f"{r['achieved_rps']:,.0f} req/s",
                f"p50 {r['p50_ms']:.2f} / p95 {r['p95_ms']:.2f} / p99 {r['p99_ms']:.2f} ms",
                f"max {r['max_ms']:.1f} ms",
            ]
        )
        print(f"machine: {machine()}\n")
        print(table(["what", "transactions", "throughput", "latency", ""], rows))
    finally:
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(f"{root}-traffic", ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
