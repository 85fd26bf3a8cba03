"""Labels reaching the service (``POST /v1/labels``, the analyst desk): into the lake, then into the online state.

One path for every source: the labels are committed to the lake's ``labels`` table with their
arrival time, their source and who gave them (``store.labels.record``: training sets take them
point in time by arrival), then appended to the online store's log, from which every service
process's windows take them. The lake first: a label the lake refused is nowhere, and a failure
after it is answered as such (sending the same labels again records them again, which changes
nothing: the latest label of a transaction is the one in force).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from fraudflow.lake import Lake
from fraudflow.serving.engine import Scorer
from fraudflow.store import labels as label_table


async def accept_labels(
    lake: Lake, scorer: Scorer, frauds: Mapping[int, int], source: str, analyst: str | None = None
) -> int:
    """Record ``{TRANSACTION_ID: TX_FRAUD}`` in the lake and in the online store; how many were accepted.

    The lake's write and the store's append run in a worker thread: the event loop keeps answering.
    """
    given = dict(frauds)
    await asyncio.to_thread(label_table.record, lake, given, source=source, analyst=analyst)
    return await asyncio.to_thread(scorer.store.add_labels, given)
