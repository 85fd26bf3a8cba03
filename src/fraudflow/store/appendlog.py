"""Append-only lake tables (the prediction log, the labels): files committed one by one.

    <root>/<table>/<column>=YYYY-MM-DD/part-<UTC time>-<random>.parquet

Rows arrive all day long, so a write adds a file to its day instead of replacing the day as the
lake's other tables do; each file is committed whole or not at all:

- on a local disk it is written aside under a hidden name no ``*.parquet`` glob matches, then
  moved into place (``Lake.write_table``: ``os.replace``), so a process killed mid-write leaves at
  most a hidden ``.part-….tmp`` that no reader lists;
- on an object store it is serialized in memory first, then sent in one PUT (``pipe_file``): an
  object appears whole or not at all. No manifest: a manifest makes a *set* of objects replace
  another in one step, which an append never does, and a partition manifest shared by several
  service processes would lose the entries of concurrent writers. Athena, which never reads
  manifests, sees exactly what fraudflow's readers see.

The same row may be committed twice (a batch appended again, the recovery path, two processes
logging the same answer): readers keep one row per key (each table's module says which), and
``compact`` rewrites a day as one file of those rows (the new file first, then the old ones go: a
crash in between leaves duplicates the readers already drop, never a loss).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from fraudflow.errors import LakeError
from fraudflow.lake import COMPRESSION, Lake

if TYPE_CHECKING:
    import pyarrow.dataset as pads


class AppendTable:
    """The append-only table ``name`` of ``lake``, partitioned by the day (``partition``) of column ``day_of``."""

    def __init__(self, lake: Lake, name: str, partition: str, day_of: str) -> None:
        self.lake = lake
        self.name = name
        self.partition = partition
        self.day_of = day_of

    def days(self) -> list[dt.date]:
        """Days holding at least one committed file, ascending."""
        return sorted({day for day, _ in self._files()})

    def files(self, start: dt.date | None = None, end: dt.date | None = None) -> list[str]:
        """Committed files of days ``start .. end`` (inclusive), by day then write order."""
        return [p for day, p in self._files() if (start is None or day >= start) and (end is None or day <= end)]

    def _files(self) -> list[tuple[dt.date, str]]:
        base = self.lake.path(self.name)
        if not self.lake.local:  # other processes append too: no listing cached from before
            self.lake.fs.invalidate_cache(base)
        if not self.lake.fs.exists(base):
            return []
        found = []
        for path in self.lake.fs.glob(f"{base}/{self.partition}=*/part-*.parquet"):
            folder = path.rsplit("/", 2)[-2]
            try:
                found.append((dt.date.fromisoformat(folder.split("=", 1)[1]), path))
            except ValueError:
                continue  # not a partition fraudflow wrote
        return sorted(found)

    def append(self, table: pa.Table) -> list[str]:
        """Commit ``table``'s rows: one new file per day they fall on. Returns the files written."""
        if table.num_rows == 0:
            return []
        import pyarrow.compute as pc

        days = pc.cast(table[self.day_of], pa.date32())
        written = []
        for day in pc.unique(days).to_pylist():
            rows = table.filter(pc.equal(days, pa.scalar(day, pa.date32())))
            written.append(self._commit(day, rows))
        return written

    def _commit(self, day: dt.date, rows: pa.Table) -> str:
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%f")
        path = self.lake.path(
            self.name, f"{self.partition}={day.isoformat()}", f"part-{stamp}-{uuid.uuid4().hex}.parquet"
        )
        if self.lake.local:
            self.lake.write_table(path, rows)
            return path
        sink = pa.BufferOutputStream()
        pq.write_table(rows, sink, compression=COMPRESSION, use_dictionary=False)
        try:
            self.lake.fs.pipe_file(path, sink.getvalue().to_pybytes())
        except OSError as exc:
            raise LakeError(f"could not write {path}: {exc}") from exc
        return path

    def dataset(self, start: dt.date | None = None, end: dt.date | None = None) -> pads.Dataset | None:
        """Committed files of days ``start .. end`` as one Arrow dataset (the partition a date column,
        files written with other columns read by name, missing ones null); None: no such file."""
        import pyarrow.dataset as pads

        files = self.files(start, end)
        if not files:
            return None
        try:
            schemas = [pq.read_schema(f, filesystem=self.lake.fs) for f in files]
            partitioning = pads.partitioning(pa.schema([(self.partition, pa.date32())]), flavor="hive")
            return pads.dataset(
                files,
                schema=pa.unify_schemas([*schemas, partitioning.schema], promote_options="permissive"),
                filesystem=self.lake.fs,
                format="parquet",
                partitioning=partitioning,
                partition_base_dir=self.lake.path(self.name),
            )
        except (OSError, pa.ArrowInvalid) as exc:
            raise LakeError(f"{self.lake.url}/{self.name}: could not read: {exc}") from exc

    def compact(self, day: dt.date, keep: Callable[[pa.Table], pa.Table]) -> int:
        """Rewrite ``day`` as one file of ``keep(rows)``; returns the files it replaced (0 or 1: nothing to do).

        Files committed while it runs are not among those it reads, so they stay.
        """
        files = self.files(day, day)
        if len(files) < 2:
            return 0
        dataset = self.dataset(day, day)
        assert dataset is not None
        rows = keep(dataset.to_table().drop_columns([self.partition]))
        self._commit(day, rows)
        for path in files:
            self.lake.fs.rm(path)
        return len(files)


class BufferedAppender:
    """Rows kept in memory and committed to an ``AppendTable`` together: once ``max_rows`` are
    waiting or the oldest has waited ``max_seconds`` (checked at each ``append``), and at
    ``flush``/``close``, through ``prepare`` (e.g. dropping repeats). Thread-safe. Rows still in
    memory when the process dies are not in the table: the caller keeps them durable elsewhere
    until they are flushed (see ``PredictionLog``).
    """

    def __init__(
        self,
        table: AppendTable,
        max_rows: int,
        max_seconds: float,
        prepare: Callable[[pa.Table], pa.Table] = lambda rows: rows,
    ) -> None:
        self.table = table
        self.prepare = prepare
        self.max_rows = max_rows
        self.max_seconds = max_seconds
        self._pending: list[pa.Table] = []
        self._rows = 0
        self._since = 0.0
        self._lock = threading.Lock()

    @property
    def pending(self) -> int:
        """Rows waiting in memory."""
        return self._rows

    def append(self, rows: pa.Table) -> int:
        """Keep ``rows``; returns the rows committed by this call (0 while they wait)."""
        with self._lock:
            if rows.num_rows:
                if not self._pending:
                    self._since = time.monotonic()
                self._pending.append(rows)
                self._rows += rows.num_rows
            due = self._rows >= self.max_rows or (self._rows and time.monotonic() - self._since >= self.max_seconds)
            return self._flush() if due else 0

    def flush(self) -> int:
        """Commit every waiting row; returns how many."""
        with self._lock:
            return self._flush()

    def _flush(self) -> int:
        if not self._pending:
            return 0
        rows = self.prepare(pa.concat_tables(self._pending, promote_options="permissive"))
        self.table.append(rows)  # on an error the rows stay pending: a later flush tries again
        self._pending, self._rows = [], 0
        return int(rows.num_rows)
