"""Analysts' verdicts and their undoing, through the service's one label path (``labelling.accept_labels``).

A verdict labels some of a card's transactions of a day fraud (1) or genuine (0), with
``SOURCE = 'analyst'`` and the analyst's name; only transactions the service answered for that card
on that day are taken. Labels are never deleted: an undo is a new label that supersedes the verdict
(the latest label is the one in force), with ``SOURCE = 'analyst-undo'``, restoring for each
transaction the label in force before the verdict, or genuine (0) when it had none, which is what
an unlabelled transaction counts as in training sets, the monitor and the online features.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa

from fraudflow import schema
from fraudflow.errors import SchemaError
from fraudflow.lake import Lake
from fraudflow.serving.desk.queue import ANALYST, Label
from fraudflow.serving.desk.served import Served, day_number
from fraudflow.store import labels as label_table

FRAUD = {"fraud": 1, "genuine": 0}


class VerdictError(SchemaError):
    """A verdict or undo the desk refuses: transactions not the card's, nothing to undo."""


def check_transactions(served: Served, day: dt.date, customer: int, ids: Iterable[int]) -> list[int]:
    """``ids`` when each is a transaction of card ``customer`` answered on ``day``; else ``VerdictError``
    naming the first that is not."""
    mine = set(served.tx_id[(served.customer == customer) & (served.day == day_number(day))].tolist())
    given = list(dict.fromkeys(ids))
    for tx_id in given:
        if tx_id not in mine:
            raise VerdictError(f"transaction {tx_id} is not one of card {customer}'s on {day}")
    return given


def in_force(lake: Lake, ids: Iterable[int] | None = None) -> dict[int, Label]:
    """Each transaction's label in force (of ``ids`` only, when given)."""
    return _labels(label_table.read(lake), ids)


def restoring(lake: Lake, ids: list[int]) -> dict[int, int]:
    """The labels that undo the verdict in force on ``ids``: each one's label before it (0 if none);
    ``VerdictError`` when one's label in force is not an analyst's verdict."""
    history = label_table.read(lake, history=True)
    wanted = pa.array(ids, pa.int64())
    import pyarrow.compute as pc

    rows: list[dict[str, Any]] = history.filter(pc.is_in(history[schema.TRANSACTION_ID], value_set=wanted)).to_pylist()
    by_id: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    for row in rows:
        by_id[row[schema.TRANSACTION_ID]].append(row)
    restored = {}
    for tx_id, seen in by_id.items():
        # the order of the rule in force (latest_sql): by time, a fraud label after a genuine one at the same time
        ranked = sorted(seen, key=lambda r: (r[label_table.LABEL_TIME], r[schema.TX_FRAUD]))
        if not ranked or ranked[-1][label_table.SOURCE] != ANALYST:
            raise VerdictError(f"transaction {tx_id} has no analyst's verdict in force to undo")
        restored[tx_id] = int(ranked[-2][schema.TX_FRAUD]) if len(ranked) > 1 else 0
    return restored


def _labels(table: pa.Table, ids: Iterable[int] | None) -> dict[int, Label]:
    if ids is not None:
        import pyarrow.compute as pc

        table = table.filter(pc.is_in(table[schema.TRANSACTION_ID], value_set=pa.array(list(ids), pa.int64())))
    columns = [table[c].to_pylist() for c in label_table.LABELS.names]
    return {
        tx_id: Label(fraud, source, analyst, time) for tx_id, fraud, time, source, analyst in zip(*columns, strict=True)
    }


def frauds_of(ids: Iterable[int], verdict: str) -> Mapping[int, int]:
    """``{TRANSACTION_ID: TX_FRAUD}`` of a verdict (``fraud`` or ``genuine``) on ``ids``."""
    return dict.fromkeys(ids, FRAUD[verdict])
