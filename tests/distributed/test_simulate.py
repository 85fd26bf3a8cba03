"""Simulation on Spark writes the local engine's files, byte for byte."""

from __future__ import annotations

import filecmp
from pathlib import Path

import pytest

from fraudflow import ConfigError, WorldParams, generate

pytestmark = [pytest.mark.spark, pytest.mark.xdist_group("spark")]

SMALL = WorldParams(n_customers=300, n_terminals=500, nb_days=45, radius=8.0)


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize("from_day", [0, 17])
def test_spark_writes_the_local_engines_files(spark, tmp_path: Path, from_day: int) -> None:
    local, distributed = tmp_path / "local", tmp_path / "spark"
    a = generate(local, SMALL, from_day=from_day)
    b = generate(distributed, SMALL, from_day=from_day, engine="spark", chunk_customers=37)
    assert a.rows > 10_000 and a.frauds > 0
    assert b.to_json() | {"seconds": 0, "rows_per_second": 0} == a.to_json() | {"seconds": 0, "rows_per_second": 0}
    assert b.first_transaction_id == a.first_transaction_id
    files = _files(local)
    assert len([f for f in files if f.startswith("transactions/")]) == SMALL.nb_days - from_day
    assert _files(distributed) == files
    different = [f for f in files if not filecmp.cmp(local / f, distributed / f, shallow=False)]
    assert different == []


def test_spark_engine_refuses_bad_arguments(spark, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="from_day"):
        generate(tmp_path, SMALL, from_day=SMALL.nb_days, engine="spark")
    with pytest.raises(ConfigError, match=r"Spark sets the parallelism \(--spark-master local\[N\]\)"):
        generate(tmp_path, SMALL, engine="spark", workers=2)
    with pytest.raises(ConfigError, match="unknown simulation engine 'flink'"):
        generate(tmp_path, SMALL, engine="flink")
