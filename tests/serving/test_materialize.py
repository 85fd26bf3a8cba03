"""Materialization: the first transactions after it get exactly the batch features."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pyarrow as pa

from fraudflow import WorldParams, generate
from fraudflow.features import HANDBOOK, compute
from fraudflow.lake import Lake
from fraudflow.records import Transaction
from fraudflow.serving.engine import Scorer
from fraudflow.store.online.materialize import materialize
from fraudflow.store.online.memory import MemoryStore
from tests.conftest import read_lake_table
from tests.features.test_oracle import assert_features_equal

WORLD = WorldParams(n_customers=300, n_terminals=400, nb_days=60, radius=10.0)


def test_features_after_materialization_are_exact(tmp_path: Path) -> None:
    generate(tmp_path, dataclasses.replace(WORLD, nb_days=50))
    lake = Lake(tmp_path)
    store = MemoryStore()
    first = materialize(lake, store, HANDBOOK)
    assert first.days == 39 and not first.up_to_date  # 37 days of history, and the margin
    assert materialize(lake, store, HANDBOOK).up_to_date
    generate(tmp_path, WORLD, from_day=50)  # the next days arrive as live traffic
    day = WORLD.start_date + dt.timedelta(days=50)
    live = lake.read_partitions("transactions", [day])
    scorer = Scorer(store, HANDBOOK)
    columns = ("TRANSACTION_ID", "TX_DATETIME", "CUSTOMER_ID", "TERMINAL_ID", "TX_AMOUNT")
    arriving = [Transaction(*row) for row in zip(*(live[c].to_pylist() for c in columns), strict=True)]
    got = [served.features for served in scorer.features(arriving)]
    online = pa.table({"TRANSACTION_ID": live["TRANSACTION_ID"], **{n: [g[n] for g in got] for n in HANDBOOK.names}})
    everything = read_lake_table(tmp_path).sort_by([("TX_DATETIME", "ascending"), ("TRANSACTION_ID", "ascending")])
    batch = compute(everything, HANDBOOK).sort_by("TRANSACTION_ID")
    batch = batch.filter(pa.compute.is_in(batch["TRANSACTION_ID"], live["TRANSACTION_ID"]))
    assert_features_equal(online.sort_by("TRANSACTION_ID"), batch, HANDBOOK.names)
    # the store catches up incrementally: only the new days are loaded
    again = materialize(lake, store, HANDBOOK)
    assert again.days == 10 and again.through == WORLD.start_date + dt.timedelta(days=59)
