"""The online path replays the handbook and gives its published features (FEATURES.md, Online)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fraudflow.features import DEFAULT, compute
from fraudflow.features.online import Transaction
from fraudflow.serving.engine import Scorer
from fraudflow.store.online import MemoryStore
from tests.conftest import SWAPPED_PAIRS, handbook_file
from tests.features.test_oracle import CUSTOMER_FEATURES, assert_features_equal

DAYS = 40


def replay(tx: pa.Table) -> pa.Table:
    """Each transaction in TRANSACTION_ID order, each fraud label delivered right after it."""
    scorer = Scorer(MemoryStore(), DEFAULT)
    cols = [tx[c].to_pylist() for c in ("TRANSACTION_ID", "TX_DATETIME", "CUSTOMER_ID", "TERMINAL_ID", "TX_AMOUNT")]
    frauds = tx["TX_FRAUD"].to_pylist()
    rows = []
    for values, fraud in zip(zip(*cols, strict=True), frauds, strict=True):
        scored = scorer.features(Transaction(*values))
        rows.append(scored.features)
        if fraud:
            scorer.store.add_labels({values[0]: 1})
    return pa.table({"TRANSACTION_ID": cols[0], **{n: [r[n] for r in rows] for n in DEFAULT.names}})


@pytest.mark.slow
def test_replaying_40_days_gives_the_published_features() -> None:
    tx = pq.read_table(handbook_file("transactions.parquet"))
    tx = tx.filter(pa.compute.less(tx["TX_TIME_DAYS"], DAYS))
    got = replay(tx)
    oracle = pq.read_table(handbook_file("features.parquet")).slice(0, tx.num_rows)
    oracle = oracle.append_column("TX_AMOUNT", tx["TX_AMOUNT"])
    documented = np.isin(got["TRANSACTION_ID"].to_numpy(), np.array(SWAPPED_PAIRS).ravel())
    assert documented.sum() == 6  # the pairs of the first 40 days
    assert_features_equal(got, oracle, DEFAULT.names, skip=documented)
    assert_features_equal(got, oracle, [n for n in DEFAULT.names if n not in CUSTOMER_FEATURES])
    # and row for row the batch engine's answer, the documented rows included
    batch = compute(tx, DEFAULT)
    assert_features_equal(got, batch, DEFAULT.names)
