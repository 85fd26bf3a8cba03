"""Benchmark: the scoring service under open-loop load beside its floor, and scoring in process.

    .venv/bin/python -m benchmarks.serve [--only SECTIONS] [--seconds 60] [--rates 500,1000,2000]
        [--step-seconds 10] [--connections 32] [--root DIR] [--json FILE] [--pin] [--generator-nice N]

Setup: the default world, the default model's features (``workflow.FRAUDFLOW_FEATURES``) and that
model (fraudflow's parameters, trained on 2018-09-01..07). Traffic: the world's next days (the
simulator's continuation, about 9,600 transactions a day), in time order; each target (a freshly
started service with a fresh online store) receives them from the first, so each TRANSACTION_ID is
sent once to it.

Sections (``--only a,b``; default all, in this order):

- ``generator``: the load generator (benchmarks/loadgen.py) against benchmarks/stub_server.py:
  its ceiling (the saturation of generator + stub, and its CPU per request), and its latencies
  checked against known delays (a stub that answers after 2 ms; one that answers after 10 ms on 4
  connections, offered more than the 400/s it can serve, beside the latencies a FIFO queue predicts).
- ``inprocess``: ``Scorer.score`` (features + commit + score + contributions) over batches of
  1,000, memory store and SQLite store, in a fresh process each: transactions/s.
- ``batch``: ``POST /v1/score/batch`` with 1,000 transactions a request, 2 connections, each sent
  as soon as the previous answer is in (closed loop): transactions/s over HTTP.
- ``floor``: FastAPI + uvicorn with fraudflow's validation and a constant answer (floor_app.py).
- ``serve``: ``fraudflow serve``, one process, SQLite store.
- ``workers``: ``fraudflow serve --workers 2``, SQLite store shared.
- ``redis``: ``fraudflow serve --online redis://...``, one process, a redis-server started for the
  run on loopback (no persistence, as the tests run it).
- ``redis-workers``: the same with ``--workers 2``.

Each HTTP target: start the server, wait for ``GET /readyz``, a 3 s warm-up at 300/s (not
reported), each of ``--rates`` for ``--seconds``, then the saturation search; stop the server.

Definitions:

- **Open loop**: request i is due at ``t0 + i / rate`` whatever the answers; **latency** is from
  its due time to the last byte of its answer, so a request that waits, in the server or because
  all the generator's connections are busy, is charged for the wait (loadgen.py's docstring).
- **Achieved**: the answers with status 200 received within the offered window (``n / rate``
  seconds from t0), per second of that window.
- **Sustained**: a run at offered rate R with 0 errors, achieved >= 99 % of R and p99 <= 100 ms.
- **Saturation**: the highest offered rate found sustained by a step search of
  ``--step-seconds`` runs: from the highest sustained fixed rate (or 250/s), up by x1.25 until a
  step fails (down by x1.25 while they fail), then bisection (geometric) between the highest
  sustained and the lowest failed rate until they are within 5 %. A server past saturation queues
  without bound, so its p99 grows with the run's length; below it, it stays bounded.

Where the processes run: each load run is a fresh ``python -m benchmarks.loadgen`` process
(``--connections`` keep-alive connections, 32 by default), beside the server on the same machine,
on loopback. ``--pin`` puts the generator on CPU 0 and a one-process server (the stub, the floor,
``serve``, ``redis``) on CPU 1 with taskset (servers with 2 workers, and redis-server, are not
pinned); ``--generator-nice N`` runs the generator at niceness N (negative needs root).

``--root DIR`` keeps the lake and the traffic (``DIR`` and ``DIR-traffic``) for the next run, which
then skips the setup (remove them after changing the feature set or the model format);
``--json FILE`` writes every run's figures. Progress goes to stderr, the tables to stdout.

Every table says what was measured and how; the machine line comes first, the load averages
before each target are printed beside it (the figures mean something only on a quiet machine).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import heapq
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from benchmarks._measure import machine, run_case, table

SECTIONS = ("generator", "inprocess", "batch", "floor", "serve", "workers", "redis", "redis-workers")
#: Sustained: errors 0, achieved >= this share of the offered rate, p99 at most P99_BOUND_MS.
KEEP_UP = 0.99
P99_BOUND_MS = 100.0
#: Saturation search: step factor, stop when the bracket is this narrow, most steps.
FACTOR = 1.25
RESOLUTION = 0.05
MAX_STEPS = 14
WARMUP_RATE, WARMUP_SECONDS = 300.0, 3.0
BATCH = 1000
PAUSE_S = 1.0  # between runs, once the server has drained


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- setup and traffic


def setup(root: str, traffic_days: int) -> None:
    """The world, features and a model in ``root``; the traffic as JSON lines in ``root``-traffic."""
    from fraudflow import WorldParams, generate
    from fraudflow.features import build_features
    from fraudflow.jobs.replay import request_bodies
    from fraudflow.lake import Lake
    from fraudflow.training import workflow

    generate(root, WorldParams())
    build_features(root, workflow.FRAUDFLOW_FEATURES)
    workflow.train(Lake(root), dt.date(2018, 9, 1))
    # the traffic: the next days of the world, generated aside (the served lake stays at 183 days)
    generate(traffic_root(root), WorldParams(nb_days=183 + traffic_days), from_day=183)
    lake = Lake(traffic_root(root))
    bodies = request_bodies(lake.read_partitions("transactions", lake.partitions("transactions")))
    with open(requests_file(root), "w") as f:
        for body in bodies:
            f.write(json.dumps(body, separators=(",", ":")) + "\n")
    with open(batches_file(root), "w") as f:
        for i in range(0, len(bodies) - BATCH + 1, BATCH):
            f.write(json.dumps({"transactions": bodies[i : i + BATCH]}, separators=(",", ":")) + "\n")


def traffic_root(root: str) -> str:
    return f"{root}-traffic"


def requests_file(root: str) -> str:
    return os.path.join(traffic_root(root), "requests.jsonl")


def traffic_transactions(root: str, n: int) -> list[Any]:
    """The traffic's first ``n`` transactions (``Transaction``s, in the order they are sent)."""
    from fraudflow.records import Transaction

    with open(requests_file(root), "rb") as f:
        bodies = [json.loads(line) for _, line in zip(range(n), f, strict=False)]
    return [
        Transaction(
            b["TRANSACTION_ID"],
            dt.datetime.fromisoformat(b["TX_DATETIME"]),
            b["CUSTOMER_ID"],
            b["TERMINAL_ID"],
            b["TX_AMOUNT"],
        )
        for b in bodies
    ]


