"""``POST /v1/score`` and ``/v1/score/batch`` without the framework for the requests it accepts; the rest to the app.

The framework (routing, dependency injection, request and response objects) costs more than
fraudflow's own work on a transaction: FastAPI answering a constant after the same validation
saturates at about 2,600 requests/s on one core here. This pure ASGI layer sits in front of the
app and answers the requests a card network sends all day: ``POST /v1/score`` with a JSON body
that ``TransactionIn`` accepts (the model the app validates with, here parsing and validating in
one step by pydantic's JSON parser, ``model_validate_json``: 5 µs, where ``json.loads`` then
validating the parsed object take 16; a body it accepts gives the transaction the app's way gives),
the right API key and a body under the limit. It then does what the route does (the batcher, the
metrics) and what the middleware does (the request counted and timed under its route template). A
batch (``POST /v1/score/batch``) it takes when ``BatchIn`` accepts the body, the same way (4-6 µs a
transaction), and its TRANSACTION_IDs are distinct; it is scored as the route scores it, in one call.

Any other request, and any request it does not accept (a wrong key, a body over the limit or not
JSON, a field the model refuses), goes to the app unchanged, the body it read handed on as it came:
every refusal is the app's, so errors cannot differ between the two paths. A scorer failure (the
store unavailable) becomes the app's error answer for it (``http_errors``).
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Iterable

from pydantic import ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fraudflow.errors import FraudflowError
from fraudflow.records import Transaction
from fraudflow.serving.batching import Batcher
from fraudflow.serving.engine import Answer, batch_body
from fraudflow.serving.metrics import Metrics
from fraudflow.serving.schemas import BatchIn, TransactionIn

ROUTE = "/v1/score"
BATCH_ROUTE = "/v1/score/batch"
HEADERS = [(b"content-type", b"application/json")]


class FastScore:
    """Pure ASGI: accepted ``POST /v1/score`` requests answered here, the rest by ``app``."""

    def __init__(
        self, app: ASGIApp, batcher: Batcher[Answer], metrics: Metrics, api_key: str | None, max_body_bytes: int
    ) -> None:
        self.app = app
        self.batcher = batcher
        self.metrics = metrics
        self.api_key = None if api_key is None else api_key.encode()
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = scope["path"] if scope["type"] == "http" and scope["method"] == "POST" else None
        if route not in (ROUTE, BATCH_ROUTE) or not self.accepts(scope["headers"]):
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        body, more = await self._read(receive)
        if route == ROUTE:
            tx = None if more else _transaction(body)
            txs = None if tx is None else [tx]
        else:
            txs = None if more else _batch(body)
        if txs is None:
            await self.app(scope, _replay(body, more, receive), send)
            return
        try:  # one transaction with the others in flight; a batch as the route scores it, whole
            answers = [await self.batcher.score(txs[0])] if route == ROUTE else self.batcher.scorer.score(txs)
        except FraudflowError as exc:  # the store or the lake: the app's answer for it
            status, body = error_answer(exc)
            await _send(send, status, body)
        except Exception:  # a bug: uvicorn answers 500; counted here
            self.metrics.request(route, 500, time.perf_counter() - t0)
            raise
        else:
            status = 200
            self.metrics.answered(answers)
            if route == ROUTE:
                await _send(send, 200, answers[0].body.encode())
            else:
                await _send(send, 200, batch_body(answers))
        self.metrics.request(route, status, time.perf_counter() - t0)

    def accepts(self, headers: Iterable[tuple[bytes, bytes]]) -> bool:
        """Whether a request's ``headers`` (names in lower case) give the right key (when the service
        has one) and declare a JSON body within the limit."""
        key = length = content_type = None
        for name, value in headers:
            if name == b"x-api-key":
                key = value
            elif name == b"content-length":
                length = value
            elif name == b"content-type":
                content_type = value
        if self.api_key is not None and (key is None or not hmac.compare_digest(key, self.api_key)):
            return False
        if content_type is None or content_type.split(b";", 1)[0].strip().lower() != b"application/json":
            return False
        return length is not None and length.isdigit() and int(length) <= self.max_body_bytes

    async def _read(self, receive: Receive) -> tuple[bytes, bool]:
        """The body, and whether more of it is still to come (over the limit: left to the app)."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: the app's receive says so too
                return b"".join(chunks), True
            chunk = message.get("body", b"")
            chunks.append(chunk)
            size += len(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks), False
            if size > self.max_body_bytes:
                return b"".join(chunks), True


def _transaction(body: bytes) -> Transaction | None:
    """The transaction in ``body`` when ``TransactionIn`` accepts it, else None (the app says why)."""
    try:  # pydantic's JSON parser and the model in one step: 5 µs, where json.loads then validating take 16
        return TransactionIn.model_validate_json(body).transaction()
    except ValidationError:  # not UTF-8, not JSON (or nested too deep), a field refused
        return None


def _batch(body: bytes) -> list[Transaction] | None:
    """The transactions in ``body`` when ``BatchIn`` accepts it and their TRANSACTION_IDs are distinct,
    else None (the app says why: 422, or 409 for an id twice)."""
    try:
        batch = BatchIn.model_validate_json(body)
    except ValidationError:
        return None
    txs = [t.transaction() for t in batch.transactions]
    return txs if len({t.transaction_id for t in txs}) == len(txs) else None


def error_answer(exc: FraudflowError) -> tuple[int, bytes]:
    """The status and JSON body of the app's answer to a scorer failure (``http_errors``): 400 for
    a request the lake refuses, 503 for the store or the lake unavailable."""
    return 400 if isinstance(exc, ValueError) else 503, json.dumps({"detail": str(exc)}).encode()


def _replay(body: bytes, more: bool, receive: Receive) -> Receive:
    """A ``receive`` that gives the app the body read so far, then the rest as it comes."""
    given = False

    async def replay() -> Message:
        nonlocal given
        if given:
            return await receive()
        given = True
        return {"type": "http.request", "body": body, "more_body": more}

    return replay


async def _send(send: Send, status: int, body: bytes) -> None:
    await send(
        {"type": "http.response.start", "status": status, "headers": [*HEADERS, (b"content-length", b"%d" % len(body))]}
    )
    await send({"type": "http.response.body", "body": body})
