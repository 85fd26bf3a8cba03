"""Generate a world into the lake: the frame of a run, the same whatever engine does the work.

A run has two heavy phases, done by an engine (a ``SimulationEngine``, chosen by name through
``fraudflow.engines``): phase 1 runs the compiled kernel over chunks of customers and keeps their
rows by day; phase 2 takes one day at a time, its rows from every chunk in time order (ties:
customer, then emission), and writes it with ``DayWriter``. Everything else is done here, once:
the checks, the world's files, the cut into chunks (``Run.chunks``), the fraud plan and the
numbering between the phases, and the run's ``SimulationSummary``. The rows therefore do not depend on the
engine, the chunk size or the number of workers.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import os
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Protocol

import numpy as np

from fraudflow import engines, schema
from fraudflow.errors import ConfigError
from fraudflow.lake import Lake, open_lake
from fraudflow.simulate.changes import UnderThresholdFrauds, change_to_json
from fraudflow.simulate.frauds import N_SCENARIOS, FraudPlan, label_day, plan_frauds
from fraudflow.simulate.kernel import CustomerBatch, Customers, run_customers
from fraudflow.simulate.world import (
    WORLD_FORMAT_VERSION,
    Profiles,
    WorldParams,
    available_terminals,
    build_grid,
    customer_phases,
    make_profiles,
    terminal_counts,
)

#: ``progress(stage, done, total)``; stages are "customers" and "days" (and an engine's own).
Progress = Callable[[str, int, int], None]

#: a day's rows as engines hand them to ``DayWriter``: these columns of ``CustomerBatch``
ROW_COLUMNS = ("seconds", "customer", "terminal", "amount", "seq")
BYTES_PER_ROW = 8 + 4 + 4 + 8 + 4
CHUNK_BYTES = 256 * 2**20  # rows + terminal lists of one chunk of customers


@dataclass
class SimulationSummary:
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

    def run(self, ids: np.ndarray, from_day: int, to_day: int, as_of: int | None = None) -> CustomerBatch:
        """Transactions of days ``from_day..to_day-1`` of customers ``ids``, ascending ids.

        ``as_of``: the world with only the spending shifts in force on that day (None: all of them).
        """
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        indptr, terminals = available_terminals(self.profiles, self.grid, self.params.radius, ids)
        ph = customer_phases(self.profiles, self.params.changes, ids, as_of)
        customers = Customers(ids, ph.lam, ph.mean, ph.std, indptr, terminals, ph.phase_ptr, ph.phase_day)
        return run_customers(customers, from_day, to_day)


def _quiet(stage: str, done: int, total: int) -> None:
    """A ``Progress`` that reports nothing."""


@dataclass(frozen=True)
class Run:
    """One ``generate`` call as its engine receives it: where, which world, which days, how."""

    lake: Lake
    params: WorldParams
    from_day: int
    chunk_customers: int | None = None  # customers per chunk; None or 0: sized by ``chunks``
    workers: int | None = None  # local engine: threads of the kernel and of the writers
    spill: bool | None = None  # local engine: keep chunks on disk between the phases (None: if large)
    spark_master: str | None = None  # spark engine: its master URL (None: ``local[*]``)
    progress: Progress = _quiet

    @property
    def days(self) -> range:
        """The days written: ``from_day..params.nb_days-1``."""
        return range(self.from_day, self.params.nb_days)

    def chunks(self, tasks: int = 1) -> list[range]:
        """The customer ids cut into consecutive ranges, to be spread over ``tasks`` tasks.

        ``chunk_customers`` ids each if given; else as many as fit in ``CHUNK_BYTES`` (their rows
        and terminal lists), and no more than one task's share.
        """
        p = self.params
        per_customer = 2.0 * len(self.days) * BYTES_PER_ROW + 4.0 * p.n_terminals * np.pi * p.radius**2 / 10_000
        fit = int(CHUNK_BYTES / per_customer)
        size = self.chunk_customers or max(1, min(math.ceil(p.n_customers / tasks), fit))
        return [range(lo, min(lo + size, p.n_customers)) for lo in range(0, p.n_customers, size)]


@dataclass(frozen=True)
class Totals:
    """What phase 1 found, all chunks together."""

    rows_per_day: list[int]  # rows of each of ``Run.days``
    rows_before: int  # rows before ``from_day``: the first TRANSACTION_ID of the run
    last_day: int  # the last day with a row (days before ``from_day`` included), -1 if none


@dataclass(frozen=True)
class DayWriter:
    """Phase 2's step for one day, the same in every engine: label the rows, number them, write them.

    Plain data, so that Spark ships it to its tasks.
    """

    params: WorldParams
    plan: FraudPlan
    first_ids: dict[int, int]  # day -> its first TRANSACTION_ID

    def __call__(self, lake: Lake, day: int, rows: Mapping[str, np.ndarray]) -> np.ndarray:
        """Write day ``day`` (``rows``: ``ROW_COLUMNS`` in time order, ties: customer, then emission).

        Returns the day's rows per fraud scenario (index 0: genuine).
        """
        customer, terminal = rows["customer"], rows["terminal"]
        amount, fraud, scenario = label_day(day, customer, terminal, rows["seq"], rows["amount"], self.plan)
        n = len(amount)
        if n:
            first = self.first_ids[day]
            seconds = rows["seconds"]
            columns = [
                np.arange(first, first + n, dtype=np.int64),
                np.datetime64(self.params.start_date, "ns") + seconds.astype("timedelta64[s]"),
                customer.astype(np.int64),
                terminal.astype(np.int64),
                amount,
                seconds,
                np.full(n, day, dtype=np.int64),
                fraud,
                scenario,
            ]
            table = schema.arrow_table(columns, schema.TRANSACTIONS)
            lake.write_partition("transactions", self.params.start_date + dt.timedelta(days=day), table)
        return np.bincount(scenario, minlength=N_SCENARIOS)


class Simulation(Protocol):
    """An engine opened for one run: phase 1, then phase 2."""

    def run_customers(self, world: World) -> Totals:
        """Phase 1: the kernel over chunks of ``run.chunks(...)``, days ``run.days``; keep the rows."""
        ...

    def write_days(self, write: DayWriter) -> np.ndarray:
        """Phase 2: every day through ``write``; return the rows per fraud scenario over all days."""
        ...


class SimulationEngine(Protocol):
    """What a simulation engine implements (registered in ``fraudflow.engines``, "simulate").

    ``engine(run)`` refuses the options of ``run`` it does not take, before anything is written;
    entered, it holds what the run needs (threads, a spill folder, a Spark session) until the end.
    """

    def __call__(self, run: Run) -> AbstractContextManager[Simulation]: ...


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
) -> SimulationSummary:
    """Generate days ``from_day..params.nb_days-1`` of the world ``params`` into the lake ``out``.

    Rows are exactly those of one run over days ``0..params.nb_days-1``, whatever ``from_day``,
    ``workers`` (threads of the compiled kernel and of the writers), ``chunk_customers`` and
    ``spill`` (keep chunks on disk between the phases; by default only for large worlds).
    ``engine="spark"`` runs the same kernel in Spark tasks (``spark_master``: default ``local[*]``;
    ``workers`` and ``spill`` are Spark's business there) and writes the same files.
    """
    lake = open_lake(out)
    params = recorded_changes_kept(lake, params or WorldParams())
    if not 0 <= from_day < params.nb_days:
        raise ConfigError(f"from_day must be in 0..{params.nb_days - 1}, got {from_day}")
    if chunk_customers is not None and chunk_customers < 0:  # 0: the default size
        raise ConfigError(f"chunk_customers must be at least 1, got {chunk_customers}")
    run = Run(
        lake,
        params,
        from_day,
        chunk_customers=chunk_customers,
        workers=workers,
        spill=spill,
        spark_master=spark_master,
        progress=progress or _quiet,
    )
    open_engine: SimulationEngine = engines.resolve("simulate", engine)
    with open_engine(run) as simulation:
        t0 = time.perf_counter()
        world = World(params)
        world_objects = write_world(lake, world, from_day)
        totals = simulation.run_customers(world)
        plan = plan_frauds(
            params.n_customers,
            params.n_terminals,
            from_day,
            params.nb_days,
            totals.last_day,
            lambda ids, to_day, as_of: world.run(ids, 0, to_day, as_of),
            params.changes,
        )
        first_ids = accumulate(totals.rows_per_day[:-1], initial=totals.rows_before)
        scenarios = simulation.write_days(DayWriter(params, plan, dict(zip(run.days, first_ids, strict=True))))
    days = sum(1 for n in totals.rows_per_day if n)
    kinds = (1, 2, 3, 4) if any(isinstance(c, UnderThresholdFrauds) for c in params.changes) else (1, 2, 3)
    return SimulationSummary(
        rows=sum(totals.rows_per_day),
        frauds_by_scenario={s: int(scenarios[s]) for s in kinds},
        days=days,
        seconds=time.perf_counter() - t0,
        objects_written=world_objects + days,
        first_transaction_id=totals.rows_before,
    )


def recorded_world(lake: Lake) -> WorldParams | None:
    """The world recorded in ``lake`` (world/world.json), or None."""
    path = lake.path("world", "world.json")
    return WorldParams.from_json(lake.read_json(path)["params"]) if lake.fs.exists(path) else None


def recorded_changes_kept(lake: Lake, params: WorldParams) -> WorldParams:
    """``params`` with the changes recorded in ``lake`` added: a continued world keeps applying them.

    Refuses another world (parameters other than ``nb_days`` and ``changes`` differ), and a new
    change starting on a day the lake already holds (those days were generated without it).
    """
    old = recorded_world(lake)
    if old is None:
        return params
    same = {k: v for k, v in old.to_json().items() if k not in ("nb_days", "changes")}
    new = {k: v for k, v in params.to_json().items() if k not in ("nb_days", "changes")}
    if same != new:
        raise ConfigError(
            f"{lake.url} holds another world ({same}); refusing to write {new} into it. "
            "Use a new --out, or the same world parameters."
        )
    added = [c for c in params.changes if c not in old.changes]
    for c in added:
        if c.from_day < old.nb_days:
            raise ConfigError(
                f"{lake.url} already holds days 0..{old.nb_days - 1} generated without the change {change_to_json(c)}; "
                f"a new change must start on day {old.nb_days} or later (or use a new --out)"
            )
    return dataclasses.replace(params, changes=(*old.changes, *added))


def write_world(lake: Lake, world: World, from_day: int) -> int:
    """Write ``world/`` (profiles and world.json); ``world.params`` went through ``recorded_changes_kept``."""
    params = world.params
    path = lake.path("world", "world.json")
    old = recorded_world(lake)
    if old is not None:
        params = dataclasses.replace(params, nb_days=max(old.nb_days, params.nb_days))
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
