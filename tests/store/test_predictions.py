"""The prediction log: each answered transaction once, whole files only (also after a SIGKILL), DuckDB SQL."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fraudflow.lake import Lake
from fraudflow.records import Transaction, TxColumns
from fraudflow.store import predictions
from fraudflow.store.predictions import Prediction, PredictionBatch, PredictionLog

START = dt.datetime(2018, 4, 1, 22)
NAMES = ["TX_AMOUNT", "TERMINAL_ID_RISK_7DAY_WINDOW"]


def batch(
    first: int, n: int, *, model_id: str = "m1", served: dt.datetime = dt.datetime(2024, 1, 1)
) -> PredictionBatch:
    """``n`` answers from TRANSACTION_ID ``first``, one a minute from 22:00 (crossing midnight after 120)."""
    txs = [Transaction(i, START + dt.timedelta(minutes=i), i % 7, i % 11, 10.0 + i) for i in range(first, first + n)]
    scores = (np.arange(first, first + n) % 10) / 10
    vectors = np.column_stack([[t.amount for t in txs], scores / 2])
    return PredictionBatch(TxColumns.of(txs), scores, 0.5, model_id, NAMES, vectors, served)


def ids(table: pa.Table) -> list[int]:
    return list(table["TRANSACTION_ID"].to_pylist())


def test_columns_types_and_sql_over_the_vector(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    with PredictionLog(lake) as log:
        log.append(batch(0, 200))
    got = predictions.read(lake)
    assert got.num_rows == 200 and ids(got) == list(range(200))
    assert str(got.schema.field("FEATURES").type) == "struct<TX_AMOUNT: double, TERMINAL_ID_RISK_7DAY_WINDOW: double>"
    assert [str(got.schema.field(c).type) for c in ("SCORE", "ALERT", "THRESHOLD", "MODEL_ID", "SERVED_AT")] == [
        "double",
        "bool",
        "double",
        "string",
        "timestamp[us]",
    ]
    assert got["ALERT"].to_pylist() == [s >= 0.5 for s in got["SCORE"].to_pylist()]
    # partitioned by the transaction's day; a file per day per flush
    assert sorted(p.name for p in (tmp_path / "predictions").iterdir()) == ["tx_date=2018-04-01", "tx_date=2018-04-02"]
    con = duckdb.connect()
    assert predictions.register(con, lake)
    row = con.execute(
        "SELECT count(*), sum(FEATURES.TX_AMOUNT) FROM predictions WHERE tx_date = DATE '2018-04-02'"
    ).fetchone()
    assert row == (80, sum(10.0 + i for i in range(120, 200)))


def test_each_transaction_once_however_often_it_is_appended(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    log = PredictionLog(lake)
    log.append(batch(0, 50))
    log.append(batch(0, 50, served=dt.datetime(2024, 1, 2)))  # the same answers again, in the same flush
    assert log.flush() == 50
    log.append(batch(25, 50, served=dt.datetime(2024, 1, 3)))  # half of them again, in another file
    log.flush()
    assert predictions.write_missing(lake, batch(0, 100, served=dt.datetime(2024, 1, 4)).to_arrow()) == 25
    assert predictions.write_missing(lake, batch(0, 100).to_arrow()) == 0  # recovery run twice
    got = predictions.read(lake)
    assert ids(got) == list(range(100))
    served = dict(zip(ids(got), got["SERVED_AT"].to_pylist(), strict=True))
    assert served[0] == served[49] == dt.datetime(2024, 1, 1)  # the first served copy is the one kept
    assert served[50] == dt.datetime(2024, 1, 3) and served[75] == dt.datetime(2024, 1, 4)
    con = duckdb.connect()
    predictions.register(con, lake)
    raw = con.execute("SELECT count(*) FROM predictions_log").fetchone()
    assert raw == (125,)  # the copies are in the files: the readers drop them


def test_compaction_leaves_one_file_per_day_and_the_same_rows(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    log = PredictionLog(lake, max_rows=30)
    for first in range(0, 200, 20):
        log.append(batch(first, 40))  # overlapping batches: copies in many files
    log.flush()
    before = predictions.read(lake)
    table = predictions.log_table(lake)
    assert len(table.files()) > 4
    for day in table.days():
        assert predictions.compact(lake, day) > 1
    assert len(table.files()) == 2
    assert predictions.read(lake).equals(before)
    assert sum(pq.read_metadata(f).num_rows for f in table.files()) == 220  # the copies are gone


def test_rows_wait_in_memory_until_a_flush(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    log = PredictionLog(lake, max_rows=100, max_seconds=3600)
    assert log.append(batch(0, 60)) == 0 and log.pending == 60
    assert predictions.read(lake).num_rows == 0
    assert log.append(batch(60, 60)) == 120 and log.pending == 0  # max_rows reached: committed
    assert predictions.read(lake).num_rows == 120


def test_vectors_of_models_with_other_inputs_are_read_by_name(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    other = batch(10, 10, model_id="m2")
    other = PredictionBatch(other.txs, other.scores, 0.3, "m2", ["TX_AMOUNT", "NEW"], other.vectors, other.served_at)
    with PredictionLog(lake) as log:
        log.append(batch(0, 10))
    with PredictionLog(lake) as log:
        log.append(other)
    got = predictions.read(lake)
    features = got["FEATURES"].to_pylist()
    assert features[0] == {"TX_AMOUNT": 10.0, "TERMINAL_ID_RISK_7DAY_WINDOW": 0.0, "NEW": None}
    assert features[12] == {"TX_AMOUNT": 22.0, "TERMINAL_ID_RISK_7DAY_WINDOW": None, "NEW": 0.1}
    assert got["MODEL_ID"].to_pylist() == ["m1"] * 10 + ["m2"] * 10


def test_rows_recovered_from_elsewhere(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    with PredictionLog(lake) as log:
        log.append(batch(0, 3))
    tx = Transaction(7, dt.datetime(2018, 4, 3, 9), 1, 2, 5.5)
    rows = [
        Prediction(tx, 0.9, True, 0.5, "m1", {"TX_AMOUNT": 5.5}, dt.datetime(2024, 1, 1, 12)),
        Prediction(tx, 0.1, False, 0.5, "m1", {"TX_AMOUNT": 5.5}, dt.datetime(2024, 1, 1, 13)),  # a repeat
    ]
    assert predictions.write_missing(lake, rows) == 1
    got = predictions.read(lake, dt.date(2018, 4, 3))
    assert ids(got) == [7] and got["SCORE"].to_pylist() == [0.9]
    assert ids(predictions.read(lake)) == [0, 1, 2, 7]


#: A writer that commits a file per batch, printing the ids committed; its WRITE-th Parquet write
#: writes half the file's bytes where it was asked to, then the process SIGKILLs itself.
KILLED_WRITER = """
import os, signal, sys
import pyarrow as pa, pyarrow.parquet as pq
from fraudflow.lake import Lake
from fraudflow.store.predictions import PredictionLog
sys.path.insert(0, {tests!r})
from store.test_predictions import batch