def batches_file(root: str) -> str:
    return os.path.join(traffic_root(root), "batches.jsonl")


def count_lines(path: str) -> int:
    with open(path, "rb") as f:
        return f.read().count(b"\n")


# ---------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Placement:
    """Where the processes run: CPU pinning and the generator's niceness."""

    pin: bool = False
    generator_nice: int = 0

    def generator(self) -> list[str]:
        prefix = ["taskset", "-c", "0"] if self.pin else []
        return prefix + (["nice", "-n", str(self.generator_nice)] if self.generator_nice else [])

    def server(self, processes: int) -> list[str]:
        return ["taskset", "-c", "1"] if self.pin and processes == 1 else []

    def describe(self) -> str:
        where = "generator pinned to CPU 0, single-process servers to CPU 1 (taskset)" if self.pin else "no CPU pinning"
        return where + (f", generator at nice {self.generator_nice}" if self.generator_nice else "")


@contextlib.contextmanager
def running(cmd: list[str], url: str | None, log_path: str, timeout: float = 900) -> Iterator[subprocess.Popen[bytes]]:
    """``cmd`` started in its own session, ready when ``url`` answers 200 (or at once); stopped after."""
    with open(log_path, "ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while url is not None:
            if proc.poll() is not None:
                with open(log_path, errors="replace") as f:
                    raise RuntimeError(f"{cmd[0]} exited with {proc.returncode}:\n{f.read()[-3000:]}")
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} not ready after {timeout:.0f} s")
            time.sleep(0.2)
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 15)  # the session this harness started: the server and its workers
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait(10)


