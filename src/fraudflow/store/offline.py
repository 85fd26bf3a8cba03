"""The offline feature store: the lake's ``features/`` table and its registry.

    <root>/features/_registry.json          the feature set (definitions) and its version
    <root>/features/tx_date=YYYY-MM-DD/     TRANSACTION_ID, TX_DATETIME (event time),
                                            WRITE_TIME (when the row was written), features

A point-in-time read "as of T" returns only rows written at or before T. Readers name the
feature-set version they expect (a model's); a mismatch is an error, never silent skew.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa

from fraudflow import schema as s
from fraudflow.errors import FeatureError, LakeError
from fraudflow.features.definitions import FeatureSet
from fraudflow.lake import Lake

TABLE = "features"
REGISTRY = "_registry.json"
WRITE_TIME = "WRITE_TIME"


def write_time_now() -> np.datetime64:
    """The WRITE_TIME of rows written now: UTC, microseconds."""
    return np.datetime64(dt.datetime.now(dt.timezone.utc).replace(tzinfo=None), "us")


def feature_schema(fs: FeatureSet) -> pa.Schema:
    types = {"int64": pa.int64(), "float64": pa.float64()}
    return pa.schema(
        [
            pa.field(s.TRANSACTION_ID, pa.int64(), nullable=False),
            pa.field(s.TX_DATETIME, pa.timestamp("ns"), nullable=False),
            pa.field(WRITE_TIME, pa.timestamp("us"), nullable=False),
        ]
        + [pa.field(f.name, types[f.dtype], nullable=False) for f in fs.features]
    )


def registered(lake: Lake) -> FeatureSet | None:
    """The feature set the lake's features were computed with, if any."""
    path = lake.path(TABLE, REGISTRY)
    if not lake.fs.exists(path):
        return None
    return FeatureSet.from_json(lake.read_json(path))


def register(lake: Lake, fs: FeatureSet, replace: bool = False) -> None:
    """Record ``fs`` as the lake's feature set; refuse to mix two versions in one table."""
    current = registered(lake)
    if current is not None and current.version != fs.version:
        if not replace:
            raise FeatureError(
                f"{lake.url}/{TABLE} holds feature set {current.name!r} version {current.version}; "
                f"refusing to add version {fs.version} ({fs.name!r}). Recompute every day with --rebuild."
            )
        for day in lake.partitions(TABLE):
            lake.remove_partition(TABLE, day)
    if current is None or current.version != fs.version:
        lake.write_json(lake.path(TABLE, REGISTRY), fs.to_json())


def required(lake: Lake) -> FeatureSet:
    """The lake's feature set; a LakeError saying what to run when there are no features yet."""
    current = registered(lake)
    if current is None:
        raise LakeError(f"{lake.url}: no features yet; run `fraudflow features --data {lake.url}`")
    return current


def check_version(lake: Lake, version: str) -> FeatureSet:
    current = required(lake)
    if current.version != version:
        raise FeatureError(
            f"{lake.url}/{TABLE} holds feature set version {current.version}, expected {version}: "
            "the features were computed with other definitions than the ones asked for"
        )
    return current


def read_features(
    lake: Lake,
    start: dt.date | None = None,
    end: dt.date | None = None,
    *,
    as_of: dt.datetime | None = None,
    version: str | None = None,
) -> pa.Table:
    """Feature rows of days ``start..end`` (inclusive), as known at ``as_of`` (write time)."""
    if version is not None:
        check_version(lake, version)
    days = [d for d in lake.partitions(TABLE) if (start is None or d >= start) and (end is None or d <= end)]
    if not days:
        return feature_schema(required(lake)).empty_table()
    table = lake.read_partitions(TABLE, days)
    if as_of is not None:
        import pyarrow.compute as pc  # not at import: the feature build never needs it

        table = table.filter(pc.less_equal(table[WRITE_TIME], pa.scalar(np.datetime64(as_of, "us"))))
    return table
