"""The Spark engine on S3 (moto's standalone server): ``s3a://`` and ``s3://`` name one lake."""

from __future__ import annotations

from pathlib import Path

import pytest

from fraudflow import Lake, WorldParams, generate
from fraudflow.features import build_features
from tests.distributed.test_features import assert_same_rows

pytestmark = [pytest.mark.spark, pytest.mark.xdist_group("spark")]

SMALL = WorldParams(n_customers=200, n_terminals=400, nb_days=40, radius=8.0)


def test_spark_engine_on_s3a_equals_the_local_engine_on_disk(spark, s3_root: str, tmp_path: Path) -> None:
    generate(tmp_path, SMALL)
    build_features(tmp_path)
    s3a = s3_root.replace("s3://", "s3a://")
    generate(s3a, SMALL, engine="spark")
    build_features(s3a, engine="spark")
    local, remote = Lake(tmp_path), Lake(s3_root)
    assert remote.url == Lake(s3a).url
    for table in ("transactions", "features"):
        days = local.partitions(table)
        assert remote.partitions(table) == days and len(days) == SMALL.nb_days
        expected, got = local.read_partitions(table, days), remote.read_partitions(table, days)
        drop = [c for c in ("WRITE_TIME",) if c in expected.column_names]
        assert got.schema == expected.schema
        assert_same_rows(expected.drop_columns(drop), got.drop_columns(drop))