@contextlib.contextmanager
def redis_server(workdir: str) -> Iterator[str]:
    """A redis-server on a free loopback port, no persistence (as tests/conftest.py starts one)."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise RuntimeError("redis-server is not installed (`make system` installs it)")
    port = free_port()
    cmd = [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", workdir]
    with running(cmd, None, os.path.join(workdir, "redis.log")):
        import redis

        client = redis.Redis(port=port)
        for _ in range(200):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"


# ---------------------------------------------------------------- load


@dataclass
class Bench:
    """What every run shares: where the traffic is, the generator's options, the results so far."""

    root: str
    placement: Placement
    connections: int
    json_path: str | None = None  # rewritten after every run, so a long run's figures survive a failure
    results: list[dict[str, Any]] = field(default_factory=list)

    def record(self, result: dict[str, Any]) -> None:
        self.results.append(result)
        if self.json_path:
            with open(self.json_path, "w") as f:
                json.dump({"machine": machine(), "placement": self.placement.describe(), "runs": self.results}, f)

    def load(
        self,
        target: str,
        kind: str,
        url: str,
        rate: float,
        seconds: float,
        *,
        start: int = 0,
        path: str = "/v1/score",
        bodies: str | None = None,
        connections: int | None = None,
        check_ids: bool = False,
    ) -> dict[str, Any]:
        """One open-loop run by benchmarks.loadgen in its own process; the result, recorded."""
        cmd = [
            *self.placement.generator(),
            sys.executable,
            "-m",
            "benchmarks.loadgen",
            "--url",
            url,
            "--path",
            path,
            "--bodies",
            bodies or requests_file(self.root),
            "--start",
            str(start),
            "--rate",
            str(rate),
            "--seconds",
            str(seconds),
            "--connections",
            str(connections or self.connections),
            *(["--check-ids"] if check_ids else []),
        ]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True)
        r: dict[str, Any] = {"target": target, "kind": kind, "start": start, **json.loads(out.stdout.splitlines()[-1])}
        if r["requests"] < round(rate * seconds):
            raise RuntimeError(f"traffic exhausted at line {start}: make more with --traffic-days")
        self.record(r)
        log(
            f"{target} {kind} {rate:,.0f}/s x {seconds:g} s: achieved {r['achieved_rps']:,.0f}/s, "
            f"p50 {r['p50_ms']:.2f} p99 {r['p99_ms']:.2f} max {r['max_ms']:.1f} ms, errors {r['errors']}, "
            f"late sends {r['late_sends']}, generator {r['cpu_us_per_request']:.0f} µs/req"
        )
        return r


def wait_idle(url: str, timeout: float = 120) -> None:
    """Return once ``url`` answers quickly 5 times in a row (the server has drained what it was
    sent), then ``PAUSE_S`` more."""
    deadline = time.monotonic() + timeout
    quick = 0
    while quick < 5 and time.monotonic() < deadline:
        t0 = time.perf_counter()
        with contextlib.suppress(urllib.error.URLError, OSError), urllib.request.urlopen(url, timeout=10):
            pass
        quick = quick + 1 if time.perf_counter() - t0 < 0.02 else 0
    time.sleep(PAUSE_S)


def verdict(r: dict[str, Any]) -> str:
    """Why a run is not sustained ("" when it is)."""
    why = []
    if r["errors"]:
        why.append(f"{r['errors']:,} errors")
    if r["achieved_rps"] < KEEP_UP * r["offered_rps"]:
        why.append(f"achieved {r['achieved_rps'] / r['offered_rps']:.1%} of offered")
    if r["p99_ms"] > P99_BOUND_MS:
        why.append(f"p99 {r['p99_ms']:,.0f} ms")
    return ", ".join(why)


def search(measure: Callable[[float], dict[str, Any]], start: float) -> tuple[float | None, float | None]:
    """The saturation (highest sustained rate, lowest failed rate) by the step search of the docstring."""
    best: float | None = None
    worst: float | None = None
    rate = start
    for _ in range(MAX_STEPS):
        if verdict(measure(rate)):
            worst = rate if worst is None else min(worst, rate)
        else:
            best = rate if best is None else max(best, rate)
        if best is None:
            rate = round(rate / FACTOR, -1)
        elif worst is None:
            rate = round(rate * FACTOR, -1)
        elif worst / best - 1 <= RESOLUTION:
            break
        else:
            rate = round(math.sqrt(best * worst), -1)
            if rate in (best, worst):
                break
        if rate < 10:
            break
    return best, worst


class Cursor:
    """The next line of the traffic to send: each run takes fresh transactions."""

    def __init__(self) -> None:
        self.line = 0

    def take(self, n: int) -> int:
        start, self.line = self.line, self.line + n
        return start


