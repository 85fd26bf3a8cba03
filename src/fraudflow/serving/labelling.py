"""Labels reaching the service (``POST /v1/labels``, the analyst desk): into the lake, then into the online state.

One path for every source: the labels are committed to the lake's ``labels`` table with their
arrival time, their source and who gave them (``store.labels.record``: training sets take them
point in time by arrival), then appended to the online store's log, from which every service
process's windows take them. The lake first: a label the lake refused is nowhere, and a failure
after it is answered as such.

A label identical to the one in force for its transaction (the same value, source and analyst) is
not recorded again: sending the same labels twice (a retried request, a day of ``operate`` run
again through the service) adds nothing to the lake, and keeps the first arrival time, the one the
training sets read. A label that changes the one in force, or gives it another source or analyst
(an analyst confirming a chargeback), is recorded. Every label still reaches the online store (the
latest is the one in force there too, so a repeat changes nothing; a store loaded anew gets it).
The process knows the label in force from the table's files it has read, reading the new ones
(other processes', other commands') before each decision.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping

import numpy as np
import pyarrow.parquet as pq

from fraudflow import schema
from fraudflow.lake import Lake
from fraudflow.records import to_us
from fraudflow.serving.engine import Scorer
from fraudflow.store import labels as label_table

#: a label as the one in force is compared: (TX_FRAUD, SOURCE, ANALYST)
Given = tuple[int, str, str | None]


async def accept_labels(
    lake: Lake, scorer: Scorer, frauds: Mapping[int, int], source: str, analyst: str | None = None
) -> int:
    """Record ``{TRANSACTION_ID: TX_FRAUD}`` in the lake (but the repeats of the labels in force) and
    in the online store; how many were accepted (repeats included).

    The lake's write and the store's append run in a worker thread: the event loop keeps answering.
    """
    given = dict(frauds)
    await asyncio.to_thread(labels_in_force(lake).record, given, source, analyst)
    return await asyncio.to_thread(scorer.store.add_labels, given)


class LabelsInForce:
    """The label in force for each transaction of a lake's labels table, from the files read so far."""

    def __init__(self, lake: Lake) -> None:
        self.lake = lake
        self._lock = threading.Lock()  # one decision and its write at a time in this process
        self._read: set[str] = set()
        self._in_force: dict[int, tuple[int, int, str, str | None]] = {}  # tx -> (LABEL_TIME µs, *Given)

    def record(self, frauds: Mapping[int, int], source: str, analyst: str | None) -> int:
        """Commit the labels of ``frauds`` that are not the label in force already; how many."""
        with self._lock:
            self._read_new_files()
            new = {i: f for i, f in frauds.items() if self.given(i) != (f, source, analyst)}
            if new:
                now = label_table.now()
                label_table.record(self.lake, new, label_time=now, source=source, analyst=analyst)
                for tx_id, fraud in new.items():
                    self._keep(tx_id, to_us(now), (fraud, source, analyst))
            return len(new)

    def given(self, tx_id: int) -> Given | None:
        """The label in force for ``tx_id`` as of the files read, None when it has none."""
        held = self._in_force.get(tx_id)
        return None if held is None else held[1:]

    def _read_new_files(self) -> None:
        files = label_table.table(self.lake).files()
        columns = [schema.TRANSACTION_ID, schema.TX_FRAUD, label_table.LABEL_TIME, label_table.SOURCE]
        for path in files:
            if path in self._read:
                continue
            rows = pq.read_table(path, filesystem=self.lake.fs, columns=[*columns, label_table.ANALYST])
            times = rows[label_table.LABEL_TIME].to_numpy().astype("datetime64[us]").astype(np.int64).tolist()
            for tx_id, fraud, when, source, analyst in zip(
                rows[schema.TRANSACTION_ID].to_pylist(),
                rows[schema.TX_FRAUD].to_pylist(),
                times,
                rows[label_table.SOURCE].to_pylist(),
                rows[label_table.ANALYST].to_pylist(),
                strict=True,
            ):
                self._keep(tx_id, when, (fraud, source, analyst))
        self._read = set(files)  # a compacted day's old files are gone: forgotten too

    def _keep(self, tx_id: int, when: int, given: Given) -> None:
        """Take a label unless the one held is later (``labels.latest_sql``'s rule: the latest arrival,
        a fraud label winning a tie)."""
        held = self._in_force.get(tx_id)
        if held is None or (when, given[0]) >= (held[0], held[1]):
            self._in_force[tx_id] = (when, *given)


_IN_FORCE: dict[str, LabelsInForce] = {}
_IN_FORCE_LOCK = threading.Lock()


def labels_in_force(lake: Lake) -> LabelsInForce:
    """This process's ``LabelsInForce`` of ``lake`` (one per lake URL)."""
    with _IN_FORCE_LOCK:
        known = _IN_FORCE.get(lake.url)
        if known is None:
            known = _IN_FORCE[lake.url] = LabelsInForce(lake)
        return known
