"""The scoring service: an app factory, its routes, and HTTP error mapping."""

from __future__ import annotations

import hmac
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fraudflow.errors import ConfigError, FraudflowError
from fraudflow.features import registry
from fraudflow.features.online import Transaction
from fraudflow.lake import Lake
from fraudflow.serving.engine import Scorer
from fraudflow.serving.materialize import materialize
from fraudflow.serving.metrics import CONTENT_TYPE, OTHER_ROUTE, Metrics
from fraudflow.serving.schemas import (
    BatchIn,
    BatchOut,
    Contribution,
    ErrorOut,
    Health,
    InvalidOut,
    LabelsIn,
    LabelsOut,
    ScoreOut,
    TransactionIn,
)
from fraudflow.store.online import open_store
from fraudflow.training import model as models

MAX_BODY_BYTES = 1 << 20


@dataclass(frozen=True)
class Settings:
    """Built once at the edge (CLI or test); refuses unsafe or impossible values."""

    data: str
    model_id: str | None = None
    online: str | None = None  # None: SQLite in the lake root
    api_key: str | None = None
    threshold: float = 0.5
    max_body_bytes: int = MAX_BODY_BYTES

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold <= 1.0:
            raise ConfigError(f"threshold must be within 0..1, got {self.threshold}")
        if self.api_key is not None and len(self.api_key) < 16:
            raise ConfigError("an API key must be at least 16 characters")
        if self.max_body_bytes < 1024:
            raise ConfigError("max_body_bytes must be at least 1024")


def build_scorer(settings: Settings) -> Scorer:
    lake = Lake(settings.data)
    fs = registry.registered(lake)
    if fs is None:
        raise ConfigError(f"{lake.url}: no features; run `fraudflow features --data {lake.url}` and train a model")
    model_id = settings.model_id or models.latest_model(lake)
    model = models.load(lake, model_id, expect_version=fs.version)
    store = open_store(settings.online, lake.root if lake.local else None)
    materialize(lake, store, fs)
    return Scorer(store, fs, model, model_id, settings.threshold)


class LimitAndMeasure:
    """Pure ASGI middleware: refuse bodies over the limit (413), time every request."""

    def __init__(self, app: ASGIApp, metrics: Metrics, max_body_bytes: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = [500]

        async def send_and_watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
            response = JSONResponse({"detail": f"body over {self.max_body_bytes} bytes"}, 413)
            await response(scope, receive, send_and_watch)
        else:
            received = [0]

            async def receive_limited() -> Message:
                message = await receive()
                received[0] += len(message.get("body", b""))
                if received[0] > self.max_body_bytes:  # a chunked body with no length: cut it off
                    raise HTTPException(413, f"body over {self.max_body_bytes} bytes")
                return message

            await self.app(scope, receive_limited, send_and_watch)
        self.metrics.request(route_of(scope), status[0], time.perf_counter() - t0)


def route_of(scope: Scope) -> str:
    """The template of the route the request matches (``/v1/score``), or ``other``.

    A label is never the raw path: a path is user-controlled text (quotes, newlines) and every
    unknown path would add a series. A route matched but for its method (405) keeps its template.
    Matched here rather than read from the router's ``scope["route"]``: requests refused by this
    middleware (413) never reach the router.
    """
    for route in scope["app"].router.routes:
        match, _ = route.matches(scope)
        if match is not Match.NONE:
            path = getattr(route, "path", None)
            return path if isinstance(path, str) else OTHER_ROUTE
    return OTHER_ROUTE


def get_scorer(request: Request) -> Scorer:
    scorer: Scorer | None = getattr(request.app.state, "scorer", None)
    if scorer is None:
        raise HTTPException(503, "not ready")
    return scorer


def check_key(request: Request, x_api_key: Annotated[str | None, Header()] = None) -> None:
    expected: str | None = request.app.state.settings.api_key
    if expected is not None and not (
        x_api_key is not None and hmac.compare_digest(x_api_key.encode(), expected.encode())
    ):
        raise HTTPException(401, "missing or wrong X-API-Key header")


ScorerDep = Annotated[Scorer, Depends(get_scorer)]
AUTHORIZED = [Depends(check_key)]
#: What a /v1 route can answer besides 200, published so that clients (and schemathesis) know.
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "The body cannot be decoded (it is not UTF-8)"},
    401: {"model": ErrorOut, "description": "X-API-Key missing or wrong (when the service has a key)"},
    409: {"model": ErrorOut, "description": "A TRANSACTION_ID appears twice in one batch"},
    413: {"model": ErrorOut, "description": "The body is over the limit (1 MiB by default)"},
    422: {"model": InvalidOut, "description": "A field is missing, extra or invalid (each is named)"},
    503: {"model": ErrorOut, "description": "Not ready, or the online store is unavailable"},
}