def load_target(
    bench: Bench, target: str, url: str, rates: list[float], seconds: float, step_seconds: float, check_ids: bool
) -> dict[str, Any]:
    """Warm-up, the fixed rates, the saturation search against a server already running at ``url``."""
    cursor = Cursor()
    steps: list[dict[str, Any]] = []

    def run(kind: str, rate: float, secs: float) -> dict[str, Any]:
        r = bench.load(target, kind, url, rate, secs, start=cursor.take(round(rate * secs)), check_ids=check_ids)
        wait_idle(f"{url}/readyz")
        return r

    def step(rate: float) -> dict[str, Any]:
        steps.append(run("step", rate, step_seconds))
        return steps[-1]

    run("warm-up", WARMUP_RATE, WARMUP_SECONDS)
    fixed = [run("fixed", rate, seconds) for rate in rates]
    sustained = [r["offered_rps"] for r in fixed if not verdict(r)]
    best, worst = search(step, max(sustained, default=250.0)) if step_seconds > 0 else (None, None)
    return {"target": target, "fixed": fixed, "steps": steps, "saturation": best, "first_failed": worst}


def target_table(summary: dict[str, Any]) -> str:
    rows = []
    for r in summary["fixed"] + summary["steps"]:
        rows.append(
            [
                r["kind"],
                f"{r['offered_rps']:,.0f}",
                f"{r['seconds']:g}",
                f"{r['requests']:,}",
                f"{r['errors']:,}",
                f"{r['achieved_rps']:,.0f}",
                f"{r['p50_ms']:.2f}",
                f"{r['p90_ms']:.2f}",
                f"{r['p99_ms']:.2f}",
                f"{r['p999_ms']:.2f}",
                f"{r['max_ms']:.1f}",
                f"{r['late_sends']:,}",
                f"{r['connections']} ({r['peak_busy_connections']})",
                f"{r['cpu_us_per_request']:.0f}",
                verdict(r) or "sustained",
            ]
        )
    return (
        table(
            [
                "run",
                "offered/s",
                "s",
                "requests",
                "errors",
                "achieved/s",
                "p50 ms",
                "p90 ms",
                "p99 ms",
                "p99.9 ms",
                "max ms",
                "late sends",
                "connections (peak busy)",
                "generator µs/req",
                "verdict",
            ],
            rows,
        )
        + "\n\n"
        + saturation_line(summary)
    )


def saturation_line(summary: dict[str, Any]) -> str:
    if not summary["steps"]:
        return "saturation: not searched"
    sat, failed = summary["saturation"], summary["first_failed"]
    found = f"saturation: **{sat:,.0f} requests/s**" if sat is not None else "saturation: below every step tried"
    return found + (f" (lowest failed step {failed:,.0f}/s)" if failed is not None else " (no step failed)")


# ---------------------------------------------------------------- in process


def case_inprocess(root: str, store_url: str, rows: int) -> dict[str, float]:
    """``Scorer.score`` over batches of 1,000 of the traffic's first ``rows`` (after 2,000 warm-up)."""
    from fraudflow.lake import Lake
    from fraudflow.serving.engine import Scorer

    warm = 2 * BATCH
    txs = traffic_transactions(root, warm + rows)
    scorer = Scorer.from_lake(Lake(root), None, store_url)
    for i in range(0, warm, BATCH):
        scorer.score(txs[i : i + BATCH])
    t0 = time.perf_counter()
    for i in range(warm, len(txs), BATCH):
        scorer.score(txs[i : i + BATCH])
    seconds = time.perf_counter() - t0
    scorer.store.close()
    return {"rows": len(txs) - warm, "seconds": seconds, "tx_per_s": (len(txs) - warm) / seconds}


def section_inprocess(bench: Bench, rows: int) -> str:
    root = bench.root
    out = []
    for label, url in (("memory", "memory://"), ("SQLite (durable)", f"sqlite://{root}/inprocess.sqlite")):
        with contextlib.suppress(FileNotFoundError):
            os.remove(f"{root}/inprocess.sqlite")
        log(f"in process, {label} store, {rows:,} transactions")
        r = run_case("serve", "inprocess", "--root", root, "--store", url, "--rows", str(rows))
        bench.record({"target": "in process", "kind": label, **r})
        out.append([f"{label} store", f"{r['rows']:,}", f"{r['seconds']:.2f}", f"{r['tx_per_s']:,.0f}"])
    return (
        "**In process**: `Scorer.score(txs)` over batches of 1,000 new transactions (features from the "
        "store, each committed, then score + contributions + the answers), a fresh process and store per "
        "row, after a warm-up of 2,000 transactions.\n\n"
        + table(["store", "transactions", "seconds", "transactions/s"], out)
    )


