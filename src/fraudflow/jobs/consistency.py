"""Training/serving skew check: recompute every served feature vector in batch and compare.

The service stores each answered transaction with the feature vector it served (the online
store's answers; SQLite by default, a file in the lake root). The batch engine recomputes the
features of those transactions from the lake (plus any served transaction the lake does not
have), and every value is compared: integers exactly, floats within 1e-9.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fraudflow import schema
from fraudflow.errors import LakeError
from fraudflow.features import compute
from fraudflow.features.definitions import FeatureSet
from fraudflow.lake import Lake
from fraudflow.store.online import codec
from fraudflow.store.online.interface import OnlineStore


@dataclass(frozen=True)
class ConsistencyReport:
    """Served transactions, those recomputed in batch, and each feature's count of differing values."""

    served: int
    compared: int
    mismatches: dict[str, int]

    @property
    def ok(self) -> bool:
        return self.compared == self.served and not any(self.mismatches.values())


def check(lake: Lake, store: OnlineStore, feature_set: FeatureSet) -> ConsistencyReport:
    """Recompute in batch the features of every transaction ``store`` answered and compare them."""
    answers = [codec.decode(text) for _, text in store.answers()]
    if not answers:
        raise LakeError("no served transactions to check")
    requests = [a.request for a in answers]
    served = pa.table(
        {
            schema.TRANSACTION_ID: pa.array([r.transaction_id for r in requests], pa.int64()),
            schema.TX_DATETIME: pa.array(np.array([r.tx_datetime for r in requests], "datetime64[ns]")),
            schema.CUSTOMER_ID: pa.array([r.customer_id for r in requests], pa.int64()),
            schema.TERMINAL_ID: pa.array([r.terminal_id for r in requests], pa.int64()),
            schema.TX_AMOUNT: pa.array([r.amount for r in requests], pa.float64()),
            schema.TX_FRAUD: pa.array(np.zeros(len(requests), dtype=np.int64)),
        }
    )
    when = served[schema.TX_DATETIME].to_numpy()
    first = when.min().astype("datetime64[D]").astype(dt.date) - dt.timedelta(days=feature_set.history_days + 1)
    last = when.max().astype("datetime64[D]").astype(dt.date)
    days = [d for d in lake.partitions("transactions") if first <= d <= last]
    if days:
        lake_tx = lake.read_partitions("transactions", days, columns=list(schema.INPUT_COLUMNS))
        extra = served.cast(lake_tx.schema)
        extra = extra.filter(pc.invert(pc.is_in(extra[schema.TRANSACTION_ID], lake_tx[schema.TRANSACTION_ID])))
        tx = pa.concat_tables([lake_tx, extra])
    else:
        tx = served
    tx = schema.time_ordered(tx)
    batch = compute(tx, feature_set)
    pos = {int(i): k for k, i in enumerate(batch[schema.TRANSACTION_ID].to_numpy())}
    mismatches = {name: 0 for name in feature_set.names}
    compared = 0
    columns = {name: batch[name].to_numpy() for name in feature_set.names}
    for answer in answers:
        k = pos.get(answer.request.transaction_id)
        if k is None:
            continue
        compared += 1
        for name in feature_set.names:
            online, offline = answer.features[name], columns[name][k]
            same = (
                online == offline
                if isinstance(offline, np.integer)
                else bool(np.isclose(online, offline, rtol=1e-9, atol=1e-9))
            )
            mismatches[name] += not same
    return ConsistencyReport(len(answers), compared, mismatches)
