"""The offline store: incremental builds, point in time, write times, the registry."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from pathlib import Path

import pytest

from fraudflow import Lake, WorldParams, generate
from fraudflow.errors import FeatureError, LakeError
from fraudflow.features import HANDBOOK, FeatureSet, build_features, registry
from fraudflow.features.definitions import customer_spending
from tests.conftest import read_lake_table
from tests.features.test_oracle import assert_features_equal

WORLD = WorldParams(n_customers=300, n_terminals=400, nb_days=70, radius=10.0)


def day(i: int) -> dt.date:
    return WORLD.start_date + dt.timedelta(days=i)


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    generate(tmp_path, WORLD)
    return Lake(tmp_path)


def test_incremental_days_equal_one_full_build(lake: Lake, tmp_path_factory: pytest.TempPathFactory) -> None:
    full = Lake(tmp_path_factory.mktemp("full"))
    generate(full, WORLD)
    build_features(full)
    build_features(lake, to_date=day(39))
    summary = build_features(lake, from_date=day(40))
    assert summary.days == 30
    got = read_lake_table(lake.url, "features")
    assert_features_equal(got, read_lake_table(full.url, "features"), HANDBOOK.names)


def test_a_day_needs_only_its_37_days_of_history(lake: Lake) -> None:
    build_features(lake)
    before = lake.read_partitions("features", [day(60)])
    for i in range(0, 60 - 37):  # drop every transaction older than the history a day needs
        lake.remove_partition("transactions", day(i))
    lake.remove_partition("features", day(60))
    build_features(lake, from_date=day(60), to_date=day(60))
    after = lake.read_partitions("features", [day(60)])
    assert_features_equal(after, before, HANDBOOK.names)


def test_later_days_never_change_earlier_features(tmp_path: Path) -> None:
    short = dataclasses.replace(WORLD, nb_days=40)
    generate(tmp_path, short)
    build_features(tmp_path)
    lake = Lake(tmp_path)
    first = lake.read_partitions("features", [day(i) for i in range(40)])
    generate(tmp_path, WORLD, from_day=40)  # the world goes on
    build_features(tmp_path, from_date=day(40))
    assert lake.read_partitions("features", [day(i) for i in range(40)]).equals(first)


def test_recomputing_a_day_replaces_it(lake: Lake) -> None:
    build_features(lake)
    build_features(lake, from_date=day(10), to_date=day(10))
    files = list(Path(lake.partition_dir("features", day(10))).iterdir())
    assert [p.name for p in files] == ["part-0.parquet"]
    assert read_lake_table(lake.url, "features").num_rows == read_lake_table(lake.url).num_rows


def test_point_in_time_read_returns_what_was_known(lake: Lake) -> None:
    build_features(lake, to_date=day(29))
    time.sleep(0.01)
    between = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    time.sleep(0.01)
    build_features(lake, from_date=day(30))
    known_then = registry.read_features(lake, as_of=between)
    assert known_then.num_rows == lake.read_partitions("transactions", [day(i) for i in range(30)]).num_rows
    assert registry.read_features(lake).num_rows == read_lake_table(lake.url).num_rows
    window = registry.read_features(lake, day(5), day(6))
    assert set(window["TX_DATETIME"].to_numpy().astype("datetime64[D]").astype(dt.date)) == {day(5), day(6)}


def test_the_registry_refuses_to_mix_versions(lake: Lake) -> None:
    build_features(lake)
    other = FeatureSet((*HANDBOOK.features, *customer_spending(3)), "other")
    with pytest.raises(FeatureError, match="refusing to add version"):
        build_features(lake, other)
    with pytest.raises(FeatureError, match=f"expected {other.version}"):
        registry.read_features(lake, version=other.version)
    assert registry.read_features(lake, version=HANDBOOK.version).num_rows > 0
    build_features(lake, other, rebuild=True)
    assert registry.registered(lake) == other
    assert "CUSTOMER_ID_NB_TX_3DAY_WINDOW" in read_lake_table(lake.url, "features").column_names


def test_no_transactions_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(LakeError, match="no transactions"):
        build_features(tmp_path)
    with pytest.raises(LakeError, match="no features yet"):
        registry.read_features(Lake(tmp_path))
