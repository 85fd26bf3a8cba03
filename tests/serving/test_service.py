"""The service over real HTTP: answers, idempotency, late arrivals, labels, validation, auth, metrics."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from fraudflow.lake import Lake
from fraudflow.store import labels
from tests.serving.conftest import API_KEY, Server, start_server

BASE = {
    "TRANSACTION_ID": 10_000_001,
    "TX_DATETIME": "2018-05-16T10:00:00",
    "CUSTOMER_ID": 7,
    "TERMINAL_ID": 11,
    "TX_AMOUNT": 42.5,
}


def scored_total(server: Server) -> int:
    text = httpx.get(f"{server.url}/metrics").text
    return int(re.search(r"^fraudflow_transactions_scored_total (\d+)(?:\.0)?$", text, re.M).group(1))  # type: ignore[union-attr]


def test_score_answers_with_features_contributions_and_model(server: Server) -> None:
    r = httpx.post(f"{server.url}/v1/score", json=BASE)
    assert r.status_code == 200, r.text
    body = r.json()
    assert 0 <= body["score"] <= 1 and body["alert"] == (body["score"] >= body["threshold"])
    assert body["features"]["TX_AMOUNT"] == 42.5 and body["features"]["CUSTOMER_ID_NB_TX_1DAY_WINDOW"] >= 1
    assert len(body["top_features"]) == 3 and body["model_id"] and body["duplicate"] is False


def test_the_same_transaction_twice_is_answered_the_same_and_counted_once(server: Server) -> None:
    tx = {**BASE, "TRANSACTION_ID": 10_000_002}
    first = httpx.post(f"{server.url}/v1/score", json=tx).json()
    before = scored_total(server)
    second = httpx.post(f"{server.url}/v1/score", json=tx).json()
    assert scored_total(server) == before
    assert second["duplicate"] is True
    assert {k: v for k, v in second.items() if k != "duplicate"} == {k: v for k, v in first.items() if k != "duplicate"}


def test_a_late_transaction_is_placed_in_time_order(server: Server) -> None:
    later = {**BASE, "TRANSACTION_ID": 10_000_010, "CUSTOMER_ID": 77, "TX_DATETIME": "2018-05-16T12:00:00"}
    late = {**BASE, "TRANSACTION_ID": 10_000_011, "CUSTOMER_ID": 77, "TX_DATETIME": "2018-05-16T11:00:00"}
    after = {**BASE, "TRANSACTION_ID": 10_000_012, "CUSTOMER_ID": 77, "TX_DATETIME": "2018-05-16T13:00:00"}
    counts = [
        httpx.post(f"{server.url}/v1/score", json=t).json()["features"]["CUSTOMER_ID_NB_TX_1DAY_WINDOW"]
        for t in (later, late, after)
    ]
    base = counts[0] - 1  # the customer's history from the lake
    assert counts == [base + 1, base + 1, base + 3]  # the late one does not see the later one


def test_batch_and_labels(server: Server) -> None:
    txs = [{**BASE, "TRANSACTION_ID": 10_000_100 + i, "TERMINAL_ID": 500 + i} for i in range(5)]
    r = httpx.post(f"{server.url}/v1/score/batch", json={"transactions": txs})
    assert r.status_code == 200 and [x["TRANSACTION_ID"] for x in r.json()["results"]] == [
        t["TRANSACTION_ID"] for t in txs
    ]
    r = httpx.post(f"{server.url}/v1/labels", json={"labels": [{"TRANSACTION_ID": 10_000_100, "TX_FRAUD": 1}]})
    assert r.status_code == 200 and r.json() == {"accepted": 1}
    # in the lake with its arrival time and source (training sets take labels by arrival)
    landed = [x for x in labels.read(Lake(server.root)).to_pylist() if x["TRANSACTION_ID"] == 10_000_100]
    assert [(x["TX_FRAUD"], x["SOURCE"]) for x in landed] == [(1, "api")]


INVALID = {
    "bad JSON": (b'{"TRANSACTION_ID": 1,', "json"),
    "missing field": ({k: v for k, v in BASE.items() if k != "TERMINAL_ID"}, "TERMINAL_ID"),
    "extra field": ({**BASE, "MERCHANT": 3}, "MERCHANT"),
    "id as text": ({**BASE, "CUSTOMER_ID": "7"}, "CUSTOMER_ID"),
    "negative amount": ({**BASE, "TX_AMOUNT": -1.0}, "TX_AMOUNT"),
    "infinite amount": (
        b'{"TRANSACTION_ID": 5, "TX_DATETIME": "2018-05-16T10:00:00", "CUSTOMER_ID": 1, '
        b'"TERMINAL_ID": 1, "TX_AMOUNT": Infinity}',
        "TX_AMOUNT",
    ),
    "NaN amount": (
        b'{"TRANSACTION_ID": 5, "TX_DATETIME": "2018-05-16T10:00:00", "CUSTOMER_ID": 1, '
        b'"TERMINAL_ID": 1, "TX_AMOUNT": NaN}',
        "TX_AMOUNT",
    ),
    "unknown date format": ({**BASE, "TX_DATETIME": "16/05/2018 10:00"}, "ISO 8601"),
    "negative id": ({**BASE, "TERMINAL_ID": -2}, "TERMINAL_ID"),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_malformed_requests_get_a_precise_4xx_and_change_nothing(server: Server, case: str) -> None:
    body, mentioned = INVALID[case]
    before = scored_total(server)
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    r = httpx.post(f"{server.url}/v1/score", content=content, headers={"content-type": "application/json"})
    assert 400 <= r.status_code < 500, r.text
    assert mentioned.lower() in r.text.lower()
    assert scored_total(server) == before


def test_limits(server: Server) -> None:
    big = {"transactions": [{**BASE, "TRANSACTION_ID": i} for i in range(1001)]}
    r = httpx.post(f"{server.url}/v1/score/batch", json=big)
    assert r.status_code in (413, 422)
    r = httpx.post(
        f"{server.url}/v1/score", content=b"{" + b" " * (2 << 20) + b"}", headers={"content-type": "application/json"}
    )
    assert r.status_code == 413 and "bytes" in r.text
    dup = {"transactions": [BASE, BASE]}
    assert httpx.post(f"{server.url}/v1/score/batch", json=dup).status_code == 409


def test_health_ready_metrics(server: Server) -> None:
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok", "model_id": None, "detail": None}
    assert httpx.get(f"{server.url}/readyz").json()["status"] == "ready"
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{server.url}/metrics").text
    # parsed (a malformed exposition fails here), labels compared as a set: their order is free
    samples = {
        (sample.name, frozenset(sample.labels.items()))
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    assert ("fraudflow_request_seconds_bucket", frozenset({("route", "/v1/score"), ("le", "0.01")})) in samples
    assert "fraudflow_alerts_total" in text


def test_an_api_key_when_configured(served_lake: Path, tmp_path: Path) -> None:
    keyed = start_server(served_lake, api_key=API_KEY, online=f"sqlite://{tmp_path}/auth.sqlite")
    try:
        assert httpx.post(f"{keyed.url}/v1/score", json=BASE).status_code == 401
        assert (
            httpx.post(f"{keyed.url}/v1/score", json=BASE, headers={"X-API-Key": "wrong-key-0123456789"}).status_code
            == 401
        )
        assert httpx.post(f"{keyed.url}/v1/score", json=BASE, headers={"X-API-Key": API_KEY}).status_code == 200
        assert httpx.get(f"{keyed.url}/healthz").status_code == 200
    finally:
        keyed.stop()


def test_the_served_score_is_the_models_prediction(server: Server) -> None:
    import numpy as np
    import pyarrow as pa

    from fraudflow.lake import Lake
    from fraudflow.training import model

    body = httpx.post(f"{server.url}/v1/score", json={**BASE, "TRANSACTION_ID": 10_000_500}).json()
    m = model.load(Lake(server.root), body["model_id"])
    expected = m.predict(pa.table({k: [v] for k, v in body["features"].items()}))[0]
    assert body["score"] == pytest.approx(float(expected), abs=1e-6)
    assert {t["feature"] for t in body["top_features"]} <= set(m.features)
    assert np.isfinite([t["contribution"] for t in body["top_features"]]).all()


def test_the_published_schema_states_what_the_service_accepts(server: Server) -> None:
    """Bounds as exact JSON integers (2**62, not 4.611686018427388e+18), every error status documented."""
    schema = httpx.get(f"{server.url}/openapi.json").json()
    tx = schema["components"]["schemas"]["TransactionIn"]["properties"]
    assert tx["TRANSACTION_ID"]["exclusiveMaximum"] == 2**62 and type(tx["TRANSACTION_ID"]["exclusiveMaximum"]) is int
    assert (tx["TX_AMOUNT"]["minimum"], tx["TX_AMOUNT"]["maximum"]) == (0, 1e12)
    for route in ("/v1/score", "/v1/score/batch", "/v1/labels"):
        assert {"200", "400", "401", "409", "413", "422", "503"} <= set(schema["paths"][route]["post"]["responses"])
    ok = {**BASE, "TRANSACTION_ID": 10_000_600.0, "TX_AMOUNT": 3}  # 7.0 is an integer to JSON Schema
    assert httpx.post(f"{server.url}/v1/score", json=ok).json()["TRANSACTION_ID"] == 10_000_600
    for too_big in (2**62, 2**62 + 94):
        assert httpx.post(f"{server.url}/v1/score", json={**BASE, "TRANSACTION_ID": too_big}).status_code == 422
    assert httpx.post(f"{server.url}/v1/score", json={**BASE, "TRANSACTION_ID": 2**62 - 1}).status_code == 200
