"""The routes' dependencies: the app's scorer, lake and metrics, the API-key and content-type checks.

Coroutines, so that FastAPI calls them on the event loop rather than in its thread pool.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request

from fraudflow.lake import Lake
from fraudflow.serving.batching import Batcher
from fraudflow.serving.engine import Answer, Scorer
from fraudflow.serving.metrics import Metrics


async def get_scorer(request: Request) -> Scorer:
    """The app's scorer."""
    scorer: Scorer = request.app.state.scorer
    return scorer


async def get_batcher(request: Request) -> Batcher[Answer]:
    """The app's group committer of single transactions."""
    batcher: Batcher[Answer] = request.app.state.batcher
    return batcher


async def get_lake(request: Request) -> Lake:
    """The lake the service serves from (labels go to it)."""
    lake: Lake = request.app.state.lake
    return lake


async def get_metrics(request: Request) -> Metrics:
    """The app's metrics."""
    metrics: Metrics = request.app.state.metrics
    return metrics


async def check_key(request: Request, x_api_key: Annotated[str | None, Header()] = None) -> None:
    """401 unless the request carries the service's API key (when it has one)."""
    expected: str | None = request.app.state.settings.api_key
    if expected is not None and not (
        x_api_key is not None and hmac.compare_digest(x_api_key.encode(), expected.encode())
    ):
        raise HTTPException(401, "missing or wrong X-API-Key header")


async def check_json(content_type: Annotated[str | None, Header()] = None) -> None:
    """415 unless the body is declared JSON (``Content-Type: application/json``, parameters allowed)."""
    if content_type is None or content_type.split(";", 1)[0].strip().lower() != "application/json":
        raise HTTPException(415, f"send the body as application/json (Content-Type was {content_type or 'missing'})")


ScorerDep = Annotated[Scorer, Depends(get_scorer)]
BatcherDep = Annotated[Batcher[Answer], Depends(get_batcher)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
LakeDep = Annotated[Lake, Depends(get_lake)]
#: The dependencies of a route that needs the API key.
AUTHORIZED = [Depends(check_key)]
