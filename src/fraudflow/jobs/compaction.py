"""Compact the lake's append-only tables (the prediction log, the labels): each day's files as one.

A service commits its prediction log every few seconds (at 5 s, 17,280 files a day) and labels
arrive in small files all day; every engine reads many small files slowly, and on S3 each is a
request. ``compact`` rewrites each day holding more than one file as one file of the rows its
readers see (``AppendTable.compact``: the prediction log keeps each transaction's first served
row, the labels every distinct label). It is safe beside running services: files committed while
it runs are left as they are, and a crash between writing the new file and removing the old ones
leaves copies that every reader already drops, never a loss.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from fraudflow.lake import Lake
from fraudflow.store import labels, predictions
from fraudflow.store.appendlog import AppendTable

#: The append-only tables, each with its table and its day compaction.
TABLES: dict[str, tuple[Callable[[Lake], AppendTable], Callable[[Lake, dt.date], int]]] = {
    "predictions": (predictions.log_table, predictions.compact),
    "labels": (labels.table, labels.compact),
}


@dataclass(frozen=True)
class Compacted:
    """What compacting one table did: its days (through the last day asked for), the days
    rewritten, and the files they held before (now one each)."""

    table: str
    days: int
    rewritten: int
    files_before: int


def compact(
    lake: Lake,
    tables: Sequence[str] = tuple(TABLES),
    through: dt.date | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> list[Compacted]:
    """Compact each day (through ``through``, else all) of each table in ``tables``."""
    done = []
    for name in tables:
        table_of, compact_day = TABLES[name]
        days = [d for d in table_of(lake).days() if through is None or d <= through]
        rewritten = files = 0
        for i, day in enumerate(days):
            replaced = compact_day(lake, day)
            if replaced:
                rewritten, files = rewritten + 1, files + replaced
            if progress is not None:
                progress(name, i + 1, len(days))
        done.append(Compacted(name, len(days), rewritten, files))
    return done
