"""The service's ASGI middleware: the body-size limit and the request metrics."""

from __future__ import annotations

import time

from fastapi import HTTPException
from fastapi.responses import JSONResponse
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fraudflow.serving.metrics import OTHER_ROUTE, Metrics


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
