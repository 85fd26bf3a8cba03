"""SageMaker's hosting contract: GET /ping and POST /invocations, on a real `fraudflow serve`, and the
image's entrypoint serving an S3 lake with Redis as SageMaker runs it (`<entrypoint> serve`)."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from tests.serving.conftest import API_KEY, WORLD, RedisServer, Server, start_server
from tests.serving.test_metrics import requests_total

ENTRYPOINT = Path(__file__).resolve().parents[2] / "deploy" / "serve-entrypoint.sh"


def tx(i: int, **changes: object) -> dict[str, object]:
    return {
        "TRANSACTION_ID": 30_000_000 + i,
        "TX_DATETIME": f"2018-05-16T{10 + i % 10}:00:00",
        "CUSTOMER_ID": 5,
        "TERMINAL_ID": 17 + i,
        "TX_AMOUNT": 20.0 + i,
        **changes,
    }


def test_ping_and_invocations_answer_as_the_v1_routes(server: Server) -> None:
    assert httpx.get(f"{server.url}/ping").status_code == 200
    one = httpx.post(f"{server.url}/invocations", json=tx(1))
    assert one.status_code == 200 and one.headers["content-type"] == "application/json", one.text
    answer = one.json()
    assert answer["TRANSACTION_ID"] == 30_000_001 and answer["duplicate"] is False and len(answer["top_features"]) == 3
    # the same scoring and the same store: /v1/score knows the transaction and answers it the same
    again = httpx.post(f"{server.url}/v1/score", json=tx(1)).json()
    assert again["duplicate"] is True and {k: v for k, v in again.items() if k != "duplicate"} == {
        k: v for k, v in answer.items() if k != "duplicate"
    }
    batch = httpx.post(f"{server.url}/invocations", json={"transactions": [tx(2), tx(3)]})
    assert batch.status_code == 200 and [r["TRANSACTION_ID"] for r in batch.json()["results"]] == [
        30_000_002,
        30_000_003,
    ]


def test_invocations_refuse_what_the_v1_routes_refuse(server: Server) -> None:
    """Each kind of body is validated alone: the refusal names the field of the kind that was sent."""
    url = f"{server.url}/invocations"
    r = httpx.post(url, json=tx(4, TX_AMOUNT=-1.0))
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "transaction", "TX_AMOUNT"]
    r = httpx.post(url, json={"transactions": [tx(5, MERCHANT=1)]})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "batch", "transactions", 0, "MERCHANT"]
    assert httpx.post(url, json={"transactions": [tx(6), tx(6)]}).status_code == 409
    assert httpx.post(url, json={"transactions": []}).status_code == 422
    r = httpx.post(url, content=b"30000007,2018-05-16 10:00:00,5,17,20.0", headers={"content-type": "text/csv"})
    assert r.status_code == 415 and "application/json" in r.json()["detail"]
    counts = requests_total(httpx.get(f"{server.url}/metrics").text)
    assert all(counts[("/invocations", status)] >= 1 for status in ("409", "415", "422")), counts
    assert httpx.post(f"{server.url}/v1/score", json=tx(4)).json()["duplicate"] is False  # nothing was committed


def test_invocations_follow_the_api_key_setting_and_ping_stays_open(served_lake: Path, tmp_path: Path) -> None:
    keyed = start_server(served_lake, api_key=API_KEY, online=f"sqlite://{tmp_path / 'keyed.sqlite'}")
    try:
        assert httpx.get(f"{keyed.url}/ping").status_code == 200  # SageMaker's health check sends no key
        assert httpx.post(f"{keyed.url}/invocations", json=tx(8)).status_code == 401
        assert httpx.post(f"{keyed.url}/invocations", json=tx(8), headers={"X-API-Key": API_KEY}).status_code == 200
    finally:
        keyed.stop()


def run_entrypoint(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    """The image's entrypoint with ``env``, ``fraudflow`` found on PATH as in the image."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FRAUDFLOW_", "SAGEMAKER_"))} | env
    return subprocess.Popen(
        ["sh", str(ENTRYPOINT), *args],
        env={**env, "PATH": path},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_the_entrypoint_needs_the_lake() -> None:
    proc = run_entrypoint({}, "serve")
    _, err = proc.communicate(timeout=60)
    (line,) = err.strip().splitlines()
    assert proc.returncode != 0 and "FRAUDFLOW_DATA" in line


@pytest.mark.slow
def test_the_image_entrypoint_serves_an_s3_lake_with_redis(s3_root: str, persistent_redis: RedisServer) -> None:
    """As SageMaker runs the container: `serve`, the lake on S3 (moto's server here) and the online
    store in Redis, both named in the environment; /ping, then /invocations."""
    import redis

    from fraudflow import generate
    from fraudflow.features import FRAUDFLOW, build_features
    from fraudflow.lake import Lake
    from fraudflow.training import workflow

    generate(s3_root, WORLD)
    build_features(s3_root, FRAUDFLOW)
    model_id = workflow.train(Lake(s3_root), dt.date(2018, 4, 10), {"n_estimators": 20, "max_depth": 3}).model_id
    port = free_port()
    env = {"FRAUDFLOW_DATA": s3_root, "FRAUDFLOW_ONLINE": persistent_redis.url(0), "SAGEMAKER_BIND_TO_PORT": str(port)}
    proc = run_entrypoint(env, "serve")
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "the service did not answer /ping"
            try:
                if httpx.get(f"{url}/ping", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        answer = httpx.post(f"{url}/invocations", json=tx(9)).json()
        assert answer["model_id"] == model_id and answer["duplicate"] is False
        results = httpx.post(f"{url}/invocations", json={"transactions": [tx(9), tx(10)]}).json()["results"]
        assert [r["duplicate"] for r in results] == [True, False]
        stored = redis.Redis.from_url(persistent_redis.url(0)).hmget("fraudflow:answers", ["30000009", "30000010"])
        assert all(v is not None for v in stored)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    # SIGTERM (SageMaker's stop) ends it gracefully; uvicorn then ends by the signal it was sent
    assert proc.returncode == -signal.SIGTERM and "Traceback" not in err, err