def create_app(settings: Settings, scorer: Scorer | None = None) -> FastAPI:
    """The service. ``scorer`` is built from ``settings`` at startup unless given (tests)."""
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.scorer = scorer or build_scorer(settings)
        yield
        app.state.scorer.store.close()

    app = FastAPI(title="fraudflow scoring service", version="1", lifespan=lifespan)
    default_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        return _exact_integer_bounds(default_openapi())

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_middleware(LimitAndMeasure, metrics=metrics, max_body_bytes=settings.max_body_bytes)
    app.state.settings = settings
    app.state.scorer = None
    Authorized = AUTHORIZED

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        # the offending input is left out: it may be huge, or NaN, which JSON cannot carry back
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors()
        ]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.exception_handler(FraudflowError)
    async def fraudflow_error(request: Request, exc: FraudflowError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400 if isinstance(exc, ValueError) else 503)

    def answers(s: Scorer, txs: list[TransactionIn]) -> list[ScoreOut]:
        scored = [s.features(_transaction(t)) for t in txs]
        scores, tops = s.explain(scored)
        out = []
        for x, score, top in zip(scored, scores.tolist(), tops, strict=True):
            alert = score >= s.threshold
            metrics.score(score, alert, x.duplicate)
            out.append(
                ScoreOut(
                    TRANSACTION_ID=x.transaction_id,
                    score=score,
                    alert=alert,
                    threshold=s.threshold,
                    model_id=s.model_id,
                    features=x.features,
                    duplicate=x.duplicate,
                    top_features=[Contribution(feature=f, contribution=c) for f, c in top],
                )
            )
        return out

    # answers are built from typed models already: serialize them directly (the schema is still
    # documented) rather than validating them a second time on the way out
    @app.post("/v1/score", response_model=None, responses={200: {"model": ScoreOut}, **ERRORS}, dependencies=Authorized)
    async def score(tx: TransactionIn, s: ScorerDep) -> Response:
        return Response(answers(s, [tx])[0].model_dump_json(), media_type="application/json")

    @app.post(
        "/v1/score/batch", response_model=None, responses={200: {"model": BatchOut}, **ERRORS}, dependencies=Authorized
    )
    async def score_batch(batch: BatchIn, s: ScorerDep) -> Response:
        ids = [t.TRANSACTION_ID for t in batch.transactions]
        if len(set(ids)) != len(ids):
            # 409, not 422: the body is valid by the schema, which cannot say "ids unique"
            raise HTTPException(409, "TRANSACTION_ID appears twice in the batch")
        body = BatchOut(results=answers(s, batch.transactions)).model_dump_json()
        return Response(body, media_type="application/json")

    @app.post("/v1/labels", response_model=LabelsOut, responses={**ERRORS}, dependencies=Authorized)
    async def labels(body: LabelsIn, s: ScorerDep) -> LabelsOut:
        n = s.store.add_labels({label.TRANSACTION_ID: label.TX_FRAUD for label in body.labels})
        metrics.label(n)
        return LabelsOut(accepted=n)

    @app.get("/healthz", response_model=Health)
    def healthz() -> Health:
        return Health(status="ok")

    @app.get("/readyz", response_model=Health, responses={503: ERRORS[503]})
    def readyz(request: Request) -> Health:
        return Health(status="ready", model_id=get_scorer(request).model_id)

    @app.get("/metrics", response_class=PlainTextResponse)
    def prometheus() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    return app


SETTINGS_ENV = "FRAUDFLOW_SERVE_SETTINGS"


def app_from_env() -> FastAPI:
    """The app of one worker process (``uvicorn --factory``), its settings passed as JSON in the env."""
    import json
    import os

    return create_app(Settings(**json.loads(os.environ[SETTINGS_ENV])))


def _exact_integer_bounds(schema: dict[str, Any]) -> dict[str, Any]:
    """Integer fields' bounds published as JSON integers, as pydantic states them.

    FastAPI's OpenAPI model types every bound as a float, so the ids' ``lt=2**62`` came out as
    ``4.611686018427388e+18``: a client reading it as a double cannot tell 2**62 from its
    neighbours (schemathesis sent 2**62 + 94 as schema-valid). The bounds are powers of two and
    small integers, exact as doubles, so converting back gives pydantic's values exactly.
    """
    for component in schema.get("components", {}).get("schemas", {}).values():
        for prop in component.get("properties", {}).values():
            if prop.get("type") == "integer":
                for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
                    if isinstance(prop.get(key), float) and prop[key].is_integer():
                        prop[key] = int(prop[key])
    return schema


def _transaction(tx: TransactionIn) -> Transaction:
    return Transaction(tx.TRANSACTION_ID, tx.TX_DATETIME, tx.CUSTOMER_ID, tx.TERMINAL_ID, float(tx.TX_AMOUNT))
