"""How failures become HTTP answers: the exception handlers and the error responses routes publish."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from fraudflow.errors import FraudflowError
from fraudflow.serving.schemas import ErrorOut, InvalidOut

#: What a /v1 route can answer besides 200, published so that clients (and schemathesis) know.
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "The body cannot be decoded (it is not UTF-8)"},
    401: {"model": ErrorOut, "description": "X-API-Key missing or wrong (when the service has a key)"},
    409: {"model": ErrorOut, "description": "A TRANSACTION_ID appears twice in one batch"},
    413: {"model": ErrorOut, "description": "The body is over the limit (1 MiB by default)"},
    422: {"model": InvalidOut, "description": "A field is missing, extra or invalid (each is named)"},
    503: {"model": ErrorOut, "description": "The online store is unavailable"},
}


async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 naming each failed field; the offending input is left out (it may be huge, or NaN,
    which JSON cannot carry back)."""
    errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors()]
    return JSONResponse({"detail": errors}, status_code=422)


async def fraudflow_error(request: Request, exc: FraudflowError) -> JSONResponse:
    """A fraudflow error in one sentence: 400 for a bad value, else 503 (the store, the lake)."""
    return JSONResponse({"detail": str(exc)}, status_code=400 if isinstance(exc, ValueError) else 503)


#: The app's exception handlers (``FastAPI(exception_handlers=...)``).
HANDLERS: dict[int | type[Exception], Callable[[Request, Any], Coroutine[Any, Any, Response]]] = {
    RequestValidationError: invalid_request,
    FraudflowError: fraudflow_error,
}
