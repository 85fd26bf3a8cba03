"""World profiles and the spatial-grid terminal lookup against the all-pairs definition."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudflow.errors import ConfigError
from fraudflow.simulate.world import (
    WorldParams,
    available_terminals,
    build_grid,
    make_profiles,
    terminal_counts,
)


def brute_force(profiles, radius: float) -> list[list[int]]:
    out = []
    for x, y in zip(profiles.customer_x, profiles.customer_y, strict=True):
        d = np.sqrt((x - profiles.terminal_x) ** 2 + (y - profiles.terminal_y) ** 2)
        out.append(np.flatnonzero(d < radius).tolist())
    return out


@given(n_customers=st.integers(1, 60), n_terminals=st.integers(1, 400), radius=st.floats(0.5, 150.0, allow_nan=False))
@settings(max_examples=30, deadline=None)
def test_grid_lookup_equals_all_pairs(n_customers: int, n_terminals: int, radius: float) -> None:
    params = WorldParams(n_customers=n_customers, n_terminals=n_terminals, radius=radius)
    profiles = make_profiles(params)
    grid = build_grid(profiles, radius)
    indptr, ids = available_terminals(profiles, grid, radius, np.arange(n_customers))
    got = [ids[indptr[i] : indptr[i + 1]].tolist() for i in range(n_customers)]
    assert got == brute_force(profiles, radius)
    assert terminal_counts(profiles, grid, radius).tolist() == [len(x) for x in got]


def test_profiles_follow_the_spec_draw_order() -> None:
    """Section 1: per customer x, y, mean_amount, mean_nb_tx_per_day, drawn one by one."""
    profiles = make_profiles(WorldParams(n_customers=3, n_terminals=2))
    rs = np.random.RandomState(0)
    for i in range(3):
        assert profiles.customer_x[i] == rs.uniform(0, 100)
        assert profiles.customer_y[i] == rs.uniform(0, 100)
        assert profiles.mean_amount[i] == rs.uniform(5, 100)
        assert profiles.mean_nb_tx_per_day[i] == rs.uniform(0, 4)
        assert profiles.std_amount[i] == profiles.mean_amount[i] / 2
    rs = np.random.RandomState(1)
    for i in range(2):
        assert profiles.terminal_x[i] == rs.uniform(0, 100)
        assert profiles.terminal_y[i] == rs.uniform(0, 100)


@pytest.mark.parametrize(
    "field,value", [("n_customers", 0), ("n_terminals", -1), ("nb_days", 0), ("radius", 0.0), ("radius", float("nan"))]
)
def test_invalid_parameters_are_refused(field: str, value: float) -> None:
    with pytest.raises(ConfigError, match=field):
        WorldParams(**{field: value})


def test_params_round_trip_and_unknown_keys() -> None:
    p = WorldParams(n_customers=7)
    assert WorldParams.from_json(p.to_json()) == p
    with pytest.raises(ConfigError, match="unknown world parameters"):
        WorldParams.from_json({**p.to_json(), "seed": 3})
