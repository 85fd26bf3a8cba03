"""The service's routes: scoring, labels, health, metrics and SageMaker's (``add_routes`` puts them on an app).

SageMaker's hosting contract: ``GET /ping`` answers 200 once the service is ready (as /readyz) and
``POST /invocations`` scores a body of either kind, one transaction as /v1/score or a batch as
/v1/score/batch, with the same API-key setting as the /v1 routes.
"""

from __future__ import annotations

from fastapi import Depends, FastAPI, HTTPException, Response
from fastapi.responses import PlainTextResponse

from fraudflow.serving.deps import AUTHORIZED, BatcherDep, LakeDep, MetricsDep, ScorerDep, check_json
from fraudflow.serving.engine import batch_body
from fraudflow.serving.http_errors import ERRORS
from fraudflow.serving.labelling import accept_labels
from fraudflow.serving.metrics import CONTENT_TYPE
from fraudflow.serving.schemas import (
    BatchIn,
    BatchOut,
    Health,
    Invocation,
    LabelsIn,
    LabelsOut,
    ScoreOut,
    TransactionIn,
)

JSON = "application/json"


async def score(tx: TransactionIn, batcher: BatcherDep, metrics: MetricsDep) -> Response:
    answer = await batcher.score(tx.transaction())  # with the other requests in flight: one commit
    metrics.answered([answer])
    return Response(answer.body, media_type=JSON)


async def score_batch(batch: BatchIn, scorer: ScorerDep, metrics: MetricsDep) -> Response:
    ids = [t.TRANSACTION_ID for t in batch.transactions]
    if len(set(ids)) != len(ids):
        # 409, not 422: the body is valid by the schema, which cannot say "ids unique"
        raise HTTPException(409, "TRANSACTION_ID appears twice in the batch")
    answers = scorer.score([t.transaction() for t in batch.transactions])
    metrics.answered(answers)
    return Response(batch_body(answers), media_type=JSON)


async def invocations(body: Invocation, scorer: ScorerDep, batcher: BatcherDep, metrics: MetricsDep) -> Response:
    if isinstance(body, BatchIn):
        return await score_batch(body, scorer, metrics)
    return await score(body, batcher, metrics)


async def labels(body: LabelsIn, scorer: ScorerDep, lake: LakeDep, metrics: MetricsDep) -> LabelsOut:
    frauds = {label.TRANSACTION_ID: label.TX_FRAUD for label in body.labels}  # a repeated id: its last label
    n = await accept_labels(lake, scorer, frauds, source="api")
    metrics.label(n)
    return LabelsOut(accepted=n)


def healthz() -> Health:
    return Health(status="ok")


def readyz(scorer: ScorerDep) -> Health:
    return Health(status="ready", model_id=scorer.model_id)


def prometheus(metrics: MetricsDep) -> Response:
    return Response(metrics.render(), media_type=CONTENT_TYPE)


def add_routes(app: FastAPI) -> None:
    """The routes on ``app``, with what each publishes besides its body's schema.

    The scoring routes' answers are typed models already: they are serialized directly (the schema
    still documented, ``response_model=None``) rather than validated a second time on the way out.
    """
    for path, endpoint, answer in (("/v1/score", score, ScoreOut), ("/v1/score/batch", score_batch, BatchOut)):
        app.add_api_route(
            path,
            endpoint,
            methods=["POST"],
            response_model=None,
            responses={200: {"model": answer}, **ERRORS},
            dependencies=AUTHORIZED,
        )
    app.add_api_route(
        "/v1/labels", labels, methods=["POST"], response_model=LabelsOut, responses={**ERRORS}, dependencies=AUTHORIZED
    )
    app.add_api_route("/healthz", healthz, methods=["GET"], response_model=Health)
    app.add_api_route("/readyz", readyz, methods=["GET"], response_model=Health)
    app.add_api_route("/metrics", prometheus, methods=["GET"], response_class=PlainTextResponse)
    # SageMaker's contract, not part of the published API (the /v1 routes it answers as are)
    app.add_api_route("/ping", readyz, methods=["GET"], response_model=Health, include_in_schema=False)
    app.add_api_route(
        "/invocations",
        invocations,
        methods=["POST"],
        response_model=None,
        dependencies=[*AUTHORIZED, Depends(check_json)],
        include_in_schema=False,
    )
