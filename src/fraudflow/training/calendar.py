"""The days of a lake a stage trains and judges on: the protocol's plan (``training.protocol``),
checked against the days the lake holds."""

from __future__ import annotations

import datetime as dt

from fraudflow.errors import CoverageError
from fraudflow.lake import Lake
from fraudflow.store import offline
from fraudflow.training.protocol import Judged, Plan, Protocol, fold_starts


def lake_days(lake: Lake) -> tuple[dt.date, dt.date]:
    """The first and last day a training set can read: the lake's days with transactions and features."""
    days = sorted(set(lake.partitions("transactions")) & set(lake.partitions(offline.TABLE)))
    if not days:
        raise CoverageError(f"{lake.url}: no day has transactions and features; run `fraudflow features`")
    return days[0], days[-1]


def lake_plan(
    lake: Lake,
    protocol: Protocol = "lake",
    judged: Judged = "folds",
    *,
    tune: bool = True,
    start: dt.date | None = None,
) -> Plan:
    """What a stage judges on the lake: the split(s) from ``start`` when given, else ``protocol``'s
    (``Plan.of``); ``CoverageError`` when the lake does not hold every day they read."""
    first, last = lake_days(lake)
    if start is None:
        chosen = Plan.of(protocol, judged, last, tune=tune)
    else:
        chosen = Plan((start,) if judged == "split" else tuple(fold_starts(start)), tune)
    chosen.check(first, last)
    return chosen
