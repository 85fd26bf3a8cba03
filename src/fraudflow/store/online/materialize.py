"""Load the online store from the lake: the last days of transactions a feature can look back on."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol

from fraudflow import schema
from fraudflow.errors import LakeError
from fraudflow.lake import Lake
from fraudflow.store.online.interface import OnlineStore

#: The meta key of the last lake day the store holds.
WATERMARK = "materialized_through"


class Lookback(Protocol):
    """What materialization needs of a feature set (``FeatureSet`` is one)."""

    @property
    def history_days(self) -> int:
        """Days of history a new day's features need."""
        ...


@dataclass(frozen=True)
class MaterializeSummary:
    """What one materialization did: the days and rows loaded, their fraud labels, the last day held
    (``through``); ``up_to_date`` when the store already held the lake's last day."""

    days: int
    rows: int
    frauds: int
    through: dt.date | None
    up_to_date: bool


def materialize(lake: Lake, store: OnlineStore, lookback: Lookback) -> MaterializeSummary:
    """Bring the store up to the lake's last day, loading only the days it does not have yet.

    A feature looks back ``history_days`` (37); loading that many days before the first new one
    makes the features of the next transaction exact, as if every earlier one had been streamed.
    """
    days = lake.partitions("transactions")
    if not days:
        raise LakeError(f"{lake.url}: no transactions to materialize")
    done = store.get_meta(WATERMARK)
    last = days[-1]
    if done is not None and dt.date.fromisoformat(done) >= last:
        return MaterializeSummary(0, 0, 0, last, True)
    first = last - dt.timedelta(days=lookback.history_days + 1)
    if done is not None:
        first = max(first, dt.date.fromisoformat(done) + dt.timedelta(days=1))
    wanted = [d for d in days if d >= first]
    table = lake.read_partitions("transactions", wanted, columns=list(schema.INPUT_COLUMNS))
    ts = schema.timestamps_us(table[schema.TX_DATETIME])
    ids = table[schema.TRANSACTION_ID].to_numpy()
    fraud = table[schema.TX_FRAUD].to_numpy()
    rows = zip(
        ts.tolist(),
        ids.tolist(),
        table[schema.CUSTOMER_ID].to_numpy().tolist(),
        table[schema.TERMINAL_ID].to_numpy().tolist(),
        table[schema.TX_AMOUNT].to_numpy().tolist(),
        strict=True,
    )
    labels = {int(i): 1 for i in ids[fraud == 1]}
    n = store.load(rows, labels)
    store.set_meta(WATERMARK, last.isoformat())
    return MaterializeSummary(len(wanted), n, len(labels), last, False)
