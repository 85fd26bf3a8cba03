"""The simulator end to end: exactness against the handbook, invariance, continuation."""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
from pathlib import Path

import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest

from fraudflow import ConfigError, Lake, WorldParams, generate
from tests.conftest import golden, handbook_file, read_lake_table
from tests.fingerprint import transactions_fingerprint

ROW = "TX_DATETIME, CUSTOMER_ID, TERMINAL_ID, TX_AMOUNT, TX_TIME_SECONDS, TX_TIME_DAYS, TX_FRAUD, TX_FRAUD_SCENARIO"
SMALL = WorldParams(n_customers=400, n_terminals=600, nb_days=70, radius=8.0)


@pytest.mark.slow
def test_default_world_equals_the_handbook_dataset(default_lake: Path) -> None:
    """The multiset of rows without TRANSACTION_ID, amounts bit-identical (SIMULATOR.md, 5)."""
    oracle = handbook_file("transactions.parquet")
    con = duckdb.connect()
    ours = f"select {ROW} from read_parquet('{default_lake}/transactions/*/*.parquet', hive_partitioning=true)"
    theirs = f"select {ROW} from read_parquet('{oracle}')"
    extra = con.execute(f"select count(*) from ({ours} except all {theirs})").fetchone()
    missing = con.execute(f"select count(*) from ({theirs} except all {ours})").fetchone()
    total = con.execute(f"select count(*) from ({ours})").fetchone()
    assert (extra, missing, total) == ((0,), (0,), (1_754_155,))


@pytest.mark.slow
def test_default_world_matches_the_golden_fingerprints(default_lake: Path) -> None:
    """The same check on any machine: per-day counts and hashes derived once from the oracle."""
    got = transactions_fingerprint(read_lake_table(default_lake))
    assert got == golden("handbook_transactions.json")["days"]


@pytest.mark.slow
def test_default_world_summary_figures(default_lake: Path) -> None:
    t = read_lake_table(default_lake)
    scen = np.bincount(t["TX_FRAUD_SCENARIO"].to_numpy(), minlength=4)
    assert t.num_rows == 1_754_155
    assert scen[1:].tolist() == [973, 9077, 4631]
    assert t["TRANSACTION_ID"].to_numpy().tolist() == list(range(t.num_rows))
    dt_ = t["TX_DATETIME"].to_numpy()
    assert str(dt_.min()) == "2018-04-01T00:00:31.000000000"
    assert str(dt_.max()) == "2018-09-30T23:59:57.000000000"
    assert (np.diff(t["TX_TIME_SECONDS"].to_numpy()) >= 0).all()


def test_rows_do_not_depend_on_chunks_workers_or_spilling(tmp_path: Path) -> None:
    reference = tmp_path / "ref"
    generate(reference, SMALL, workers=2)
    expected = read_lake_table(reference)
    assert expected.num_rows > 10_000
    for i, kw in enumerate(
        [
            dict(chunk_customers=1, workers=1),
            dict(chunk_customers=37, spill=True),
            dict(chunk_customers=150, workers=2, spill=True),
        ]
    ):
        root = tmp_path / f"run{i}"
        generate(root, SMALL, **kw)
        assert read_lake_table(root).equals(expected), kw


def test_a_continued_world_equals_one_longer_run(tmp_path: Path) -> None:
    generate(tmp_path / "once", SMALL)
    generate(tmp_path / "twice", dataclasses.replace(SMALL, nb_days=50))
    generate(tmp_path / "twice", SMALL, from_day=50)
    once = Lake(tmp_path / "once")
    twice = Lake(tmp_path / "twice")
    new_days = [SMALL.start_date + dt.timedelta(days=d) for d in range(50, 70)]
    got = twice.read_partitions("transactions", new_days)
    assert got.num_rows > 0 and got["TX_FRAUD"].to_numpy().sum() > 0
    assert got.equals(once.read_partitions("transactions", new_days))
    assert twice.read_json(twice.path("world", "world.json"))["params"]["nb_days"] == 70


@pytest.mark.slow
def test_continuing_the_default_world_past_the_handbook(tmp_path: Path, default_lake: Path) -> None:
    """Spec example: days 0..199 at once equal 0..182 then 183..199 for the new days."""
    long = WorldParams(nb_days=200)
    generate(tmp_path / "long", long)
    # continue a copy: the session's default lake is shared by tests that expect its 183 days
    continued = tmp_path / "continued"
    shutil.copytree(default_lake, continued)
    generate(continued, long, from_day=183)
    days = [long.start_date + dt.timedelta(days=d) for d in range(183, 200)]
    assert (
        Lake(continued)
        .read_partitions("transactions", days)
        .equals(Lake(tmp_path / "long").read_partitions("transactions", days))
    )


def test_duckdb_reads_the_lake_as_written(tmp_path: Path) -> None:
    generate(tmp_path, SMALL)
    con = duckdb.connect()
    n, days, first = con.execute(
        f"select count(*), count(distinct tx_date), min(tx_date) from "
        f"read_parquet('{tmp_path}/transactions/*/*.parquet', hive_partitioning=true)"
    ).fetchone()
    assert (n, days) == (read_lake_table(tmp_path).num_rows, 70)
    assert first == SMALL.start_date
    world = pq.read_table(tmp_path / "world" / "customers.parquet")
    assert world.num_rows == SMALL.n_customers


def test_generating_again_replaces_and_never_duplicates(tmp_path: Path) -> None:
    generate(tmp_path, SMALL)
    before = read_lake_table(tmp_path)
    generate(tmp_path, SMALL)
    assert read_lake_table(tmp_path).equals(before)
    leftovers = [p for p in tmp_path.rglob("*") if p.name.startswith(".")]
    assert leftovers == []


def test_another_world_is_refused_in_the_same_lake(tmp_path: Path) -> None:
    generate(tmp_path, SMALL)
    before = read_lake_table(tmp_path)
    with pytest.raises(ConfigError, match="holds another world"):
        generate(tmp_path, dataclasses.replace(SMALL, n_customers=401))
    assert read_lake_table(tmp_path).equals(before)


def test_from_day_out_of_range_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="from_day"):
        generate(tmp_path, SMALL, from_day=70)
