"""Simulation on Spark applies the world's changes as the local engine does (same files)."""

from __future__ import annotations

import filecmp
from pathlib import Path

import pytest

from fraudflow import WorldParams, generate
from fraudflow.simulate.changes import CompromisedTerminals, SpendingShift, UnderThresholdFrauds

pytestmark = [pytest.mark.spark, pytest.mark.xdist_group("spark")]

CHANGED = WorldParams(
    n_customers=300,
    n_terminals=500,
    nb_days=45,
    radius=8.0,
    changes=(
        SpendingShift(20, share=0.5, amount=2.0, tx=1.5),
        CompromisedTerminals(25, count=8),
        UnderThresholdFrauds(25, customers=5),
    ),
)


def test_spark_writes_the_local_engines_files_with_changes(spark, tmp_path: Path) -> None:
    local, distributed = tmp_path / "local", tmp_path / "spark"
    a = generate(local, CHANGED, from_day=10)
    b = generate(distributed, CHANGED, from_day=10, engine="spark", chunk_customers=37)
    assert a.frauds_by_scenario[4] > 0
    assert b.frauds_by_scenario == a.frauds_by_scenario and b.rows == a.rows
    files = sorted(str(p.relative_to(local)) for p in local.rglob("*") if p.is_file())
    different = [f for f in files if not filecmp.cmp(local / f, distributed / f, shallow=False)]
    assert different == []
