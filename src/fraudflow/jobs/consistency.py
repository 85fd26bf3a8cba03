"""Training/serving skew check: recompute every served feature vector in batch and compare.

The service stores each answered transaction with the feature vector it served and its seq, the
order the online store recorded it in (the online store's answers; SQLite by default, a file in the
lake root). The batch engine recomputes the features of those transactions from the lake (plus any
served transaction the lake does not have), and every value is compared: integers exactly, floats
within 1e-9.

A served vector may differ from the batch one because of arrival order: under concurrent requests
a customer's later transaction can be recorded before an earlier one, and its features then do not
count the earlier one (the online contract: each transaction sees those recorded before it). So a
served vector is also compared with the batch features recomputed over only the transactions
recorded before it (the lake's unserved ones, the history the store was loaded with, and the served
ones with a smaller seq) whenever that differs from time order: when its vector differs from the
batch one, or when an earlier transaction of its customer or terminal was recorded after it. Any
difference from that recomputation is **skew**; a vector that equals it but not the batch one is a
**late arrival**.
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
from fraudflow.records import Transaction
from fraudflow.store.online import codec
from fraudflow.store.online.interface import OnlineStore


@dataclass(frozen=True)
class ConsistencyReport:
    """Served transactions, those recomputed in batch, and what differed.

    ``skew``: per feature, the values differing from the features recomputed in arrival order;
    ``late``: per feature, the late arrivals' values differing from the batch features;
    ``skewed`` and ``late_arrivals``: the transactions of each kind.
    """

    served: int
    compared: int
    skew: dict[str, int]
    late: dict[str, int]
    skewed: int
    late_arrivals: int

    @property
    def ok(self) -> bool:
        return self.compared == self.served and self.skewed == 0


def check(lake: Lake, store: OnlineStore, feature_set: FeatureSet) -> ConsistencyReport:
    """Recompute in batch the features of every transaction ``store`` answered and compare them."""
    stored = list(store.answers())
    if not stored:
        raise LakeError("no served transactions to check")
    answers = [codec.decode(text) for _, _, text in stored]
    tx = _transactions(lake, [a.request for a in answers], feature_set)
    ids = schema.numpy_column(tx[schema.TRANSACTION_ID])
    pos = {int(i): k for k, i in enumerate(ids)}
    rows = np.array([pos.get(a.request.transaction_id, -1) for a in answers], dtype=np.int64)
    compared = rows >= 0
    names = feature_set.names
    served = np.array([[a.features[n] for n in names] for a in answers], dtype=np.float64)[compared]
    rows = rows[compared]
    batch = compute(tx, feature_set)
    differs = _differs(served, batch.take(pa.array(rows)), names)
    # the order the store recorded them in: history (-1) first, then by seq
    rank = np.full(len(ids), -1, dtype=np.int64)
    rank[rows] = np.array([seq for seq, _, _ in stored], dtype=np.int64)[compared]
    out_of_order = differs.any(axis=1) | _overtaken(tx, rank)[rows]  # compared in arrival order
    arrival = np.zeros((int(out_of_order.sum()), len(names)), dtype=bool)
    if out_of_order.any():
        arrival = _differs(served[out_of_order], _in_arrival_order(tx, rank, rows[out_of_order], feature_set), names)
    skewed = arrival.any(axis=1)
    late = differs[out_of_order][~skewed]  # equal to the arrival-order features: each differs from batch, if any
    return ConsistencyReport(
        served=len(answers),
        compared=int(compared.sum()),
        skew=dict(zip(names, arrival.sum(axis=0).tolist(), strict=True)),
        late=dict(zip(names, late.sum(axis=0).tolist(), strict=True)),
        skewed=int(skewed.sum()),
        late_arrivals=int(late.any(axis=1).sum()),
    )


def _transactions(lake: Lake, requests: list[Transaction], feature_set: FeatureSet) -> pa.Table:
    """The lake's transactions the served ones' windows reach, plus the served ones it lacks, in
    (time, id) order."""
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
    if not days:
        return schema.time_ordered(served)
    lake_tx = lake.read_partitions("transactions", days, columns=list(schema.INPUT_COLUMNS))
    extra = served.cast(lake_tx.schema)
    extra = extra.filter(pc.invert(pc.is_in(extra[schema.TRANSACTION_ID], lake_tx[schema.TRANSACTION_ID])))
    return schema.time_ordered(pa.concat_tables([lake_tx, extra]))


def _differs(served: np.ndarray, recomputed: pa.Table, names: list[str]) -> np.ndarray:
    """(transactions, features) bool: the served value differs from the recomputed one (integers
    exactly, floats within 1e-9)."""
    out = np.zeros(served.shape, dtype=bool)
    for j, name in enumerate(names):
        values = schema.numpy_column(recomputed[name])
        if np.issubdtype(values.dtype, np.integer):
            out[:, j] = served[:, j] != values
        else:
            out[:, j] = ~np.isclose(served[:, j], values, rtol=1e-9, atol=1e-9)
    return out


def _in_arrival_order(tx: pa.Table, rank: np.ndarray, rows: np.ndarray, feature_set: FeatureSet) -> pa.Table:
    """The batch features of the transactions at ``rows`` of ``tx``, each over only the transactions
    recorded before it (``rank`` below its own), in ``rows``' order.

    One batch computation for all of them: each gets its own copy of its customer's and terminal's
    transactions, under entity ids of its own (2k for its customer and terminal, 2k + 1 for the
    others' rows, which nothing reads) and TRANSACTION_IDs k * len(tx) + row, which keep the
    (time, id) order within each copy.
    """
    customer = schema.numpy_column(tx[schema.CUSTOMER_ID])
    terminal = schema.numpy_column(tx[schema.TERMINAL_ID])
    by_customer, by_terminal = _rows_by(customer), _rows_by(terminal)
    copies = []
    for r in rows.tolist():
        near = np.union1d(by_customer[int(customer[r])], by_terminal[int(terminal[r])])
        copies.append(near[(rank[near] < rank[r]) | (near == r)])
    copy = np.repeat(np.arange(len(rows)), [len(c) for c in copies])
    taken = np.concatenate(copies)
    of = rows[copy]
    columns = {
        schema.TRANSACTION_ID: copy * len(tx) + taken,
        schema.CUSTOMER_ID: 2 * copy + (customer[taken] != customer[of]),
        schema.TERMINAL_ID: 2 * copy + (terminal[taken] != terminal[of]),
    }
    subsets = tx.take(pa.array(taken))
    for name, values in columns.items():
        subsets = subsets.set_column(subsets.schema.get_field_index(name), name, pa.array(values, pa.int64()))
    features = compute(schema.time_ordered(subsets), feature_set)
    at = {int(i): k for k, i in enumerate(schema.numpy_column(features[schema.TRANSACTION_ID]))}
    wanted = np.arange(len(rows)) * len(tx) + rows
    return features.take(pa.array([at[int(i)] for i in wanted]))


def _overtaken(tx: pa.Table, rank: np.ndarray) -> np.ndarray:
    """Per row of ``tx`` (in (time, id) order): whether an earlier row of its customer or terminal
    has a higher ``rank`` (was recorded after it)."""
    out = np.zeros(len(rank), dtype=bool)
    for column in (schema.CUSTOMER_ID, schema.TERMINAL_ID):
        entity = schema.numpy_column(tx[column])
        order = np.argsort(entity, kind="stable")  # each entity's rows, in order
        ranks, entities = rank[order] + 1, entity[order]  # ranks from 0
        first = np.r_[True, entities[1:] != entities[:-1]]
        # the running maximum of each entity's ranks: its rows' values lifted above every earlier entity's
        lift = (np.cumsum(first) - 1) * (int(ranks.max()) + 1)
        before = np.maximum.accumulate(ranks + lift) - lift  # the highest rank up to each row, itself included
        out[order[1:]] |= ~first[1:] & (before[:-1] > ranks[1:])
    return out


def _rows_by(entity: np.ndarray) -> dict[int, np.ndarray]:
    """Each entity's rows, in order."""
    order = np.argsort(entity, kind="stable")
    keys, starts = np.unique(entity[order], return_index=True)
    ends = [*starts[1:].tolist(), len(order)]
    return {int(k): order[a:b] for k, a, b in zip(keys.tolist(), starts.tolist(), ends, strict=True)}
