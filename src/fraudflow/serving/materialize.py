"""Load the online store from the lake: the last days of transactions a feature can look back on."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from fraudflow import schema as s
from fraudflow.errors import LakeError
from fraudflow.features.definitions import FeatureSet
from fraudflow.lake import Lake
from fraudflow.store.online import OnlineStore

WATERMARK = "materialized_through"


@dataclass(frozen=True)
class MaterializeSummary:
    days: int
    rows: int
    frauds: int
    through: dt.date | None
    up_to_date: bool


def materialize(lake: Lake, store: OnlineStore, fs: FeatureSet) -> MaterializeSummary:
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
    first = last - dt.timedelta(days=fs.history_days + 1)
    if done is not None:
        first = max(first, dt.date.fromisoformat(done) + dt.timedelta(days=1))
    wanted = [d for d in days if d >= first]
    table = lake.read_partitions(
        "transactions",
        wanted,
        columns=[s.TRANSACTION_ID, s.TX_DATETIME, s.CUSTOMER_ID, s.TERMINAL_ID, s.TX_AMOUNT, s.TX_FRAUD],
    )
    ts = table[s.TX_DATETIME].to_numpy().astype("datetime64[us]").view(np.int64)
    ids = table[s.TRANSACTION_ID].to_numpy()
    fraud = table[s.TX_FRAUD].to_numpy()
    rows = zip(
        ts.tolist(),
        ids.tolist(),
        table[s.CUSTOMER_ID].to_numpy().tolist(),
        table[s.TERMINAL_ID].to_numpy().tolist(),
        table[s.TX_AMOUNT].to_numpy().tolist(),
        strict=True,
    )
    labels = {int(i): 1 for i in ids[fraud == 1]}
    n = store.load(rows, labels)
    store.set_meta(WATERMARK, last.isoformat())
    return MaterializeSummary(len(wanted), n, len(labels), last, False)