original, calls = pq.write_table, [0]

def half_then_die(table, where, **options):
    calls[0] += 1
    if calls[0] < {write}:
        return original(table, where, **options)
    sink = pa.BufferOutputStream()
    original(table, sink, **options)
    data = sink.getvalue().to_pybytes()
    with open(where, "wb") as f:
        f.write(data[: len(data) // 2])
    os.kill(os.getpid(), signal.SIGKILL)

pq.write_table = half_then_die
log = PredictionLog(Lake({root!r}), max_rows=1)
for first in range(0, 10_000, 100):
    log.append(batch(first, 100))
    print(first, flush=True)
"""


def committed_files_are_whole(root: Path) -> list[Path]:
    files = sorted(root.glob("predictions/*/*.parquet"))
    for f in files:
        pq.read_table(f)  # raises on a half file
    return files


@pytest.mark.parametrize("write", [1, 6])
def test_a_writer_killed_mid_write_leaves_only_whole_committed_files(tmp_path: Path, write: int) -> None:
    script = KILLED_WRITER.format(tests=str(Path(__file__).parent.parent), root=str(tmp_path), write=write)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    committed = [int(line) for line in proc.stdout.split()]
    # the batch of 100 from 0 crosses midnight (two files); later ones fall on one day each
    assert len(committed) == {1: 0, 6: 4}[write]
    files = committed_files_are_whole(tmp_path)
    assert len(files) == write - 1
    assert sorted(ids(predictions.read(Lake(tmp_path)))) == [
        i for first in committed for i in range(first, first + 100)
    ]
    # the recovery path completes the log, each transaction once
    everything = batch(0, 1000).to_arrow()
    assert predictions.write_missing(Lake(tmp_path), everything) == 1000 - 100 * len(committed)
    assert ids(predictions.read(Lake(tmp_path))) == list(range(1000))


KILLED_AT_RANDOM = """
import sys
from fraudflow.lake import Lake
from fraudflow.store.predictions import PredictionLog
sys.path.insert(0, {tests!r})
from store.test_predictions import batch

log = PredictionLog(Lake({root!r}), max_rows=1)
for first in range(0, 10_000_000, 20_000):
    log.append(batch(first, 20_000))
    print(first, flush=True)
"""


def test_a_writer_killed_at_any_moment_loses_nothing_committed(tmp_path: Path) -> None:
    script = KILLED_AT_RANDOM.format(tests=str(Path(__file__).parent.parent), root=str(tmp_path))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    committed = [int(proc.stdout.readline()) for _ in range(5)]
    os.kill(proc.pid, signal.SIGKILL)  # somewhere in the writes that follow
    proc.wait()
    committed_files_are_whole(tmp_path)
    got = set(ids(predictions.read(Lake(tmp_path))))
    assert set(range(committed[-1] + 20_000)) <= got  # every batch committed is there


def test_on_s3_files_are_committed_without_manifests(s3_root: str) -> None:
    lake = Lake(s3_root)
    with PredictionLog(lake) as log:
        log.append(batch(0, 150))
        log.append(batch(100, 100))
    assert ids(predictions.read(lake)) == list(range(200))
    table = predictions.log_table(lake)
    assert not lake.fs.glob(lake.path("predictions", "*", "_manifest.json"))
    predictions.compact(lake, dt.date(2018, 4, 2))
    assert len(table.files(dt.date(2018, 4, 2))) == 1
    assert ids(predictions.read(lake)) == list(range(200))
