"""The framework-free ``POST /v1/score``: what it answers itself, and that it hands everything else on unchanged."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

import pytest
from pydantic import ValidationError

from fraudflow.errors import LakeError
from fraudflow.records import Transaction
from fraudflow.serving.batching import Batcher
from fraudflow.serving.engine import Answer
from fraudflow.serving.fast_score import FastScore
from fraudflow.serving.metrics import Metrics

KEY = "s3cret"
TX = {
    "TRANSACTION_ID": 7,
    "TX_DATETIME": "2018-10-01T08:30:00",
    "CUSTOMER_ID": 1,
    "TERMINAL_ID": 2,
    "TX_AMOUNT": 12.5,
}


class EchoScorer:
    """Answers each transaction with a body naming it; fails when told to."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.fail = fail
        self.seen: list[Transaction] = []

    def score(self, txs: Sequence[Transaction]) -> list[Answer]:
        if self.fail is not None:
            raise self.fail
        self.seen.extend(txs)
        return [
            Answer(t.transaction_id, 0.25, False, 0.5, "m", False, "{}", f'{{"id":{t.transaction_id}}}') for t in txs
        ]


class Inner:
    """The app behind: records what reached it (the body as it would read it) and answers 299."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        self.bodies.append(body)
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b"app"})


def call(
    layer: FastScore, chunks: list[bytes], headers: dict[str, str], path: str = "/v1/score", method: str = "POST"
) -> tuple[int, bytes]:
    """One request through ``layer``: its status and body."""
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "path": path,
        "method": method,
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    asyncio.run(layer(scope, receive, send))
    status = sent[0]["status"]
    assert isinstance(status, int)
    return status, b"".join(m.get("body", b"") for m in sent[1:])  # type: ignore[misc]


def layer(scorer: EchoScorer, key: str | None = KEY, limit: int = 1000) -> tuple[FastScore, Inner, Metrics]:
    inner, metrics = Inner(), Metrics()
    return FastScore(inner, Batcher(scorer), metrics, key, limit), inner, metrics


def headers(body: bytes, **extra: str) -> dict[str, str]:
    return {"content-type": "application/json", "content-length": str(len(body)), "x-api-key": KEY, **extra}


def test_an_accepted_request_is_answered_without_the_app_and_counted() -> None:
    scorer = EchoScorer()
    fast, inner, metrics = layer(scorer)
    body = json.dumps(TX).encode()
    assert call(fast, [body[:10], body[10:]], headers(body)) == (200, b'{"id":7}')
    assert inner.bodies == []
    assert [t.transaction_id for t in scorer.seen] == [7]
    rendered = metrics.render().decode()
    assert 'fraudflow_requests_total{route="/v1/score",status="200"} 1.0' in rendered
    assert "fraudflow_transactions_scored_total 1.0" in rendered


@pytest.mark.parametrize(
    ("body", "extra", "why"),
    [
        (json.dumps(TX).encode(), {"x-api-key": "wrong"}, "wrong key"),
        (json.dumps(TX).encode(), {"content-type": "text/plain"}, "not declared JSON"),
        (json.dumps({**TX, "TX_AMOUNT": "12"}).encode(), {}, "a field refused"),
        (json.dumps({**TX, "EXTRA": 1}).encode(), {}, "an extra field"),
        (b'{"TRANSACTION_ID": 7', {}, "not JSON"),
        (b"\xff\xfe", {}, "not UTF-8"),
        (b"[" * 900, {}, "nested too deep"),
        (json.dumps(TX).encode() + b" " * 1000, {}, "over the limit"),
    ],
)
def test_anything_else_reaches_the_app_with_its_body_unchanged(body: bytes, extra: dict[str, str], why: str) -> None:
    scorer = EchoScorer()
    fast, inner, _ = layer(scorer, limit=1000 if why != "nested too deep" else 10_000)
    assert call(fast, [body[:5], body[5:]], headers(body, **extra)) == (299, b"app"), why
    assert inner.bodies == [body]
    assert scorer.seen == []


def test_a_body_without_its_length_over_the_limit_reaches_the_app_whole() -> None:
    fast, inner, _ = layer(EchoScorer(), limit=100)
    chunks = [b"x" * 60, b"y" * 60, b"z" * 60]
    hdrs = headers(b"")
    del hdrs["content-length"]
    assert call(fast, chunks, hdrs)[0] == 299
    assert inner.bodies == [b"".join(chunks)]


def test_other_routes_and_methods_reach_the_app() -> None:
    fast, inner, _ = layer(EchoScorer())
    body = json.dumps(TX).encode()
    assert call(fast, [body], headers(body), path="/v1/score/batch")[0] == 299
    assert call(fast, [body], headers(body), method="PUT")[0] == 299
    assert inner.bodies == [body, body]


def test_without_a_key_configured_no_key_is_needed() -> None:
    fast, inner, _ = layer(EchoScorer(), key=None)
    body = json.dumps(TX).encode()
    hdrs = headers(body)
    del hdrs["x-api-key"]
    assert call(fast, [body], hdrs) == (200, b'{"id":7}')
    assert inner.bodies == []


def test_a_store_failure_is_the_apps_503_answer() -> None:
    fast, _, metrics = layer(EchoScorer(fail=LakeError("the online store is unavailable: gone")))
    body = json.dumps(TX).encode()
    status, answer = call(fast, [body], headers(body))
    assert (status, json.loads(answer)) == (503, {"detail": "the online store is unavailable: gone"})
    assert 'fraudflow_requests_total{route="/v1/score",status="503"} 1.0' in metrics.render().decode()


def test_a_batch_is_answered_whole_without_the_app_and_counted() -> None:
    scorer = EchoScorer()
    fast, inner, metrics = layer(scorer, limit=10_000)
    body = json.dumps({"transactions": [TX, {**TX, "TRANSACTION_ID": 8}]}).encode()
    assert call(fast, [body[:7], body[7:]], headers(body), path="/v1/score/batch") == (
        200,
        b'{"results":[{"id":7},{"id":8}]}',
    )
    assert inner.bodies == []
    assert [t.transaction_id for t in scorer.seen] == [7, 8]
    rendered = metrics.render().decode()
    assert 'fraudflow_requests_total{route="/v1/score/batch",status="200"} 1.0' in rendered
    assert "fraudflow_transactions_scored_total 2.0" in rendered


@pytest.mark.parametrize(
    ("batch", "why"),
    [
        ([TX, TX], "an id twice (the app's 409)"),
        ([TX, {**TX, "TRANSACTION_ID": 8, "EXTRA": 1}], "a transaction refused"),
        ([], "empty"),
    ],
)
def test_a_batch_it_does_not_accept_reaches_the_app_unchanged(batch: list[dict[str, object]], why: str) -> None:
    scorer = EchoScorer()
    fast, inner, _ = layer(scorer, limit=10_000)
    body = json.dumps({"transactions": batch}).encode()
    assert call(fast, [body], headers(body), path="/v1/score/batch") == (299, b"app"), why
    assert inner.bodies == [body]
    assert scorer.seen == []


#: Bodies of every shape a field can take: ints as floats and floats as ints, times with and without
#: their fraction or an offset, keys in another order or twice, escapes, spaces; and refused ones.
BODIES = [
    json.dumps(TX),
    json.dumps({**TX, "TX_AMOUNT": 12}),
    json.dumps({**TX, "TX_AMOUNT": 0, "CUSTOMER_ID": 0}),
    json.dumps({**TX, "TRANSACTION_ID": 5.0}),
    json.dumps({**TX, "TX_DATETIME": "2018-10-01T08:30:00.000250"}),
    json.dumps({**TX, "TX_DATETIME": "2018-10-01 08:30:00"}),
    json.dumps({**TX, "TX_DATETIME": "2018-10-01T08:30:00+02:00"}),
    json.dumps({**TX, "TX_DATETIME": "2018-10-01"}),
    json.dumps(dict(reversed(list(TX.items())))),
    '{"TRANSACTION_ID": 1, "TRANSACTION_ID": 2, "TX_DATETIME": "2018-10-01T08:30:00", '
    '"CUSTOMER_ID": 3, "TERMINAL_ID": 4, "TX_AMOUNT": 5.5}',
    json.dumps({**TX, "TX_DATETIME": "2018-10-01T08:30:00"}).replace("08:30", "\\u0030\\u0038:30"),
    json.dumps({**TX, "TX_AMOUNT": 1e12}),
    json.dumps({**TX, "TX_AMOUNT": 1.5e12}),
    json.dumps({**TX, "TX_AMOUNT": -0.5}),
    json.dumps({**TX, "TX_AMOUNT": "NaN"}),
    json.dumps(TX).replace(str(TX["TX_AMOUNT"]), "NaN"),
    json.dumps(TX).replace(str(TX["TX_AMOUNT"]), "Infinity"),
    json.dumps({**TX, "TRANSACTION_ID": 2**62}),
    json.dumps({**TX, "TRANSACTION_ID": 2**70}),
    json.dumps({**TX, "TRANSACTION_ID": 5.5}),
    json.dumps({**TX, "TRANSACTION_ID": True}),
    json.dumps({**TX, "CUSTOMER_ID": "3"}),
    json.dumps({**TX, "TX_DATETIME": 1538382600}),
    json.dumps({**TX, "TX_DATETIME": "yesterday"}),
    json.dumps({k: v for k, v in TX.items() if k != "TERMINAL_ID"}),
    json.dumps([TX]),
    "null",
]


@pytest.mark.parametrize("body", BODIES)
def test_a_body_is_accepted_as_the_app_accepts_it_and_gives_its_transaction(body: str) -> None:
    """The fast path's parse (``model_validate_json``) against the app's (``json.loads``, then the model)."""
    from fraudflow.serving.fast_score import _transaction
    from fraudflow.serving.schemas import TransactionIn

    try:
        expected = TransactionIn.model_validate(json.loads(body)).transaction()
    except (ValueError, ValidationError):
        expected = None
    assert _transaction(body.encode()) == expected