# ---------------------------------------------------------------- sections


def section_generator(bench: Bench, step_seconds: float) -> str:
    """The generator's ceiling and its latencies checked against known delays."""
    lines = []
    with stub_with_delay(bench, 0.0) as url:

        def at(rate: float) -> dict[str, Any]:  # the stub ignores the bodies: each run sends the first ones
            r = bench.load("stub", "step", url, rate, step_seconds)
            time.sleep(1)
            return r

        cpu = {rate: at(rate)["cpu_us_per_request"] for rate in (1000.0, 2500.0)}
        best, worst = search(at, 5000.0)
    lines.append(
        f"- **Ceiling**: against a stub server answering at once (stub_server.py, asyncio), the generator "
        f"sustains {best or 0:,.0f} requests/s (lowest failed step {worst or 0:,.0f}/s; {step_seconds:g} s "
        f"steps, {bench.connections} connections): generator and stub together. The generator's own CPU "
        f"(user + system, in its process): {cpu[1000.0]:.0f} µs a request at 1,000/s, {cpu[2500.0]:.0f} µs "
        f"at 2,500/s, so {cpu[1000.0] / 1e3:.0%} and {cpu[2500.0] / 400:.0%} of one core at those rates."
    )
    # no queueing: what a request costs beyond the stub's delay (loopback, both event loops, timers)
    with stub_with_delay(bench, 2.0) as url:
        r = bench.load("stub", "delay 2 ms", url, 1000.0, 5.0)
    overhead = r["p50_ms"] - 2.0
    lines.append(
        f"- **Known delay, no queue**: a stub answering after 2 ms, 1,000/s offered on {bench.connections} "
        f"connections for 5 s: p50 / p99 / max {r['p50_ms']:.2f} / {r['p99_ms']:.2f} / {r['max_ms']:.1f} ms "
        f"(2 ms expected, plus {overhead:.2f} ms at the median for loopback, both event loops and the timers; "
        f"the generator's send lag p99 {r['send_lag_p99_ms']:.2f} ms, {r['late_sends']} requests left > 1 ms late)."
    )
    # a queue: 4 connections of 10 ms each serve about 400/s; 500/s offered must queue, and the
    # latency from due time must grow as a FIFO queue's does (a closed-loop client would see ~10 ms)
    with stub_with_delay(bench, 10.0) as url:
        r = bench.load("stub", "delay 10 ms, 4 connections", url, 500.0, 5.0, connections=4)
    cycle = 4 / r["completed_rps"]  # what one request took on a connection, as this run served them
    bare = predicted_ms(500.0, r["requests"], 4, 0.010)
    want = predicted_ms(500.0, r["requests"], 4, cycle)
    lines.append(
        f"- **Known delay, queueing**: a stub answering after 10 ms, 500/s offered on 4 connections (so "
        f"at most 400/s served) for 5 s: served {r['completed_rps']:,.0f}/s, latency from due time p50 / p99 / "
        f"max {r['p50_ms']:,.1f} / {r['p99_ms']:,.1f} / {r['max_ms']:,.1f} ms. A FIFO queue of 4 servers "
        f"predicts {want[0]:,.1f} / {want[1]:,.1f} / {want[2]:,.1f} ms at the {cycle * 1000:.2f} ms a request "
        f"this run served (4 / {r['completed_rps']:,.0f} per s), {bare[0]:,.1f} / {bare[1]:,.1f} / "
        f"{bare[2]:,.1f} ms at exactly 10 ms. A closed-loop client, or one timing from the send, would "
        f"report about 10 ms."
    )
    return "**Load generator** (benchmarks/loadgen.py):\n\n" + "\n".join(lines)


@contextlib.contextmanager
def stub_with_delay(bench: Bench, delay_ms: float) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "benchmarks.stub_server", "--port", str(port), "--delay-ms", str(delay_ms)]
    with running([*bench.placement.server(1), *cmd], f"{url}/", os.path.join(bench.root, "logs", "stub.log")):
        yield url


