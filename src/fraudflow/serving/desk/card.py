"""One card's page: its transactions of the day, its customer's usual amounts, why it was alerted."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from fraudflow import schema
from fraudflow.lake import Lake
from fraudflow.serving.desk.explain import Contribution, Explainer
from fraudflow.serving.desk.queue import Label
from fraudflow.serving.desk.served import Served, day_number, read
from fraudflow.store.predictions import PredictionBatch

#: the days before the card's day its customer's usual amounts are taken from
USUAL_DAYS = 30


@dataclass(frozen=True)
class Transaction:
    tx_id: int
    time: dt.datetime
    terminal: int
    amount: float
    ratio: float | None  # amount / the customer's median amount (None: no history)
    score: float
    alert: bool
    model_id: str
    label: Label | None


@dataclass(frozen=True)
class Usual:
    """The customer's amounts over the days before: how many, median, mean, 90th percentile."""

    days: int
    count: int
    median: float
    mean: float
    p90: float


@dataclass(frozen=True)
class CardView:
    day: dt.date
    customer: int
    transactions: list[Transaction]
    usual: Usual
    explained: Transaction  # its highest-scored transaction
    contributions: list[Contribution]


def view(
    lake: Lake,
    served: Served,
    pending: list[PredictionBatch],
    day: dt.date,
    customer: int,
    labels: dict[int, Label],
    explainer: Explainer,
) -> CardView | None:
    """Card ``customer`` on ``day`` (None when the service answered none of its transactions that day)."""
    rows = served.take(np.flatnonzero((served.customer == customer) & (served.day == day_number(day))))
    if not len(rows):
        return None
    usual = usual_amounts(lake, pending, day, customer)
    txs = [
        Transaction(
            int(rows.tx_id[i]),
            dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=int(rows.ts_us[i])),
            int(rows.terminal[i]),
            float(rows.amount[i]),
            float(rows.amount[i]) / usual.median if usual.count and usual.median > 0 else None,
            float(rows.score[i]),
            bool(rows.alert[i]),
            str(rows.model_id[i]),
            labels.get(int(rows.tx_id[i])),
        )
        for i in range(len(rows))
    ]
    top = int(np.argmax(rows.score))
    contributions = explainer.explain(str(rows.model_id[top]), rows.names, rows.vectors[top])
    return CardView(day, customer, txs, usual, txs[top], contributions)


def usual_amounts(lake: Lake, pending: list[PredictionBatch], day: dt.date, customer: int) -> Usual:
    """The customer's amounts of the ``USUAL_DAYS`` days before ``day``: the lake's transactions and
    the service's answers (each transaction once)."""
    start, end = day - dt.timedelta(days=USUAL_DAYS), day - dt.timedelta(days=1)
    answered = read(lake, pending, start, end)
    mine = answered.customer == customer
    ids, amounts = list(answered.tx_id[mine].tolist()), list(answered.amount[mine].tolist())
    days = [d for d in lake.partitions("transactions") if start <= d <= end]
    if days:
        import pyarrow.compute as pc

        table = lake.read_partitions(
            "transactions", days, columns=[schema.TRANSACTION_ID, schema.CUSTOMER_ID, schema.TX_AMOUNT]
        )
        table = table.filter(pc.equal(table[schema.CUSTOMER_ID], customer))
        seen = set(ids)
        for tx_id, amount in zip(
            table[schema.TRANSACTION_ID].to_pylist(), table[schema.TX_AMOUNT].to_pylist(), strict=True
        ):
            if tx_id not in seen:
                ids.append(tx_id)
                amounts.append(amount)
    values = np.asarray(amounts, dtype=np.float64)
    if not len(values):
        return Usual(USUAL_DAYS, 0, float("nan"), float("nan"), float("nan"))
    median, p90 = np.quantile(values, [0.5, 0.9])
    return Usual(USUAL_DAYS, len(values), float(median), float(values.mean()), float(p90))
