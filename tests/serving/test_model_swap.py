"""``serve`` follows the registry's production alias: a promoted model answers, under load, without a failed request."""

from __future__ import annotations

import datetime as dt
import threading
import time
from pathlib import Path

import httpx
import pytest

from fraudflow.lake import Lake
from fraudflow.training import registry, workflow
from fraudflow.training.model import latest_model
from tests.serving.conftest import start_server
from tests.serving.test_prediction_log import own_lake
from tests.serving.test_resilience import traffic


@pytest.mark.slow
def test_a_promoted_model_answers_without_a_restart_or_a_failed_request(served_lake: Path, tmp_path: Path) -> None:
    root = own_lake(served_lake, tmp_path)
    lake = Lake(root)
    first = latest_model(lake)
    registry.promote(lake, first)
    time.sleep(1.1)  # model ids begin with their creation second: the challenger's sorts after
    second = workflow.train(lake, dt.date(2018, 4, 10), {"n_estimators": 5, "max_depth": 2}).model_id
    server = start_server(root, options=["--production-poll", "0.3"])
    txs = traffic(4000)
    seen: list[list[tuple[int, str]]] = [[] for _ in range(4)]

    def send(k: int) -> None:
        with httpx.Client(timeout=10) as client:
            for tx in txs[k::4]:
                r = client.post(f"{server.url}/v1/score", json=tx)
                model_id = r.json().get("model_id", "") if r.status_code == 200 else ""
                seen[k].append((r.status_code, model_id))
                if model_id == second and len([m for _, m in seen[k] if m == second]) >= 20:
                    return

    try:
        senders = [threading.Thread(target=send, args=(k,)) for k in range(4)]
        for t in senders:
            t.start()
        time.sleep(1.0)  # traffic flowing on the first model
        registry.promote(lake, second, reason="test")
        for t in senders:
            t.join(120)
    finally:
        server.stop()
    for answers in seen:
        assert [status for status, _ in answers] == [200] * len(answers)  # no failed request
        models = [m for _, m in answers]
        assert models[0] == first and models[-1] == second
        k = models.index(second)
        assert models[:k] == [first] * k and models[k:] == [second] * (len(models) - k)  # switched once, for good
