"""The frame every simulation engine shares: chunks, and arguments refused before anything is written."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from fraudflow import ConfigError, Lake, WorldParams, generate
from fraudflow.simulate.generate import CHUNK_BYTES, Run

SMALL = WorldParams(n_customers=400, n_terminals=600, nb_days=70, radius=8.0)


@pytest.mark.parametrize("tasks", [1, 3, 8, 1000])
def test_chunks_cut_the_customers_in_order_a_tasks_share_at_most(tmp_path: Path, tasks: int) -> None:
    chunks = Run(Lake(tmp_path), SMALL, from_day=0).chunks(tasks)
    assert [i for c in chunks for i in c] == list(range(SMALL.n_customers))
    assert len(chunks) == min(tasks, SMALL.n_customers)
    assert max(len(c) for c in chunks) == math.ceil(SMALL.n_customers / tasks)


def test_chunks_of_a_large_world_fit_in_the_chunk_budget(tmp_path: Path) -> None:
    large = WorldParams(n_customers=2_000_000, nb_days=3650)
    chunks = Run(Lake(tmp_path), large, from_day=0).chunks()
    assert 1 < len(chunks) < large.n_customers
    per_customer_rows = 2.0 * large.nb_days * (8 + 4 + 4 + 8 + 4)
    assert len(chunks[0]) * per_customer_rows <= CHUNK_BYTES


def test_chunk_customers_sets_the_size_whatever_the_tasks(tmp_path: Path) -> None:
    chunks = Run(Lake(tmp_path), SMALL, from_day=0, chunk_customers=37).chunks(tasks=8)
    assert [len(c) for c in chunks] == [37] * 10 + [30]


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        (dict(from_day=70), "from_day must be in 0..69"),
        (dict(chunk_customers=-1), "chunk_customers must be at least 1"),
        (dict(workers=0), "workers must be at least 1"),
        (dict(engine="flink"), "unknown simulation engine 'flink'"),
    ],
)
def test_bad_arguments_are_refused_before_anything_is_written(tmp_path: Path, kw: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        generate(tmp_path, SMALL, **kw)
    assert list(tmp_path.iterdir()) == []
