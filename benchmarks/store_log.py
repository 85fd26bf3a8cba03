"""Benchmark: the online store's ``record`` (append a batch, catch up, store the answers), per transaction.

    .venv/bin/python -m benchmarks.store_log [--transactions 20000] [--history 100000] [--redis URL]

For each store (memory, SQLite in a temporary folder, Redis: the URL given, else a redis-server
started on a free loopback port) and each batch size (1, 10, 100, 1,000): ``history`` transactions
loaded first (as materialization does), then ``transactions`` new ones recorded in batches by one
process, one answer of a served answer's size (~700 bytes) each, timestamps increasing (so each
batch also trims the log's oldest entries). Prints µs per transaction and transactions per second.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator

import numpy as np

from benchmarks._measure import machine, table
from fraudflow.records import TxColumns
from fraudflow.store.online.interface import OnlineStore

BATCHES = (1, 10, 100, 1000)
DAY_US = 86_400_000_000
KEEP_US = 37 * DAY_US  # the longest history of the default feature sets
ANSWER = '{"features":{' + ",".join(f'"FEATURE_{i}":{i * 1.2345678901234:.15g}' for i in range(16)) + "}}"
T0_US = 1_538_352_000_000_000  # 2018-10-01


def columns(first: int, n: int, rng: np.random.Generator, span_us: int) -> TxColumns:
    """``n`` transactions with ids from ``first``, their times spread evenly over ``span_us`` after
    transaction ``first``'s (1,000 customers, 2,000 terminals)."""
    ids = np.arange(first, first + n, dtype=np.int64)
    return TxColumns(
        T0_US + ids * span_us // max(n, 1),
        ids,
        rng.integers(0, 1000, n),
        rng.integers(0, 2000, n),
        np.round(rng.exponential(50.0, n), 2),
    )


def run(store: OnlineStore, batch: int, transactions: int, history: int) -> float:
    """Seconds per transaction for ``record`` in batches of ``batch``, after loading ``history``."""
    rng = np.random.default_rng(0)
    store.clear()
    span = KEEP_US  # the history covers the log's keep, the new transactions one more day
    old = columns(0, history, rng, span)
    store.load(
        zip(*(c.tolist() for c in (old.ts_us, old.tx_id, old.customer, old.terminal, old.amount)), strict=True), {}
    )
    since = store.catch_up(0).last_seq
    new = columns(history, transactions, rng, DAY_US)
    new = TxColumns(new.ts_us + span, new.tx_id, new.customer, new.terminal, new.amount)
    answers = [ANSWER] * batch
    t0 = time.perf_counter()
    for a in range(0, transactions, batch):
        part = TxColumns(*(c[a : a + batch] for c in (new.ts_us, new.tx_id, new.customer, new.terminal, new.amount)))
        with store.record(part, since, KEEP_US) as rec:
            rec.answer(answers[: len(part)])
        since = max(rec.caught_up.last_seq, int(rec.seqs.max()))
    return (time.perf_counter() - t0) / transactions


@contextlib.contextmanager
def redis_server(url: str | None) -> Iterator[str | None]:
    """``url``, or a redis-server started on a free loopback port (None when none is installed)."""
    exe = shutil.which("redis-server")
    if url is not None or exe is None:
        yield url
        return
    import socket

    import redis

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as workdir:
        args = [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", workdir]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            client = redis.Redis(port=port)
            for _ in range(100):
                with contextlib.suppress(redis.ConnectionError):
                    client.ping()
                    break
                time.sleep(0.05)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            proc.terminate()
            proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=20_000)
    parser.add_argument("--history", type=int, default=100_000)
    parser.add_argument("--redis", default=None, help="a Redis URL (default: a redis-server started here)")
    args = parser.parse_args()
    from fraudflow.store.online.memory import MemoryStore
    from fraudflow.store.online.redis import RedisStore
    from fraudflow.store.online.sqlite import SQLiteStore

    rows = []
    with tempfile.TemporaryDirectory() as tmp, redis_server(args.redis) as url:
        stores: dict[str, OnlineStore] = {
            "memory": MemoryStore(),
            "SQLite (WAL)": SQLiteStore(f"{tmp}/s.sqlite"),
        }
        if url is not None:
            stores["Redis (loopback)"] = RedisStore(url, namespace="bench-store-log")
        for name, store in stores.items():
            for batch in BATCHES:
                n = max(args.transactions, 50 * batch)  # at least 50 batches
                seconds = run(store, batch, n, args.history)
                rows.append([name, f"{batch:,}", f"{seconds * 1e6:,.1f}", f"{1 / seconds:,.0f}"])
                print(rows[-1], flush=True)
            store.clear()
            store.close()
    print(f"\n{machine()}; {args.history:,} transactions loaded first\n")
    print(table(["store", "batch", "µs per transaction", "transactions/s"], rows))


if __name__ == "__main__":
    main()
