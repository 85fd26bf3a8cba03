"""The online path replays the handbook and gives its published features (FEATURES.md, Online).

Two oracles: the handbook's ``features.parquet`` (beside the project, in ``../shared``), and on
any clone the committed golden fingerprints of it, checked on the default world fraudflow
regenerates. The second check runs through each online store: memory over every day, SQLite and
Redis over days streamed after a materialized start (the service's own start-up path).
"""

from __future__ import annotations

import datetime as dt
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from fraudflow.features import HANDBOOK, compute
from fraudflow.lake import Lake
from fraudflow.records import Transaction
from fraudflow.serving.engine import Scorer
from fraudflow.store.online.interface import OnlineStore
from fraudflow.store.online.materialize import materialize
from fraudflow.store.online.memory import MemoryStore
from fraudflow.store.online.redis import RedisStore
from fraudflow.store.online.sqlite import SQLiteStore
from tests.conftest import ROOT, SWAPPED_PAIRS, golden, handbook_file, read_lake_table
from tests.features.test_oracle import CUSTOMER_FEATURES, assert_features_equal
from tests.fingerprint import features_fingerprint

DAYS = 40
#: The stores other than memory stream these days after a materialized start, past the 37 days of
#: history a feature looks back on. SQLite streams 9 days, longer than the 7-day label delay, so
#: labels fed back during the stream reach the terminal risk features of its last days; Redis one
#: (its store reads each entity's whole history per transaction: about 300 tx/s here).
STREAMED = {"sqlite": range(100, 109), "redis": range(100, 101)}


def replay(tx: pa.Table, store: OnlineStore | None = None, group: int = 1) -> pa.Table:
    """The transactions in TRANSACTION_ID order, ``group`` at a time (the service's group commit), each
    group's fraud labels delivered right after it."""
    scorer = Scorer(store or MemoryStore(), HANDBOOK)
    cols = [tx[c].to_pylist() for c in ("TRANSACTION_ID", "TX_DATETIME", "CUSTOMER_ID", "TERMINAL_ID", "TX_AMOUNT")]
    txs = [Transaction(*values) for values in zip(*cols, strict=True)]
    frauds = tx["TX_FRAUD"].to_pylist()
    rows = []
    for a in range(0, len(txs), group):
        served = scorer.features(txs[a : a + group])
        assert not any(s.duplicate for s in served)
        rows.extend(s.features for s in served)
        labels = {txs[i].transaction_id: 1 for i in range(a, min(a + group, len(txs))) if frauds[i]}
        if labels:
            scorer.store.add_labels(labels)
    return pa.table({"TRANSACTION_ID": cols[0], **{n: [r[n] for r in rows] for n in HANDBOOK.names}})


def days(tx: pa.Table, wanted: range) -> pa.Table:
    return tx.filter(pc.is_in(tx["TX_TIME_DAYS"], pa.array(list(wanted), tx["TX_TIME_DAYS"].type)))


def assert_same_fingerprint(have: object, want: object, where: str = "") -> None:
    """Equal as the golden JSON reads: floats within 1e-9 (FEATURES.md), everything else exactly."""
    if isinstance(want, dict):
        assert isinstance(have, dict) and sorted(have) == sorted(want), where
        for key, value in want.items():
            assert_same_fingerprint(have[key], value, f"{where}/{key}")
    elif isinstance(want, float) and not isinstance(have, str):
        assert math.isclose(float(have), want, rel_tol=1e-9, abs_tol=1e-9), (where, have, want)  # type: ignore[arg-type]
    else:
        assert have == want, (where, have, want)


def assert_golden(tx: pa.Table, features: pa.Table, wanted: range) -> None:
    """The fingerprints of the replayed days are the handbook's (tests/golden)."""
    expected = golden("handbook_features.json")["days"]
    got = features_fingerprint(tx, features, HANDBOOK)
    assert sorted(got, key=int) == [str(d) for d in wanted]
    for day in got:
        assert_same_fingerprint(got[day], expected[day], f"day {day}")


