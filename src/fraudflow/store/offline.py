"""The offline feature store: the lake's ``features/`` table and its registry.

    <root>/features/_registry.json          the feature set (definitions) and its version
    <root>/features/tx_date=YYYY-MM-DD/     TRANSACTION_ID, TX_DATETIME (event time),
                                            WRITE_TIME (when the row was written), features

A point-in-time read "as of T" returns only rows written at or before T. Readers name the
feature-set version they expect (a model's); a mismatch is an error, never silent skew.

This module knows the table's columns and the registry's file, not feature objects: a feature set
comes in as anything with the fields it reads (``FeatureColumns``, ``RegistrySet``), and
the feature layer's ``registry`` module decodes the registry into a ``FeatureSet`` and reads rows by it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import pyarrow as pa

from fraudflow import schema
from fraudflow.errors import FeatureError
from fraudflow.lake import Lake

TABLE = "features"
REGISTRY = "_registry.json"
WRITE_TIME = "WRITE_TIME"


class Column(Protocol):
    """A feature as a column: its name and dtype (``"int64"`` or ``"float64"``)."""

    @property
    def name(self) -> str: ...

    @property
    def dtype(self) -> str: ...


class FeatureColumns(Protocol):
    """A feature set as the table's columns."""

    @property
    def features(self) -> Sequence[Column]: ...


class RegistrySet(Protocol):
    """A feature set as the registry records it (``FeatureSet`` is one)."""

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str: ...

    def to_json(self) -> dict[str, Any]: ...

    def from_json(self, d: dict[str, Any]) -> RegistrySet:
        """The set a registry payload describes (a ``FeatureError`` if it is not one)."""
        ...


def write_time_now() -> np.datetime64:
    """The WRITE_TIME of rows written now: UTC, microseconds."""
    return np.datetime64(dt.datetime.now(dt.timezone.utc).replace(tzinfo=None), "us")


def feature_schema(feature_set: FeatureColumns) -> pa.Schema:
    """The table's Arrow schema: the row's id, event and write times, then the feature set's columns."""
    types = {"int64": pa.int64(), "float64": pa.float64()}
    return pa.schema(
        [
            pa.field(schema.TRANSACTION_ID, pa.int64(), nullable=False),
            pa.field(schema.TX_DATETIME, pa.timestamp("ns"), nullable=False),
            pa.field(WRITE_TIME, pa.timestamp("us"), nullable=False),
        ]
        + [pa.field(f.name, types[f.dtype], nullable=False) for f in feature_set.features]
    )


def registry_json(lake: Lake) -> dict[str, Any] | None:
    """The lake's registry as stored (the feature set's JSON), if any."""
    path = lake.path(TABLE, REGISTRY)
    if not lake.fs.exists(path):
        return None
    stored: dict[str, Any] = lake.read_json(path)
    return stored


def register(lake: Lake, feature_set: RegistrySet, replace: bool = False) -> None:
    """Record ``feature_set`` as the lake's feature set; refuse to mix two versions in one table."""
    stored = registry_json(lake)
    current = None if stored is None else feature_set.from_json(stored)
    if current is not None and current.version != feature_set.version:
        if not replace:
            raise FeatureError(
                f"{lake.url}/{TABLE} holds feature set {current.name!r} version {current.version}; "
                f"refusing to add version {feature_set.version} ({feature_set.name!r}). "
                "Recompute every day with --rebuild."
            )
        for day in lake.partitions(TABLE):
            lake.remove_partition(TABLE, day)
    if current is None or current.version != feature_set.version:
        lake.write_json(lake.path(TABLE, REGISTRY), feature_set.to_json())


def read_rows(
    lake: Lake,
    start: dt.date | None = None,
    end: dt.date | None = None,
    *,
    as_of: dt.datetime | None = None,
) -> pa.Table | None:
    """Rows of days ``start..end`` (inclusive), as known at ``as_of`` (write time); None: no such day."""
    days = [d for d in lake.partitions(TABLE) if (start is None or d >= start) and (end is None or d <= end)]
    if not days:
        return None
    table = lake.read_partitions(TABLE, days)
    if as_of is not None:
        import pyarrow.compute as pc  # not at import: the feature build never needs it

        table = table.filter(pc.less_equal(table[WRITE_TIME], pa.scalar(np.datetime64(as_of, "us"))))
    return table
