"""The local simulation engine: the compiled kernel in threads, then one day per writer thread.

Phase 1 runs the chunks one after the other (the kernel is parallel over a chunk's customers) and
buckets each chunk's rows by day, in memory, or spilled to a temporary folder when the world is
large. Phase 2 writes the days from a thread pool: a day's rows from every chunk, in time order.
Memory is bounded by one chunk plus a few days, whatever the size of the world.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from fraudflow.errors import ConfigError
from fraudflow.simulate.frauds import N_SCENARIOS
from fraudflow.simulate.generate import BYTES_PER_ROW, ROW_COLUMNS, DayWriter, Run, Totals, World
from fraudflow.simulate.kernel import SECONDS_PER_DAY, CustomerBatch

IN_MEMORY_BYTES = 1024 * 2**20  # above this, chunks are spilled to disk between the phases


@contextlib.contextmanager
def simulate(run: Run) -> Iterator[LocalSimulation]:
    """The local engine (``simulate.generate.SimulationEngine``, registered in ``fraudflow.engines``).

    ``run.workers`` threads (default: all cores); ``run.spark_master`` is ignored.
    """
    if run.workers is not None:
        if run.workers < 1:
            raise ConfigError(f"workers must be at least 1, got {run.workers}")
        numba.set_num_threads(min(run.workers, numba.config.NUMBA_NUM_THREADS))  # type: ignore[attr-defined]
    n_days = len(run.days)
    spill = run.spill
    if spill is None:
        spill = (2.0 * run.params.n_customers * n_days * BYTES_PER_ROW) > IN_MEMORY_BYTES
    with tempfile.TemporaryDirectory(prefix="fraudflow-") if spill else contextlib.nullcontext() as tmp:
        yield LocalSimulation(run, _DayBuckets(n_days, tmp))


class LocalSimulation:
    """The local engine opened for one run; keeps phase 1's rows by day until phase 2."""

    def __init__(self, run: Run, buckets: _DayBuckets) -> None:
        self.run = run
        self.buckets = buckets

    def run_customers(self, world: World) -> Totals:
        run = self.run
        n_customers = run.params.n_customers
        rows_before, last_day = 0, -1
        for chunk in run.chunks():
            batch = world.run(np.arange(chunk.start, chunk.stop), run.from_day, run.params.nb_days)
            self.buckets.add(batch, run.from_day)
            rows_before += batch.n_before
            last_day = max(last_day, batch.last_day)
            run.progress("customers", chunk.stop, n_customers)
        return Totals([self.buckets.count(d) for d in range(len(run.days))], rows_before, last_day)

    def write_days(self, write: DayWriter) -> np.ndarray:
        run = self.run
        n_days = len(run.days)

        def one(d: int) -> np.ndarray:
            return write(run.lake, run.from_day + d, self.buckets.day(d))

        scenarios = np.zeros(N_SCENARIOS, dtype=np.int64)
        with ThreadPoolExecutor(max_workers=run.workers or os.cpu_count() or 1) as pool:
            for i, per_scenario in enumerate(pool.map(one, range(n_days)), 1):
                scenarios += per_scenario
                run.progress("days", i, n_days)
        return scenarios


class _DayBuckets:
    """Each chunk's rows grouped by day; kept in memory or spilled to raw files on disk.

    Spilled columns are read back by slices with plain file reads, not memory maps, so the
    pages of days already written never count towards the process's memory.
    """

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
        for c in ROW_COLUMNS:
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
            c: np.concatenate([self._slice(cols[c], c, s[d], s[d + 1]) for cols, s in self.chunks]) for c in ROW_COLUMNS
        }
        order = np.argsort(rows["seconds"], kind="stable")  # chunks are in customer order
        return {c: a[order] for c, a in rows.items()}
