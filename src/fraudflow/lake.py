"""The lake: one root URL (a local folder or any fsspec URL), Hive-partitioned Parquet tables.

    <root>/world/            customers.parquet, terminals.parquet, world.json
    <root>/transactions/     tx_date=YYYY-MM-DD/part-0.parquet
    <root>/features/         tx_date=YYYY-MM-DD/part-0.parquet

Writes are atomic and idempotent (writing a day again replaces it, never duplicates it):

- on a local disk a file is written aside under a hidden name no ``*.parquet`` glob matches, then
  moved into place (``os.replace``);
- on an object store (S3 and the like: no rename) a partition's data goes to a new object, then
  a small ``_manifest.json`` naming it is written last. Readers trust only what a manifest lists,
  so a write interrupted before its manifest leaves the previous version in force; objects the
  manifest no longer names are deleted after it is written.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from fraudflow.errors import LakeError
from fraudflow.schema import PARTITION_COLUMN

if TYPE_CHECKING:
    import pyarrow.dataset as pads

PART_NAME = "part-0.parquet"
MANIFEST = "_manifest.json"
# snappy: the Parquet default of Spark and Athena, and twice as fast to write as zstd here.
# Dictionary encoding is off: ids and amounts barely repeat, and it doubled write times.
COMPRESSION = "snappy"


class Lake:
    """A lake rooted at ``url``.

    ``storage_options`` go to fsspec as they are. For ``s3://`` (or ``s3a://``) URLs,
    ``endpoint_url`` names an S3-compatible endpoint; without one the lake reads
    ``AWS_ENDPOINT_URL_S3``, then ``AWS_ENDPOINT_URL``, as boto does (an endpoint in
    ``storage_options["client_kwargs"]`` is kept as it is).
    """

    def __init__(
        self,
        url: str | os.PathLike[str],
        storage_options: dict[str, Any] | None = None,
        *,
        endpoint_url: str | None = None,
    ) -> None:
        self.url = str(url).rstrip("/") or "/"
        options = dict(storage_options or {})
        if self.url.startswith(("s3://", "s3a://")):
            self.url = "s3://" + self.url.split("://", 1)[1]
            endpoint = endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
            client = options.get("client_kwargs", {})
            if endpoint and "endpoint_url" not in client:
                options["client_kwargs"] = {**client, "endpoint_url": endpoint}
        self.storage_options = options  # what another process (a Spark task) needs to open it too
        try:
            self.fs, self.root = fsspec.core.url_to_fs(self.url, **options)
        except (ImportError, ValueError) as exc:
            hint = "for s3:// install the aws extra: pip install 'fraudflow[aws]'"
            raise LakeError(f"{self.url}: {exc} ({hint})") from exc
        self.local = "file" in _protocols(self.fs)

    def __repr__(self) -> str:
        return f"Lake({self.url!r})"

    # paths -----------------------------------------------------------------------------------
    def path(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def partition_dir(self, table: str, day: dt.date) -> str:
        return self.path(table, f"{PARTITION_COLUMN}={day.isoformat()}")

    def partition_file(self, table: str, day: dt.date) -> str:
        return f"{self.partition_dir(table, day)}/{PART_NAME}"

    def dataset(self, table: str) -> pads.Dataset:
        """The table's complete partitions as one Arrow dataset, ``tx_date`` a date column."""
        import pyarrow.dataset as pads  # imports pandas: only the SQL paths that need a dataset pay for it

        files = [p for d in self.partitions(table) for p in self.partition_files(table, d)]
        partitioning = pads.partitioning(pa.schema([(PARTITION_COLUMN, pa.date32())]), flavor="hive")
        return pads.dataset(
            files, filesystem=self.fs, format="parquet", partitioning=partitioning, partition_base_dir=self.path(table)
        )

    def for_sql(self, dataset: pads.Dataset) -> pads.Dataset | pa.Table:
        """What DuckDB in this process is given to scan: on a local lake the dataset itself (read as
        the query needs it), on a remote one its table, read whole here first. DuckDB scanning a
        dataset on fsspec's S3 from its own threads can deadlock: its scan holds the interpreter's
        lock while it waits for pyarrow's readers, which wait for fsspec's event loop, which waits for
        that lock (seen once: the S3 test against moto hung in a clean-clone CI run, its threads as
        described). A read here releases the lock while pyarrow reads. For lakes too big for
        memory, query them with Spark or Athena."""
        return dataset if self.local else dataset.to_table()

    def exists(self, *parts: str) -> bool:
        return bool(self.fs.exists(self.path(*parts)))

    def partitions(self, table: str) -> list[dt.date]:
        """Days present in ``table`` (complete ones only), ascending."""
        base = self.path(table)
        if not self.fs.exists(base):
            return []
        marker = PART_NAME if self.local else MANIFEST
        present = {p.rstrip("/") for p in self.fs.find(base, maxdepth=2)} if not self.local else None
        days = []
        for entry in self.fs.ls(base, detail=False):
            name = entry.rstrip("/").rsplit("/", 1)[-1]
            if not name.startswith(f"{PARTITION_COLUMN}="):
                continue
            done = f"{entry.rstrip('/')}/{marker}"
            if (present is not None and done in present) or (present is None and self.fs.exists(done)):
                days.append(dt.date.fromisoformat(name.split("=", 1)[1]))
        return sorted(days)

    def partition_files(self, table: str, day: dt.date) -> list[str]:
        """The data files of one day: the part file, or what the partition's manifest lists."""
        directory = self.partition_dir(table, day)
        if self.local:
            path = f"{directory}/{PART_NAME}"
            return [path] if self.fs.exists(path) else []
        manifest = f"{directory}/{MANIFEST}"
        if not self.fs.exists(manifest):
            return []
        return [f"{directory}/{name}" for name in self.read_json(manifest)["files"]]

    # writes ----------------------------------------------------------------------------------
    def write_table(self, path: str, table: pa.Table) -> None:
        """Write ``table`` as Parquet at ``path`` atomically."""
        if not self.local:  # one object PUT is atomic: the old version stays until the new one is whole
            try:
                with self.fs.open(path, "wb") as f:
                    pq.write_table(table, f, compression=COMPRESSION, use_dictionary=False)
            except OSError as exc:
                raise LakeError(f"could not write {path}: {exc}") from exc
            return
        parent = path.rsplit("/", 1)[0]
        tmp = f"{parent}/.{path.rsplit('/', 1)[-1]}.{uuid.uuid4().hex}.tmp"
        try:
            self.fs.makedirs(parent, exist_ok=True)
            # Arrow's own file writer: no Python file object, no GIL per write
            pq.write_table(table, tmp, compression=COMPRESSION, use_dictionary=False)
            self._move(tmp, path)
        except OSError as exc:
            self._discard(tmp)
            raise LakeError(f"could not write {path}: {exc}") from exc

    def write_partition(self, table: str, day: dt.date, data: pa.Table) -> str:
        if self.local:
            path = self.partition_file(table, day)
            self.write_table(path, data)
            return path
        directory = self.partition_dir(table, day)
        name = f"part-{uuid.uuid4().hex}.parquet"
        self.write_table(f"{directory}/{name}", data)
        self.write_json(f"{directory}/{MANIFEST}", {"files": [name], "rows": data.num_rows})  # the commit
        for stale in self.fs.ls(directory, detail=False):
            if stale.endswith(".parquet") and stale.rsplit("/", 1)[-1] != name:
                self.fs.rm(stale)
        return f"{directory}/{name}"

    def write_json(self, path: str, obj: Any) -> None:
        if not self.local:
            with self.fs.open(path, "w") as f:
                f.write(json.dumps(obj, indent=2, sort_keys=True) + "\n")
            return
        parent = path.rsplit("/", 1)[0]
        tmp = f"{parent}/.{path.rsplit('/', 1)[-1]}.{uuid.uuid4().hex}.tmp"
        self.fs.makedirs(parent, exist_ok=True)
        with self.fs.open(tmp, "w") as f:
            json.dump(obj, f, indent=2, sort_keys=True)
            f.write("\n")
        self._move(tmp, path)

    def read_json(self, path: str) -> Any:
        try:
            with self.fs.open(path, "r") as f:
                return json.load(f)
        except FileNotFoundError as exc:
            raise LakeError(f"{self.url}: missing {path}") from exc
        except json.JSONDecodeError as exc:
            raise LakeError(f"{path}: not valid JSON ({exc})") from exc

    def read_partitions(self, table: str, days: Iterable[dt.date], columns: list[str] | None = None) -> pa.Table:
        """The given days of ``table``, concatenated in the order given (read in parallel)."""
        paths = [p for d in days for p in self.partition_files(table, d)]
        if not paths:
            raise LakeError(f"{self.url}/{table}: no partitions to read")
        try:
            if self.local:
                return _read_files(paths, columns)
            import pyarrow.dataset as pads

            return pads.dataset(paths, filesystem=self.fs, format="parquet").to_table(columns=columns)
        except (OSError, pa.ArrowInvalid) as exc:
            raise LakeError(f"{self.url}/{table}: could not read partitions: {exc}") from exc

    def remove_partition(self, table: str, day: dt.date) -> None:
        path = self.partition_dir(table, day)
        if self.fs.exists(path):
            self.fs.rm(path, recursive=True)

    def _move(self, src: str, dst: str) -> None:
        """Put a file written aside in place (local lakes only: object stores never write aside)."""
        os.replace(src, dst)  # atomic on POSIX

    def _discard(self, path: str) -> None:
        try:
            if self.fs.exists(path):
                self.fs.rm(path)
        except OSError:
            pass


def open_lake(data: str | os.PathLike[str] | Lake) -> Lake:
    """``data`` itself when it is a Lake, else the lake at that URL or path."""
    return data if isinstance(data, Lake) else Lake(data)


def _read_files(paths: list[str], columns: list[str] | None) -> pa.Table:
    """Local Parquet files concatenated in order, read in parallel by Arrow's own readers.

    Plain ``pyarrow.parquet``, not ``pyarrow.dataset``: the dataset module imports pandas, which
    cost a new process 0.5 s (1.2 s without a bytecode cache) before it read anything.
    """

    def read(path: str) -> pa.Table:
        return pq.ParquetFile(path).read(columns=columns, use_threads=False)

    if len(paths) == 1:
        return pq.ParquetFile(paths[0]).read(columns=columns)
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return pa.concat_tables(pool.map(read, paths))


def _protocols(fs: fsspec.AbstractFileSystem) -> tuple[str, ...]:
    proto = fs.protocol
    return (proto,) if isinstance(proto, str) else tuple(proto)
