"""Every answered transaction lands in the lake's prediction log once, also when the service is killed."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import httpx
import pytest

from fraudflow.lake import Lake
from fraudflow.serving.served_log import ServedLog
from fraudflow.store import predictions
from tests.serving.conftest import start_server
from tests.serving.test_resilience import traffic
from tests.store.test_predictions import batch


def own_lake(served_lake: Path, tmp_path: Path) -> Path:
    """A copy of the served lake without its online store and logs: this test's prediction log alone."""
    root = tmp_path / "lake"
    shutil.copytree(served_lake, root, ignore=shutil.ignore_patterns("*.sqlite*", "predictions", "labels"))
    return root


def score_all(url: str, txs: list[dict[str, object]]) -> dict[int, dict[str, object]]:
    with httpx.Client(timeout=10) as client:
        answers = [client.post(f"{url}/v1/score", json=tx) for tx in txs]
    assert all(r.status_code == 200 for r in answers)
    return {int(r.json()["TRANSACTION_ID"]): r.json() for r in answers}


@pytest.mark.slow
def test_every_answer_lands_once_also_after_a_sigkill(served_lake: Path, tmp_path: Path) -> None:
    root = own_lake(served_lake, tmp_path)
    txs = traffic(300)
    server = start_server(root)
    answered = score_all(server.url, txs[:200])
    server.kill()  # within the log's 5 s: its rows were in memory only
    again = start_server(root, port=server.port)  # completes the log from the store's answers first
    later = score_all(again.url, txs[150:])  # 50 sent again (duplicates: not logged twice), 100 new
    again.stop()  # a clean stop commits what waits
    for tx_id, body in later.items():
        if tx_id in answered:
            assert body["duplicate"] is True
        else:
            answered[tx_id] = body

    raw = predictions.log_table(Lake(root)).dataset()
    assert raw is not None
    ids = raw.to_table(columns=["TRANSACTION_ID"])["TRANSACTION_ID"].to_pylist()
    assert sorted(ids) == sorted(answered)  # each answered transaction once: none lost, none twice
    for row in predictions.read(Lake(root)).to_pylist():
        body = answered[row["TRANSACTION_ID"]]
        assert (row["SCORE"], row["ALERT"], row["THRESHOLD"], row["MODEL_ID"]) == (
            body["score"],
            body["alert"],
            body["threshold"],
            body["model_id"],
        )
        features = body["features"]
        assert isinstance(features, dict)
        assert row["FEATURES"] == features


def test_answers_added_one_by_one_commit_as_columns(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    log = ServedLog(lake, every=float(2**31))  # committed by the test alone
    served = [dt.datetime(2024, 1, 1, 0, 0, s) for s in range(3)]
    given = [batch(i, 1, served=served[0]) for i in range(150)]  # joined 64 at a time as they come
    given.append(batch(150, 2000, served=served[1]))
    given.append(batch(2150, 3, model_id="m2", served=served[2]))  # another model: a run of its own
    for b in given:
        log.add(b)

    pending = log.pending()
    assert [(b.model_id, len(b.txs)) for b in pending] == [("m1", 2150), ("m2", 3)]
    assert log.flush() == 2153
    assert log.pending() == []
    log.close()

    table = predictions.read(lake)
    assert table["TRANSACTION_ID"].to_pylist() == list(range(2153))
    assert table["MODEL_ID"].to_pylist() == ["m1"] * 2150 + ["m2"] * 3
    assert table["SERVED_AT"].to_pylist() == [served[0]] * 150 + [served[1]] * 2000 + [served[2]] * 3
    rows = table.to_pylist()
    assert rows[0]["FEATURES"] == {"TX_AMOUNT": 10.0, "TERMINAL_ID_RISK_7DAY_WINDOW": 0.0}
    assert rows[1999]["SCORE"] == 0.9 and rows[1999]["ALERT"] is True