def predicted_ms(rate: float, n: int, servers: int, service_s: float) -> tuple[float, float, float]:
    """p50, p99 and max latency from due time (ms) of a FIFO queue: ``servers`` each taking ``service_s``."""
    import numpy as np

    free = [0.0] * servers
    latency = []
    for i in range(n):
        due = i / rate
        start = max(due, heapq.heappop(free))
        heapq.heappush(free, start + service_s)
        latency.append(start + service_s - due)
    ms = np.array(latency) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99)), float(ms.max())


def section_batch(bench: Bench, requests: int) -> str:
    logs = os.path.join(bench.root, "logs")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    store = f"sqlite://{bench.root}/batch.sqlite"
    with contextlib.suppress(FileNotFoundError):
        os.remove(f"{bench.root}/batch.sqlite")
    cmd = fraudflow_serve(bench.root, port, 1, store)
    with running([*bench.placement.server(1), *cmd], f"{url}/readyz", f"{logs}/batch.log"):
        kw: dict[str, Any] = {"path": "/v1/score/batch", "bodies": batches_file(bench.root), "connections": 2}
        bench.load("batch", "warm-up", url, 1000, 2 / 1000, start=0, **kw)
        r = bench.load("batch", "closed loop", url, 1000, requests / 1000, start=2, **kw)
    tx_s = r["completed_rps"] * BATCH
    return (
        f"**Batch over HTTP**: `POST /v1/score/batch`, {BATCH:,} new transactions a request, one service "
        f"process (SQLite store), 2 connections each sending its next request when the previous answer is in "
        f"(closed loop), {requests} requests after 2 warm-up requests: {r['errors']} errors, "
        f"**{tx_s:,.0f} transactions/s** ({r['completed_rps']:.2f} requests/s, mean "
        f"{2 / r['completed_rps'] * 1000:,.0f} ms a request with 2 in flight)."
    )


def fraudflow_serve(root: str, port: int, workers: int, online: str) -> list[str]:
    exe = os.path.join(os.path.dirname(sys.executable), "fraudflow")
    return [exe, "serve", "--data", root, "--port", str(port), "--workers", str(workers), "--online", online]


def section_targets(bench: Bench, targets: list[str], args: argparse.Namespace) -> str:
    logs = os.path.join(bench.root, "logs")
    rates = [float(r) for r in args.rates.split(",")]
    summaries: dict[str, dict[str, Any]] = {}
    parts = []
    for target in targets:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        load = os.getloadavg()
        log(f"{target}: starting (load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f})")
        with contextlib.ExitStack() as stack:
            workers = 2 if target.endswith("workers") else 1
            if target == "floor":
                cmd = [sys.executable, "-m", "benchmarks.floor_app", "--port", str(port)]
                what = "FastAPI + uvicorn, `TransactionIn` validation, a constant answer (benchmarks/floor_app.py)"
            elif target.startswith("redis"):
                workdir = os.path.join(bench.root, target)
                shutil.rmtree(workdir, ignore_errors=True)
                os.makedirs(workdir)
                store = stack.enter_context(redis_server(workdir))
                cmd = fraudflow_serve(bench.root, port, workers, store)
                what = f"`fraudflow serve --workers {workers} --online redis://...` (a local redis-server)"
            else:
                path = f"{bench.root}/{target}.sqlite"
                for suffix in ("", "-wal", "-shm"):
                    with contextlib.suppress(FileNotFoundError):
                        os.remove(path + suffix)
                cmd = fraudflow_serve(bench.root, port, workers, f"sqlite://{path}")
                what = f"`fraudflow serve --workers {workers}`, SQLite store (a fresh file)"
            t0 = time.monotonic()
            stack.enter_context(
                running([*bench.placement.server(workers), *cmd], f"{url}/readyz", f"{logs}/{target}.log")
            )
            log(f"{target}: ready after {time.monotonic() - t0:.1f} s")
            summary = load_target(
                bench, target, url, rates, args.seconds, args.step_seconds, check_ids=target != "floor"
            )
        summaries[target] = summary
        parts.append(
            f"**{target}**: {what}; load average before: {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (1/5/15 min)."
            f"\n\n{target_table(summary)}"
        )
    if "floor" in summaries and len(summaries) > 1:
        parts.append(ratios(summaries, rates))
    return "\n\n".join(parts)


