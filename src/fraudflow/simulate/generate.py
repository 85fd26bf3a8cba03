"""Generate a world into the lake: profiles, then transactions by chunks of customers, then days.

Phase 1 runs the compiled kernel over chunks of customers and buckets each chunk's rows by day
(in memory, or spilled to a temporary folder when the world is large). Phase 2 takes one day at a
time: its rows from every chunk, ordered by time (ties: customer, then emission), labelled by the
fraud scenarios, numbered, written as one Parquet partition. Memory is bounded by one chunk plus
a few days, whatever the size of the world; the rows do not depend on the chunk size or the number
of workers.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

import numba
import numpy as np
import pyarrow as pa

from fraudflow import engines, schema
from fraudflow.errors import ConfigError
from fraudflow.lake import Lake
from fraudflow.simulate.frauds import FraudPlan, label_day, plan_frauds
from fraudflow.simulate.kernel import SECONDS_PER_DAY, CustomerBatch, run_customers
from fraudflow.simulate.world import (
    WORLD_FORMAT_VERSION,
    Profiles,
    WorldParams,
    available_terminals,
    build_grid,
    make_profiles,
    terminal_counts,
)

#: ``progress(stage, done, total)``; stages are "customers" and "days".
Progress = Callable[[str, int, int], None]

BYTES_PER_ROW = 8 + 4 + 4 + 8 + 4
CHUNK_BYTES = 256 * 2**20  # rows + terminal lists of one chunk of customers
IN_MEMORY_BYTES = 1024 * 2**20  # above this, chunks are spilled to disk between the phases
SIMULATION_ENGINES = engines.names("simulate")


@dataclass
class Summary:
    """What one ``generate`` call produced."""

    rows: int = 0
    frauds_by_scenario: dict[int, int] = field(default_factory=lambda: {1: 0, 2: 0, 3: 0})
    days: int = 0
    seconds: float = 0.0
    objects_written: int = 0
    first_transaction_id: int = 0

    @property
    def frauds(self) -> int:
        return sum(self.frauds_by_scenario.values())

    @property
    def fraud_rate(self) -> float:
        return self.frauds / self.rows if self.rows else 0.0

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0

    def to_json(self) -> dict[str, object]:
        return {
            "rows": self.rows,
            "frauds": self.frauds,
            "frauds_by_scenario": {str(k): v for k, v in self.frauds_by_scenario.items()},
            "fraud_rate": self.fraud_rate,
            "days": self.days,
            "seconds": round(self.seconds, 3),
            "rows_per_second": round(self.rows_per_second),
            "objects_written": self.objects_written,
        }


class World:
    """Profiles and terminal lists of a world; runs the kernel for any set of customers."""

    def __init__(self, params: WorldParams) -> None:
        self.params = params
        self.profiles: Profiles = make_profiles(params)
        self.grid = build_grid(self.profiles, params.radius)

    def run(self, ids: np.ndarray, from_day: int, to_day: int) -> CustomerBatch:
        """Transactions of days ``from_day..to_day-1`` of customers ``ids``, ascending ids."""
        ids = np.asarray(ids, dtype=np.int64)
        indptr, terminals = available_terminals(self.profiles, self.grid, self.params.radius, ids)
        p = self.profiles
        return run_customers(
            ids, p.mean_nb_tx_per_day[ids], p.mean_amount[ids], p.std_amount[ids], indptr, terminals, from_day, to_day
        )

    def chunk_size(self, n_days: int) -> int:
        p = self.params
        per_customer = 2.0 * n_days * BYTES_PER_ROW + 4.0 * p.n_terminals * np.pi * p.radius**2 / 10_000
        return max(1, min(p.n_customers, int(CHUNK_BYTES / per_customer)))


class _DayBuckets:
    """Each chunk's rows grouped by day; kept in memory or spilled to raw files on disk.

    Spilled columns are read back by slices with plain file reads, not memory maps, so the
    pages of days already written never count towards the process's memory.
    """

    COLUMNS = ("seconds", "customer", "terminal", "amount", "seq")

    def __init__(self, n_days: int, spill_dir: str | None) -> None:
        self.n_days = n_days
        self.spill_dir = spill_dir
        self.chunks: list[tuple[dict[str, np.ndarray | str], np.ndarray]] = []
        self.dtypes: dict[str, np.dtype] = {}

    def add(self, batch: CustomerBatch, from_day: int) -> None:
        day = (batch.seconds // SECONDS_PER_DAY - from_day).astype(np.int16 if self.n_days < 2**15 else np.int32)
        order = np.argsort(day, kind="stable")
        starts = np.zeros(self.n_days + 1, dtype=np.int64)
        np.cumsum(np.bincount(day, minlength=self.n_days), out=starts[1:])
        cols: dict[str, np.ndarray | str] = {}
        for c in self.COLUMNS:
            a = getattr(batch, c)[order]
            self.dtypes[c] = a.dtype
            if self.spill_dir is None:
                cols[c] = a
            else:
                path = os.path.join(self.spill_dir, f"{len(self.chunks)}-{c}.bin")
                a.tofile(path)
                cols[c] = path
        self.chunks.append((cols, starts))

    def count(self, d: int) -> int:
        return sum(int(s[d + 1] - s[d]) for _, s in self.chunks)

    def _slice(self, col: np.ndarray | str, name: str, lo: int, hi: int) -> np.ndarray:
        if isinstance(col, np.ndarray):
            return col[lo:hi]
        dtype = self.dtypes[name]
        return np.fromfile(col, dtype=dtype, count=hi - lo, offset=lo * dtype.itemsize)

    def day(self, d: int) -> dict[str, np.ndarray]:
        """Rows of day ``d`` from every chunk, in time order (ties: customer, then emission)."""
        rows = {
            c: np.concatenate([self._slice(cols[c], c, s[d], s[d + 1]) for cols, s in self.chunks])
            for c in self.COLUMNS
        }
        order = np.argsort(rows["seconds"], kind="stable")  # chunks are in customer order
        return {c: a[order] for c, a in rows.items()}


def generate(
    out: str | os.PathLike[str] | Lake,
    params: WorldParams | None = None,
    *,
    from_day: int = 0,
    workers: int | None = None,
    chunk_customers: int | None = None,
    spill: bool | None = None,
    progress: Progress | None = None,
    engine: str = "local",
    spark_master: str | None = None,
) -> Summary:
    """Generate days ``from_day..params.nb_days-1`` of the world ``params`` into the lake ``out``.

    Rows are exactly those of one run over days ``0..params.nb_days-1``, whatever ``from_day``,
    ``workers`` (threads of the compiled kernel and of the writers), ``chunk_customers`` and
    ``spill`` (keep chunks on disk between the phases; by default only for large worlds).
    ``engine="spark"`` runs the same kernel in Spark tasks (``spark_master``: default ``local[*]``;
    ``workers`` and ``spill`` are Spark's business there) and writes the same files.
    """
    params = params or WorldParams()
    lake = out if isinstance(out, Lake) else Lake(out)
    if not 0 <= from_day < params.nb_days:
        raise ConfigError(f"from_day must be in 0..{params.nb_days - 1}, got {from_day}")
    if chunk_customers is not None and chunk_customers < 0:  # 0: the default size
        raise ConfigError(f"chunk_customers must be at least 1, got {chunk_customers}")
    run: SimulationEngine = engines.resolve("simulate", engine)
    return run(
        lake,
        params,
        from_day=from_day,
        workers=workers,
        chunk_customers=chunk_customers,
        spill=spill,
        progress=progress,
        spark_master=spark_master,
    )


class SimulationEngine(Protocol):
    """What a simulation engine implements (registered in ``fraudflow.engines``, "simulate").

    Arguments are checked for range by ``generate``; an engine rejects the ones it does not use.
    """

    def __call__(
        self,
        lake: Lake,
        params: WorldParams,
        *,
        from_day: int,
        workers: int | None,
        chunk_customers: int | None,
        spill: bool | None,
        progress: Progress | None,
        spark_master: str | None,
    ) -> Summary: ...


def generate_local(
    lake: Lake,
    params: WorldParams,
    *,
    from_day: int,
    workers: int | None,
    chunk_customers: int | None,
    spill: bool | None,
    progress: Progress | None,
    spark_master: str | None,
) -> Summary:
    """The local engine: the compiled kernel in threads (``spark_master`` is ignored)."""
    if workers is not None:
        if workers < 1:
            raise ConfigError(f"workers must be at least 1, got {workers}")
        numba.set_num_threads(min(workers, numba.config.NUMBA_NUM_THREADS))  # type: ignore[attr-defined]
    report = progress or (lambda stage, done, total: None)
    t0 = time.perf_counter()
    world = World(params)
    summary = Summary()
    summary.objects_written += write_world(lake, world, from_day)

    n_days = params.nb_days - from_day
    size = chunk_customers or world.chunk_size(n_days)
    if spill is None:
        spill = (2.0 * params.n_customers * n_days * BYTES_PER_ROW) > IN_MEMORY_BYTES
    with tempfile.TemporaryDirectory(prefix="fraudflow-") if spill else contextlib.nullcontext() as tmp:
        buckets = _DayBuckets(n_days, tmp)
        n_before, max_day = 0, -1
        for lo in range(0, params.n_customers, size):
            hi = min(lo + size, params.n_customers)
            batch = world.run(np.arange(lo, hi), from_day, params.nb_days)
            buckets.add(batch, from_day)
            n_before += batch.n_before
            max_day = max(max_day, batch.last_day)
            report("customers", hi, params.n_customers)
        plan = plan_frauds(
            params.n_customers,
            params.n_terminals,
            from_day,
            params.nb_days,
            max_day,
            lambda ids, to_day: world.run(ids, 0, to_day),
        )
        summary.first_transaction_id = n_before
        _write_days(lake, params, from_day, buckets, plan, n_before, summary, workers, report)
    summary.seconds = time.perf_counter() - t0
    return summary


def _write_days(
    lake: Lake,
    params: WorldParams,
    from_day: int,
    buckets: _DayBuckets,
    plan: FraudPlan,
    first_id: int,
    summary: Summary,
    workers: int | None,
    report: Progress,
) -> None:
    counts = [buckets.count(d) for d in range(buckets.n_days)]
    offsets = np.concatenate([[0], np.cumsum(counts)]) + first_id

    def one(d: int) -> np.ndarray:
        table, scen = day_table(params, from_day + d, buckets.day(d), plan, int(offsets[d]))
        if table.num_rows:
            lake.write_partition("transactions", params.start_date + dt.timedelta(days=from_day + d), table)
        return np.bincount(scen, minlength=4)

    n_threads = workers or os.cpu_count() or 1
    with ThreadPoolExecutor(max_workers=n_threads) as pool:
        for i, per_scenario in enumerate(pool.map(one, range(buckets.n_days)), 1):
            for s in (1, 2, 3):
                summary.frauds_by_scenario[s] += int(per_scenario[s])
            report("days", i, buckets.n_days)
    summary.rows = int(offsets[-1] - first_id)
    summary.days = sum(1 for c in counts if c)
    summary.objects_written += summary.days


def day_table(
    params: WorldParams, day: int, rows: dict[str, np.ndarray], plan: FraudPlan, first_id: int
) -> tuple[pa.Table, np.ndarray]:
    """One day's rows as the transactions table (schema.TRANSACTIONS), and its scenarios."""
    amount, fraud, scenario = label_day(day, rows["customer"], rows["terminal"], rows["seq"], rows["amount"], plan)
    n = len(amount)
    seconds = rows["seconds"]
    epoch = np.datetime64(params.start_date, "ns")
    columns = [
        np.arange(first_id, first_id + n, dtype=np.int64),
        epoch + seconds.astype("timedelta64[s]"),
        rows["customer"].astype(np.int64),
        rows["terminal"].astype(np.int64),
        amount,
        seconds,
        np.full(n, day, dtype=np.int64),
        fraud,
        scenario,
    ]
    return schema.arrow_table(columns, schema.TRANSACTIONS), scenario


def write_world(lake: Lake, world: World, from_day: int) -> int:
    """Write ``world/`` (profiles and world.json); refuse to mix two different worlds."""
    params = world.params
    path = lake.path("world", "world.json")
    if lake.fs.exists(path):
        old = lake.read_json(path)
        old_params = WorldParams.from_json(old["params"])
        same = {k: v for k, v in old_params.to_json().items() if k != "nb_days"}
        new = {k: v for k, v in params.to_json().items() if k != "nb_days"}
        if same != new:
            raise ConfigError(
                f"{lake.url} holds another world ({same}); refusing to write {new} into it. "
                "Use a new --out, or the same world parameters."
            )
        params = WorldParams.from_json({**old["params"], "nb_days": max(old_params.nb_days, params.nb_days)})
    p = world.profiles
    customers = schema.arrow_table(
        [
            np.arange(world.params.n_customers, dtype=np.int64),
            p.customer_x,
            p.customer_y,
            p.mean_amount,
            p.std_amount,
            p.mean_nb_tx_per_day,
            terminal_counts(p, world.grid, params.radius),
        ],
        schema.CUSTOMERS,
    )
    terminals = schema.arrow_table(
        [np.arange(params.n_terminals, dtype=np.int64), p.terminal_x, p.terminal_y], schema.TERMINALS
    )
    lake.write_table(lake.path("world", "customers.parquet"), customers)
    lake.write_table(lake.path("world", "terminals.parquet"), terminals)
    lake.write_json(path, {"format_version": WORLD_FORMAT_VERSION, "params": params.to_json()})
    return 3
