"""The lake's feature set: the offline store's registry, decoded into a ``FeatureSet``.

The offline store (``fraudflow.store.offline``) keeps the registry as JSON and the rows as Parquet
without knowing feature objects; this module reads them back as the definitions, so a reader names
the version it expects and gets an error, never silent skew.
"""

from __future__ import annotations

import datetime as dt
import os

import pyarrow as pa

from fraudflow.errors import FeatureError, LakeError
from fraudflow.features.definitions import FeatureSet
from fraudflow.lake import Lake, open_lake
from fraudflow.store import offline
from fraudflow.store.offline import TABLE


def registered(lake: Lake) -> FeatureSet | None:
    """The feature set the lake's features were computed with, if any."""
    stored = offline.registry_json(lake)
    return None if stored is None else FeatureSet.from_json(stored)


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
    data: str | os.PathLike[str] | Lake,
    start: dt.date | None = None,
    end: dt.date | None = None,
    *,
    as_of: dt.datetime | None = None,
    version: str | None = None,
) -> pa.Table:
    """Feature rows of days ``start..end`` (inclusive), as known at ``as_of`` (write time).

    ``as_of`` reads the store as it stood then: each row in the version written last at or before
    that instant, rows written later left out (point-in-time reads for training sets and audits).
    """
    lake = open_lake(data)
    if version is not None:
        check_version(lake, version)
    table = offline.read_rows(lake, start, end, as_of=as_of)
    if table is None:
        return offline.feature_schema(required(lake)).empty_table()
    return table