def ratios(summaries: dict[str, dict[str, Any]], rates: list[float]) -> str:
    """Each target's p99 at each fixed rate and its saturation, beside the floor's, measured in this run."""
    floor = summaries["floor"]
    rows = []
    for target, s in summaries.items():
        row = [target]
        for rate in rates:
            mine = next(r for r in s["fixed"] if r["offered_rps"] == rate)
            base = next(r for r in floor["fixed"] if r["offered_rps"] == rate)
            row.append(f"{mine['p99_ms']:.2f} ({mine['p99_ms'] / base['p99_ms']:.1f}x)")
        sat, base_sat = s["saturation"], floor["saturation"]
        row.append(f"{sat:,.0f} ({sat / base_sat:.2f}x)" if sat and base_sat else "n/a")
        rows.append(row)
    return (
        "**Against the floor** (same run): p99 ms at each offered rate and the saturation (requests/s), "
        "each with its ratio to the floor's.\n\n"
        + table(["target", *(f"p99 at {r:,.0f}/s" for r in rates), "saturation/s"], rows)
    )


# ---------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--store", help=argparse.SUPPRESS)
    ap.add_argument("--rows", type=int, default=100_000, help="in process: transactions scored per store")
    ap.add_argument("--only", default=",".join(SECTIONS), help=f"sections, comma-separated: {', '.join(SECTIONS)}")
    ap.add_argument("--rates", default="500,1000,2000", help="fixed offered rates, requests/s")
    ap.add_argument("--seconds", type=float, default=60, help="length of each fixed-rate run")
    ap.add_argument("--step-seconds", type=float, default=10, help="length of each saturation step (0: no search)")
    ap.add_argument("--connections", type=int, default=32, help="the generator's keep-alive connections")
    ap.add_argument("--batch-requests", type=int, default=20, help="batch: requests of 1,000 transactions")
    ap.add_argument("--traffic-days", type=int, default=90, help="days of new transactions to generate")
    ap.add_argument("--root", help="the benchmark's lake (kept; set up when missing): default a temporary one")
    ap.add_argument("--json", help="write every run's figures here")
    ap.add_argument("--pin", action="store_true", help="generator on CPU 0, one-process servers on CPU 1")
    ap.add_argument("--generator-nice", type=int, default=0, help="the generator's niceness (negative: root)")
    args = ap.parse_args()
    if args.case == "inprocess":
        print(json.dumps(case_inprocess(args.root, args.store, args.rows)))
        return
    sections = [s for s in args.only.split(",") if s]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        ap.error(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    root = args.root or tempfile.mkdtemp(prefix="ff-serve-")
    try:
        if not os.path.exists(batches_file(root)):
            log(f"setting up {root} (world, features, model, {args.traffic_days} days of traffic)")
            setup(root, args.traffic_days)
        os.makedirs(os.path.join(root, "logs"), exist_ok=True)
        bench = Bench(root, Placement(args.pin, args.generator_nice), args.connections, args.json)
        out = [
            f"machine: {machine()}; {bench.placement.describe()}; "
            f"traffic: {count_lines(requests_file(root)):,} new transactions, the world's next days"
        ]
        if "generator" in sections:
            out.append(section_generator(bench, min(args.step_seconds, 5.0) or 5.0))
        if "inprocess" in sections:
            out.append(section_inprocess(bench, args.rows))
        if "batch" in sections:
            out.append(section_batch(bench, args.batch_requests))
        targets = [s for s in SECTIONS[3:] if s in sections]
        if targets:
            out.append(
                f"**HTTP, open loop** (benchmarks/loadgen.py in its own process, {args.connections} keep-alive "
                f"connections, latency from each request's due time; a 3 s warm-up at 300/s first; fixed rates "
                f"for {args.seconds:g} s, saturation steps of {args.step_seconds:g} s; `generator µs/req` is the "
                f"generator's own CPU a request; sustained = 0 errors, achieved >= 99 % of offered, "
                f"p99 <= 100 ms):"
            )
            out.append(section_targets(bench, targets, args))
        print("\n\n".join(out))
    finally:
        if not args.root:
            shutil.rmtree(root, ignore_errors=True)
            shutil.rmtree(traffic_root(root), ignore_errors=True)


if __name__ == "__main__":
    main()
