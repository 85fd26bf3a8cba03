"""Replay the world's next days into a live service, then prove served features equal batch ones.

Nine days: past the 7-day label delay, so the chargebacks the replay posts during the run reach
the terminal risk features of its last days, and the test shows they did.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from typer.testing import CliRunner

from fraudflow import schema
from fraudflow.cli import app
from fraudflow.features import compute, registry
from fraudflow.lake import Lake
from fraudflow.store.online import codec
from fraudflow.store.online.connect import open_store
from tests.conftest import read_lake_table
from tests.serving.conftest import WORLD, start_server

runner = CliRunner()
DAYS = 9  # > 7, the label delay
RISK = [f"TERMINAL_ID_RISK_{w}DAY_WINDOW" for w in (1, 7, 30)]


@pytest.mark.slow
def test_replay_then_consistency_finds_no_mismatch(served_lake: Path, tmp_path: Path) -> None:
    root = tmp_path / "lake"
    shutil.copytree(served_lake, root)
    server = start_server(root, options=["--answers-window-days", str(DAYS + 1)])  # consistency reads every answer
    try:
        out = runner.invoke(
            app,
            [
                "replay",
                "--data",
                str(root),
                "--url",
                server.url,
                "--days",
                str(DAYS),
                "--rate",
                "2000",
                "--concurrency",
                "1",
                "--json",
            ],
        )
        assert out.exit_code == 0, out.output
        summary = json.loads(out.stdout)
        assert summary["answered"] == summary["transactions"] > 2000 and summary["errors"] == 0
        assert 0 <= summary["p99_ms"] and 0 <= summary["auc_roc"] <= 1
    finally:
        server.stop()
    out = runner.invoke(app, ["consistency", "--data", str(root)])
    assert out.exit_code == 0, out.output
    assert f"{summary['answered']:,} of {summary['answered']:,} served" in out.output
    # and every feature reports zero mismatches
    rows = [line for line in out.output.splitlines() if "WINDOW" in line or "TX_" in line]
    assert rows and all(line.rstrip().rstrip("│").split()[-1] == "0" for line in rows)
    assert_label_feedback_reached_the_served_features(root, summary["labels_sent"])


def assert_label_feedback_reached_the_served_features(root: Path, labels_sent: int) -> None:
    """The frauds of the replayed days were posted as labels, and served risk features used them.

    Batch features recomputed as if no label had come back during the replay (the replayed days'
    TX_FRAUD set to 0) differ from the served ones on the last days; the served ones equal the
    batch features with the labels (the consistency check above).
    """
    tx = read_lake_table(root)
    replayed = pc.greater_equal(tx[schema.TX_TIME_DAYS], WORLD.nb_days)
    frauds = tx.filter(replayed)[schema.TX_FRAUD].to_numpy()
    late = tx.filter(pc.less(tx[schema.TX_TIME_DAYS], WORLD.nb_days + DAYS - 7))
    # every fraud at least 7 days older than the last transaction was posted, and nothing else
    assert 0 < int(
        late.filter(pc.greater_equal(late[schema.TX_TIME_DAYS], WORLD.nb_days))[schema.TX_FRAUD].to_numpy().sum()
    )
    assert labels_sent <= int(frauds.sum()) and labels_sent > 0
    blind = tx.set_column(
        tx.schema.get_field_index(schema.TX_FRAUD),
        schema.TX_FRAUD,
        pc.if_else(replayed, pa.scalar(0, tx[schema.TX_FRAUD].type), tx[schema.TX_FRAUD]),
    )
    fs = registry.registered(Lake(root))
    assert fs is not None
    order = [(schema.TX_DATETIME, "ascending"), (schema.TRANSACTION_ID, "ascending")]
    without = compute(blind.sort_by(order), fs).sort_by(schema.TRANSACTION_ID)
    store = open_store(None, str(root))
    try:
        served = {tx_id: codec.decode(answer).features for _, tx_id, answer in store.answers()}
    finally:
        store.close()
    ids = without[schema.TRANSACTION_ID].to_numpy()
    rows = np.flatnonzero(np.isin(ids, np.fromiter(served, np.int64)))
    changed = 0
    for k in rows:
        got = [served[int(ids[k])][n] for n in RISK]
        blind_values = [without[n][int(k)].as_py() for n in RISK]
        changed += not np.allclose(got, blind_values, rtol=1e-9, atol=1e-9)
    assert changed >= 10, f"only {changed} served vectors show the labels fed back during the replay"