@pytest.mark.slow
def test_replaying_40_days_gives_the_published_features() -> None:
    tx = pq.read_table(handbook_file("transactions.parquet"))
    tx = tx.filter(pa.compute.less(tx["TX_TIME_DAYS"], DAYS))
    # groups of 100, as the service's group commit: each transaction still sees exactly the ones
    # before it, and a label a group later than right after its transaction reaches no window (the
    # risk windows wait 7 days for it)
    got = replay(tx, group=100)
    oracle = pq.read_table(handbook_file("features.parquet")).slice(0, tx.num_rows)
    oracle = oracle.append_column("TX_AMOUNT", tx["TX_AMOUNT"])
    documented = np.isin(got["TRANSACTION_ID"].to_numpy(), np.array(SWAPPED_PAIRS).ravel())
    assert documented.sum() == 6  # the pairs of the first 40 days
    assert_features_equal(got, oracle, HANDBOOK.names, skip=documented)
    assert_features_equal(got, oracle, [n for n in HANDBOOK.names if n not in CUSTOMER_FEATURES])
    # and row for row the batch engine's answer, the documented rows included
    batch = compute(tx, HANDBOOK)
    assert_features_equal(got, batch, HANDBOOK.names)


@pytest.mark.slow
def test_memory_replay_of_61_days_gives_the_golden_fingerprints(default_lake: Path) -> None:
    """On any clone: the first 61 days of the regenerated world (past the 30-day customer window,
    the 37-day terminal history and the 7-day label delay), streamed from an empty store. All 183
    days are `python -m benchmarks.online_oracle` (4 minutes), which exits 1 on any mismatch."""
    tx = days(read_lake_table(default_lake), range(61))
    assert_golden(tx, replay(tx, group=500), range(61))


def materialized_before(lake: Path, first: int, into: Path) -> Lake:
    """A lake of the days a start on day ``first`` materializes (the partitions linked, not copied)."""
    start = dt.date(2018, 4, 1)
    for d in range(max(0, first - HANDBOOK.history_days - 2), first):
        name = f"tx_date={start + dt.timedelta(days=d)}"
        (into / "transactions").mkdir(parents=True, exist_ok=True)
        (into / "transactions" / name).symlink_to(lake / "transactions" / name, target_is_directory=True)
    return Lake(into)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_store_streams_after_materializing_give_the_golden_fingerprints(
    kind: str, default_lake: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Materialize up to day 99 as the service starts, then stream the next days, labels fed back."""
    store: OnlineStore
    if kind == "sqlite":
        store = SQLiteStore(str(tmp_path / "online.sqlite"))
    else:
        store = RedisStore(request.getfixturevalue("redis_url"), namespace=f"golden-{tmp_path.name}")
    try:
        streamed = STREAMED[kind]
        summary = materialize(materialized_before(default_lake, streamed[0], tmp_path / "lake"), store, HANDBOOK)
        assert summary.through == dt.date(2018, 4, 1) + dt.timedelta(days=streamed[0] - 1)
        assert summary.days >= HANDBOOK.history_days + 1
        tx = days(read_lake_table(default_lake), streamed)
        assert_golden(tx, replay(tx, store), streamed)
    finally:
        store.clear()
        store.close()


def run_benchmark(handbook: Path) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "benchmarks.online_oracle", "--handbook", str(handbook)]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_the_oracle_benchmark_exits_non_zero_on_a_mismatch(default_lake: Path, tmp_path: Path) -> None:
    """benchmarks/online_oracle.py on a 1-day oracle (the batch engine's): 0 as is, 1 with one value off."""
    tx = days(read_lake_table(default_lake), range(1))
    features = compute(tx, HANDBOOK)
    pq.write_table(tx, tmp_path / "transactions.parquet")
    pq.write_table(features, tmp_path / "features.parquet")
    ok = run_benchmark(tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert f"| transactions replayed | {tx.num_rows:,} |" in ok.stdout
    name, row = "TERMINAL_ID_NB_TX_7DAY_WINDOW", 1234
    column = features[name].to_numpy().copy()
    column[row] += 1
    pq.write_table(
        features.set_column(features.column_names.index(name), name, pa.array(column)), tmp_path / "features.parquet"
    )
    off = run_benchmark(tmp_path)
    assert off.returncode == 1, off.stdout + off.stderr
    assert f"TRANSACTION_ID {features['TRANSACTION_ID'][row].as_py()}: {name}" in off.stdout
