"""Training/serving skew check: recompute every served feature vector in batch and compare.

The service stores each answered transaction with the feature vector it served (the online
store's answers; SQLite by default, a file in the lake root). The batch engine recomputes the
features of those transactions from the lake (plus any served transaction the lake does not
have), and every value is compared: integers exactly, floats within 1e-9.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fraudflow import schema as s
from fraudflow.errors import LakeError
from fraudflow.features import compute
from fraudflow.features.definitions import FeatureSet
from fraudflow.features.sql import INPUT
from fraudflow.lake import Lake
from fraudflow.store.online import OnlineStore


@dataclass(frozen=True)
class ConsistencyReport:
    served: int
    compared: int
    mismatches: dict[str, int]

    @property
    def ok(self) -> bool:
        return self.compared == self.served and not any(self.mismatches.values())


def check(lake: Lake, store: OnlineStore, fs: FeatureSet) -> ConsistencyReport:
    answers = [json.loads(a) for _, a in store.answers()]
    answers = [a for a in answers if "request" in a]
    if not answers:
        raise LakeError("no served transactions to check")
    requests = pa.Table.from_pylist([a["request"] for a in answers])
    served_ids = requests[s.TRANSACTION_ID].to_numpy()
    when = np.array([dt.datetime.fromisoformat(x) for x in requests[s.TX_DATETIME].to_pylist()], "datetime64[us]")
    first = when.min().astype("datetime64[D]").astype(dt.date) - dt.timedelta(days=fs.history_days + 1)
    last = when.max().astype("datetime64[D]").astype(dt.date)
    days = [d for d in lake.partitions("transactions") if first <= d <= last]
    lake_tx = lake.read_partitions("transactions", days, columns=list(INPUT)) if days else None
    extra = requests.append_column(s.TX_FRAUD, pa.array(np.zeros(requests.num_rows, dtype=np.int64)))
    extra = extra.set_column(
        extra.schema.get_field_index(s.TX_DATETIME), s.TX_DATETIME, pa.array(when.astype("datetime64[ns]"))
    )
    extra = extra.select(list(INPUT))
    if lake_tx is not None:
        extra = extra.cast(lake_tx.schema)
        extra = extra.filter(pc.invert(pc.is_in(extra[s.TRANSACTION_ID], lake_tx[s.TRANSACTION_ID])))
        tx = pa.concat_tables([lake_tx, extra])
    else:
        tx = extra
    tx = tx.take(pc.sort_indices(tx, [(s.TX_DATETIME, "ascending"), (s.TRANSACTION_ID, "ascending")]))
    batch = compute(tx, fs)
    ids = batch[s.TRANSACTION_ID].to_numpy()
    pos = {int(i): k for k, i in enumerate(ids)}
    mismatches = {name: 0 for name in fs.names}
    compared = 0
    columns = {name: batch[name].to_numpy() for name in fs.names}
    for tx_id, answer in zip(served_ids.tolist(), answers, strict=True):
        k = pos.get(int(tx_id))
        if k is None:
            continue
        compared += 1
        for name in fs.names:
            online, offline = answer["features"][name], columns[name][k]
            same = (
                online == offline
                if isinstance(offline, np.integer)
                else bool(np.isclose(online, offline, rtol=1e-9, atol=1e-9))
            )
            mismatches[name] += not same
    return ConsistencyReport(len(answers), compared, mismatches)
