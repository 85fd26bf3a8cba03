"""Features on Spark equal DuckDB's (and so the handbook's) row by row; the store they write too."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from fraudflow import Lake, WorldParams, generate
from fraudflow import schema as s
from fraudflow.distributed import features as spark_features
from fraudflow.distributed.lake_io import read_table
from fraudflow.errors import ConfigError, LakeError
from fraudflow.features import build_features, registry
from fraudflow.features.batch import compute
from fraudflow.features.definitions import FRAUDFLOW
from fraudflow.features.sql import features_sql
from fraudflow.store import offline
from tests.conftest import HANDBOOK, in_ci

pytestmark = [pytest.mark.spark, pytest.mark.xdist_group("spark")]

ORDER = [("TX_DATETIME", "ascending"), ("TRANSACTION_ID", "ascending")]


@pytest.fixture(scope="module")
def handbook_dataset(request: pytest.FixtureRequest) -> Path:
    """The handbook's published transactions when ../shared is here, else the default world.

    The default world is the handbook's dataset: the simulator tests prove it against the oracle
    file and, on any machine, against the golden fingerprints derived from it.
    """
    name = "handbook_lake" if (HANDBOOK / "transactions.parquet").exists() or in_ci() else "default_lake"
    return Path(request.getfixturevalue(name))


def assert_same_rows(expected: pa.Table, got: pa.Table) -> None:
    assert got.num_rows == expected.num_rows
    for name in expected.column_names:
        a, b = expected[name].to_numpy(), got[name].to_numpy()
        if a.dtype.kind == "M":
            a, b = a.astype("datetime64[us]"), b.astype("datetime64[us]")
        if a.dtype.kind == "f":
            np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-9, err_msg=name)
        else:
            np.testing.assert_array_equal(b, a, err_msg=name)


@pytest.mark.slow
def test_spark_features_equal_duckdb_on_40_handbook_days(spark, handbook_dataset: Path) -> None:
    lake = Lake(handbook_dataset)
    days = lake.partitions("transactions")[:40]
    tx = lake.read_partitions("transactions", days, columns=list(s.INPUT_COLUMNS)).sort_by(ORDER)
    expected = compute(tx, FRAUDFLOW, "duckdb")
    got = spark_features.compute(spark, read_table(spark, lake, "transactions", days, list(s.INPUT_COLUMNS)), FRAUDFLOW)
    got = got.toArrow().sort_by(ORDER)
    assert expected.num_rows > 380_000
    assert got.column_names == expected.column_names
    assert_same_rows(expected, got)


def test_build_features_on_spark_writes_the_compiled_engines_store(spark, tmp_path: Path) -> None:
    params = WorldParams(n_customers=250, n_terminals=400, nb_days=50, radius=8.0)
    generate(tmp_path / "a", params)
    generate(tmp_path / "b", params)
    a, b = Lake(tmp_path / "a"), Lake(tmp_path / "b")
    build_features(a, FRAUDFLOW)
    first, last = dt.date(2018, 4, 20), dt.date(2018, 5, 10)
    build_features(b, FRAUDFLOW, engine="spark")  # every day
    summary = build_features(b, FRAUDFLOW, engine="spark", from_date=first, to_date=last)  # a recompute replaces
    assert summary.days == 21 and summary.engine == "spark"
    assert b.partitions("features") == a.partitions("features")
    assert registry.registered(b) == FRAUDFLOW
    for day in a.partitions("features"):
        expected, got = a.read_partitions("features", [day]), b.read_partitions("features", [day])
        assert got.schema == expected.schema == offline.feature_schema(FRAUDFLOW)
        drop = [offline.WRITE_TIME]
        assert_same_rows(expected.drop_columns(drop), got.drop_columns(drop))


def test_spark_dialect_is_the_only_difference(spark) -> None:
    duck, sp = features_sql(FRAUDFLOW), features_sql(FRAUDFLOW, dialect="spark")
    assert "epoch_us(TX_DATETIME)" in duck and "unix_micros(TX_DATETIME)" in sp
    assert "IN (0, 6)" in duck and "IN (1, 7)" in sp
    with pytest.raises(ConfigError, match="unknown feature SQL dialect 'oracle'"):
        features_sql(FRAUDFLOW, dialect="oracle")
    with pytest.raises(ConfigError, match="reads the lake itself"):
        compute(pa.table({"x": [1]}), FRAUDFLOW, "spark")


def test_a_corrupt_partition_is_named_and_nothing_is_written(spark, tmp_path: Path) -> None:
    generate(tmp_path, WorldParams(n_customers=100, n_terminals=200, nb_days=12, radius=8.0))
    lake = Lake(tmp_path)
    bad = lake.partition_file("transactions", dt.date(2018, 4, 5))
    data = Path(bad).read_bytes()
    Path(bad).write_bytes(data[: len(data) // 2])  # truncated, as by a full disk
    with pytest.raises(LakeError, match=r"tx_date=2018-04-05/part-0\.parquet: could not read it as Parquet"):
        build_features(lake, engine="spark")
    assert lake.partitions("features") == []
