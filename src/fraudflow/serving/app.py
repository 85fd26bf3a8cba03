"""The scoring service: an app factory, its routes, and HTTP error mapping."""

from __future__ import annotations

import hmac
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, FastAPI, Header, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse

from fraudflow.errors import ConfigError, FraudflowError
from fraudflow.features.online import Transaction
from fraudflow.lake import Lake
from fraudflow.serving.engine import Scored, Scorer
from fraudflow.serving.materialize import materialize
from fraudflow.serving.metrics import Metrics
from fraudflow.serving.schemas import (
    BatchIn,
    BatchOut,
    Contribution,
    Health,
    LabelsIn,
    LabelsOut,
    ScoreOut,
    TransactionIn,
)
from fraudflow.store import offline
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
    fs = offline.registered(lake)
    if fs is None:
        raise ConfigError(f"{lake.url}: no features; run `fraudflow features --data {lake.url}` and train a model")
    model_id = settings.model_id or models.latest_model(lake)
    model = models.load(lake, model_id, expect_version=fs.version)
    store = open_store(settings.online, lake.root if lake.local else None)
    materialize(lake, store, fs)
    return Scorer(store, fs, model, model_id, settings.threshold)


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


def create_app(settings: Settings, scorer: Scorer | None = None) -> FastAPI:
    """The service. ``scorer`` is built from ``settings`` at startup unless given (tests)."""
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.scorer = scorer or build_scorer(settings)
        yield
        app.state.scorer.store.close()

    app = FastAPI(title="fraudflow scoring service", version="1", lifespan=lifespan)
    app.state.settings = settings
    app.state.scorer = None
    Authorized = AUTHORIZED

    @app.middleware("http")
    async def limit_and_measure(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        t0 = time.perf_counter()
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > settings.max_body_bytes):
            response: Response = JSONResponse({"detail": f"body over {settings.max_body_bytes} bytes"}, 413)
        else:
            response = await call_next(request)
        metrics.request(request.url.path, response.status_code, time.perf_counter() - t0)
        return response

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

    def answer(s: Scorer, scored: Scored, score: float) -> ScoreOut:
        alert = score >= s.threshold
        metrics.score(score, alert, scored.duplicate)
        return ScoreOut(
            TRANSACTION_ID=scored.transaction_id,
            score=score,
            alert=alert,
            threshold=s.threshold,
            model_id=s.model_id,
            features=scored.features,
            duplicate=scored.duplicate,
            top_features=[Contribution(feature=f, contribution=c) for f, c in s.top_features(scored)],
        )

    @app.post("/v1/score", response_model=ScoreOut, dependencies=Authorized)
    def score(tx: TransactionIn, s: ScorerDep) -> ScoreOut:
        scored, scores = s.score_many([_transaction(tx)])
        return answer(s, scored[0], float(scores[0]))

    @app.post("/v1/score/batch", response_model=BatchOut, dependencies=Authorized)
    def score_batch(batch: BatchIn, s: ScorerDep) -> BatchOut:
        ids = [t.TRANSACTION_ID for t in batch.transactions]
        if len(set(ids)) != len(ids):
            raise HTTPException(422, "TRANSACTION_ID appears twice in the batch")
        scored, scores = s.score_many([_transaction(t) for t in batch.transactions])
        return BatchOut(results=[answer(s, x, float(p)) for x, p in zip(scored, scores, strict=True)])

    @app.post("/v1/labels", response_model=LabelsOut, dependencies=Authorized)
    def labels(body: LabelsIn, s: ScorerDep) -> LabelsOut:
        n = s.store.add_labels({label.TRANSACTION_ID: label.TX_FRAUD for label in body.labels})
        metrics.labels += n
        return LabelsOut(accepted=n)

    @app.get("/healthz", response_model=Health)
    def healthz() -> Health:
        return Health(status="ok")

    @app.get("/readyz", response_model=Health)
    def readyz(request: Request) -> Health:
        return Health(status="ready", model_id=get_scorer(request).model_id)

    @app.get("/metrics", response_class=PlainTextResponse)
    def prometheus() -> str:
        return metrics.render()

    return app


def _transaction(tx: TransactionIn) -> Transaction:
    return Transaction(tx.TRANSACTION_ID, tx.TX_DATETIME, tx.CUSTOMER_ID, tx.TERMINAL_ID, float(tx.TX_AMOUNT))
