"""Replay: continue the world past the lake's last day and send it to a running service.

The continuation is the simulator's (exactly the rows a longer run gives), written to the lake so
that batch and online can be compared afterwards (``fraudflow consistency``). Transactions go out
in time order at a target rate through ``concurrency`` connections; each fraud label is sent once
it is 7 simulated days old, as a chargeback would arrive. With ``concurrency`` 1 every transaction
is scored after all earlier ones, so the online features equal the batch ones exactly.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
import pyarrow as pa

from fraudflow import schema
from fraudflow.errors import ConfigError, LakeError
from fraudflow.lake import Lake
from fraudflow.simulate import WorldParams, generate
from fraudflow.training import metrics

LABEL_DELAY_US = 7 * 86_400_000_000


@dataclass
class ReplayStats:
    sent: int = 0
    ok: int = 0
    errors: int = 0
    alerts: int = 0
    labels_sent: int = 0
    latencies: list[float] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies, q) * 1000) if self.latencies else 0.0

    @property
    def rate(self) -> float:
        return self.sent / max(time.perf_counter() - self.started, 1e-9)


def continue_world(lake: Lake, days: int) -> pa.Table:
    """Generate the ``days`` after the lake's world and return their transactions."""
    if days < 1:
        raise ConfigError(f"--days must be at least 1, got {days}")
    path = lake.path("world", "world.json")
    if not lake.fs.exists(path):
        raise LakeError(f"{lake.url} has no simulated world to continue (world/world.json); replay needs one")
    params = WorldParams.from_json(lake.read_json(path)["params"])
    first = params.nb_days
    longer = dataclasses.replace(params, nb_days=first + days)
    generate(lake, longer, from_day=first)
    start = longer.start_date
    return lake.read_partitions("transactions", [start + dt.timedelta(days=d) for d in range(first, first + days)])


def request_bodies(table: pa.Table) -> list[dict[str, Any]]:
    """The JSON bodies of ``POST /v1/score`` for the transactions of ``table``, in its order."""
    fields = (schema.TRANSACTION_ID, schema.TX_DATETIME, schema.CUSTOMER_ID, schema.TERMINAL_ID, schema.TX_AMOUNT)
    columns = {c: table[c].to_pylist() for c in fields if c != schema.TX_DATETIME}
    when = table[schema.TX_DATETIME].to_numpy().astype("datetime64[us]").tolist()
    columns[schema.TX_DATETIME] = [t.isoformat() for t in when]
    return [{c: columns[c][i] for c in fields} for i in range(table.num_rows)]


async def _send(
    url: str,
    table: pa.Table,
    rate: float,
    concurrency: int,
    headers: dict[str, str],
    stats: ReplayStats,
    scores: np.ndarray,
    on_tick: Callable[[ReplayStats], None],
) -> None:
    bodies = request_bodies(table)
    ts = schema.timestamps_us(table[schema.TX_DATETIME])
    frauds = np.flatnonzero(table[schema.TX_FRAUD].to_numpy() == 1)
    next_label = 0
    queue: asyncio.Queue[int] = asyncio.Queue(maxsize=concurrency * 2)
    t0 = time.perf_counter()

    async with httpx.AsyncClient(
        base_url=url, headers=headers, timeout=10, limits=httpx.Limits(max_connections=concurrency)
    ) as client:

        async def worker() -> None:
            while True:
                i = await queue.get()
                if i < 0:
                    return
                began = time.perf_counter()
                try:
                    r = await client.post("/v1/score", json=bodies[i])
                    stats.latencies.append(time.perf_counter() - began)
                    if r.status_code == 200:
                        body = r.json()
                        stats.ok += 1
                        stats.alerts += int(body["alert"])
                        scores[i] = body["score"]
                    else:
                        stats.errors += 1
                except httpx.HTTPError:
                    stats.errors += 1

        workers = [asyncio.create_task(worker()) for _ in range(concurrency)]
        for i in range(len(bodies)):
            due = t0 + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            # chargebacks: every fraud at least 7 simulated days older than this transaction
            ready = []
            while next_label < len(frauds) and ts[frauds[next_label]] <= ts[i] - LABEL_DELAY_US:
                ready.append(
                    {schema.TRANSACTION_ID: bodies[frauds[next_label]][schema.TRANSACTION_ID], schema.TX_FRAUD: 1}
                )
                next_label += 1
            if ready:
                await client.post("/v1/labels", json={"labels": ready})
                stats.labels_sent += len(ready)
            await queue.put(i)
            stats.sent += 1
            if stats.sent % 200 == 0:
                on_tick(stats)
        for _ in workers:
            await queue.put(-1)
        await asyncio.gather(*workers)
    on_tick(stats)


def replay(
    lake: Lake,
    url: str,
    *,
    days: int = 1,
    rate: float = 500.0,
    concurrency: int = 8,
    api_key: str | None = None,
    on_tick: Callable[[ReplayStats], None] | None = None,
) -> dict[str, Any]:
    """Continue the world by ``days``, send it to ``url``; return live throughput and quality."""
    if rate <= 0 or concurrency < 1:
        raise ConfigError("--rate must be positive and --concurrency at least 1")
    table = continue_world(lake, days)
    stats = ReplayStats()
    scores = np.full(table.num_rows, np.nan)
    headers = {"X-API-Key": api_key} if api_key else {}
    asyncio.run(_send(url, table, rate, concurrency, headers, stats, scores, on_tick or (lambda _: None)))
    done = ~np.isnan(scores)
    quality = metrics.performance(
        table[schema.TX_DATETIME].to_numpy().astype("datetime64[D]")[done],
        table[schema.CUSTOMER_ID].to_numpy()[done],
        table[schema.TX_FRAUD].to_numpy()[done],
        scores[done],
    )
    figures = quality.to_json()
    auc, ap, cp, _ = metrics.metric_names(quality.k)
    return {
        "transactions": table.num_rows,
        "answered": stats.ok,
        "errors": stats.errors,
        "alerts": stats.alerts,
        "labels_sent": stats.labels_sent,
        "seconds": time.perf_counter() - stats.started,
        "rate": stats.rate,
        "p50_ms": stats.percentile(50),
        "p95_ms": stats.percentile(95),
        "p99_ms": stats.percentile(99),
        **{name: figures[name] for name in (auc, ap, cp)},
    }
