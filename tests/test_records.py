"""``TxColumns.of``: transactions into columns, each time to the microsecond as ``to_us`` gives it."""

from __future__ import annotations

import datetime as dt
import random

import numpy as np
import pytest

from fraudflow.records import Transaction, TxColumns


@pytest.mark.parametrize("n", [0, 1, 7, 1000])
def test_columns_hold_each_field_and_the_time_to_the_microsecond(n: int) -> None:
    rng = random.Random(n)
    start = dt.datetime(1969, 12, 31, 23, 59, 59, 999_999)  # before the epoch too
    txs = [
        Transaction(
            rng.randrange(2**40),
            start + dt.timedelta(microseconds=rng.randrange(10**15)),
            rng.randrange(5000),
            rng.randrange(10000),
            rng.uniform(0, 1e4),
        )
        for _ in range(n)
    ]
    columns = TxColumns.of(txs)
    times = np.array([t.tx_datetime for t in txs], dtype="datetime64[us]").astype(np.int64)
    assert columns.ts_us.dtype == np.int64 and columns.ts_us.tolist() == times.tolist()
    assert columns.tx_id.tolist() == [t.transaction_id for t in txs]
    assert columns.customer.tolist() == [t.customer_id for t in txs]
    assert columns.terminal.tolist() == [t.terminal_id for t in txs]
    assert columns.amount.dtype == np.float64 and columns.amount.tolist() == [t.amount for t in txs]


def test_one_transaction_gives_the_columns_a_batch_gives_it() -> None:
    """A batch of one (its own path) against the same transactions in one batch: every field, its type."""
    rng = random.Random(3)
    start = dt.datetime(1, 1, 1)
    txs = [
        Transaction(
            rng.choice([0, 2**62, rng.randrange(2**40)]),
            start + dt.timedelta(microseconds=rng.randrange(315_537_897_600 * 10**6)),
            rng.randrange(-5, 5000),
            rng.randrange(10000),
            rng.choice([0.0, 1e-300, 0.1, rng.uniform(0, 1e4)]),
        )
        for _ in range(2000)
    ]
    batch = TxColumns.of(txs)
    for i, tx in enumerate(txs):
        one = TxColumns.of([tx])
        for name in ("ts_us", "tx_id", "customer", "terminal", "amount"):
            column = getattr(one, name)
            assert column.dtype == getattr(batch, name).dtype and column.shape == (1,)
            assert column.tolist() == [getattr(batch, name)[i]], (i, name)
