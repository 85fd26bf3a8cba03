"""The app: the scorer, routes, error handlers and middleware put together; ``service``, what the server runs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from fraudflow.lake import Lake
from fraudflow.serving.batching import Batcher
from fraudflow.serving.desk import add_desk
from fraudflow.serving.engine import Scorer
from fraudflow.serving.fast_score import FastScore
from fraudflow.serving.http_errors import HANDLERS
from fraudflow.serving.metrics import Metrics
from fraudflow.serving.middleware import LimitAndMeasure
from fraudflow.serving.model_follower import ModelFollower
from fraudflow.serving.routes import add_routes
from fraudflow.serving.served_log import ServedLog
from fraudflow.serving.settings import Settings


def create_app(settings: Settings, scorer: Scorer) -> FastAPI:
    """The service answering with ``scorer`` (built before: ``server.open_scorer``), which it closes at shutdown."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        following = None
        if settings.model_id is None and settings.production_poll_seconds > 0:
            follower = ModelFollower(app.state.lake, scorer, settings.threshold, settings.production_poll_seconds)
            following = asyncio.create_task(follower.run())
        yield
        if following is not None:
            following.cancel()
        served_log.close()  # what waits goes to the lake's prediction log
        scorer.store.close()

    app = FastAPI(title="fraudflow scoring service", version="1", lifespan=lifespan, exception_handlers=HANDLERS)
    default_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        return _exact_integer_bounds(default_openapi())

    app.openapi = openapi  # type: ignore[method-assign]
    app.state.settings = settings
    app.state.scorer = scorer
    app.state.lake = Lake(settings.data, endpoint_url=settings.endpoint_url)
    served_log = scorer.served_log = ServedLog(app.state.lake)
    app.state.batcher = Batcher(scorer)
    app.state.metrics = Metrics()
    app.add_middleware(LimitAndMeasure, metrics=app.state.metrics, max_body_bytes=settings.max_body_bytes)
    add_routes(app)
    add_desk(app)  # the analyst desk's pages at /desk
    return app


def service(settings: Settings, scorer: Scorer) -> FastScore:
    """What the server runs: the app behind ``FastScore``, outside the framework's own middleware
    (the accepted scoring requests never enter it; inside it, they paid for four layers)."""
    app = create_app(settings, scorer)
    return FastScore(app, app.state.batcher, app.state.metrics, settings.api_key, settings.max_body_bytes)


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
