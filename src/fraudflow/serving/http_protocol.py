"""``POST /v1/score`` answered by the HTTP protocol itself: uvicorn's httptools protocol, one step less.

``FastScore`` answers the accepted scoring requests without the framework, but still as an ASGI
app: uvicorn makes each request a scope, a request-response cycle and a task, and its answer two
messages whose headers it checks one by one. ``ScoringProtocol`` is uvicorn's own protocol (the
parsing, keep-alive, pipelining, flow control and shutdown stay uvicorn's) that, for a request
``FastScore`` would answer itself (``POST /v1/score``, HTTP/1.1 kept alive, nothing else in flight
on the connection, the headers ``FastScore.accepts``, the body a transaction ``TransactionIn``
accepts), hands the transaction to the batcher from the parser's callback and writes the answer
when the batch is committed: the same status line, headers (uvicorn's ``server`` and ``date``
first) and body ``FastScore`` gives, counted in the same metrics.

Every other request, and one whose body the model refuses, is uvicorn's as before (replayed into
its callbacks, the body as it came): every refusal stays the app's. A request arriving on the
connection while an answer is in flight waits for it in uvicorn's pipeline, so answers leave in
order. Used by ``fraudflow serve`` (``uvicorn.run(..., http=ScoringProtocol)``); the app it serves
must be ``FastScore`` (possibly behind uvicorn's own middleware), else it is plain uvicorn.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.protocols.utils import get_client_addr

from fraudflow.errors import FraudflowError
from fraudflow.serving.engine import Answer
from fraudflow.serving.fast_score import HEADERS, ROUTE, FastScore, _transaction, error_answer

_ROUTE = ROUTE.encode()
_HEAD_END = b"".join(b"%s: %s\r\n" % header for header in HEADERS)
_ERROR_500 = b"Internal Server Error"
#: uvicorn's headers for it (``RequestResponseCycle.send_500_response``)
_HEAD_500 = b"content-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\nconnection: close\r\n" % len(_ERROR_500)


class _Request:
    """A request answered here, in flight: what uvicorn's protocol reads of its request-response
    cycle (``response_complete``, ``keep_alive``, ``disconnected``, ``message_event``) and its body."""

    __slots__ = ("body", "disconnected", "keep_alive", "response_complete", "started")

    def __init__(self, keep_alive: bool) -> None:
        self.body = bytearray()
        self.keep_alive = keep_alive
        self.response_complete = False
        self.disconnected = False
        self.started = time.perf_counter()

    @property
    def message_event(self) -> _Request:
        return self  # uvicorn sets it when the connection is lost: nothing here waits on it

    def set(self) -> None:
        pass


class ScoringProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, accepted ``POST /v1/score`` requests answered without ASGI."""

    _fast: FastScore | None = None
    _found = False

    def on_headers_complete(self) -> None:
        fast = self._fast_score()
        if fast is not None and self._answers_here(fast):
            self.cycle = _Request(keep_alive=True)  # type: ignore[assignment]
            return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        request = self.cycle
        if isinstance(request, _Request):
            request.body += body
            return
        super().on_body(body)

    def on_message_complete(self) -> None:
        request = self.cycle
        if not isinstance(request, _Request):
            super().on_message_complete()
            return
        fast = self._fast
        assert fast is not None
        body = bytes(request.body)
        tx = _transaction(body)
        if tx is None:  # refused: the app answers why, the request replayed into uvicorn's callbacks
            request.response_complete = True
            super().on_headers_complete()
            super().on_body(body)
            super().on_message_complete()
            return
        future = fast.batcher.submit(tx)
        future.add_done_callback(lambda done: self._answer(request, done))

    def _answers_here(self, fast: FastScore) -> bool:
        """Whether this request is ``FastScore``'s to answer, and nothing else is in flight here."""
        parser = self.parser
        return (
            self.url == _ROUTE
            and parser.get_method() == b"POST"
            and (self.cycle is None or self.cycle.response_complete)
            and parser.get_http_version() == "1.1"
            and parser.should_keep_alive()
            and not parser.should_upgrade()
            and not self.expect_100_continue
            and not self.root_path
            and self.limit_concurrency is None
            and fast.accepts(self.headers)
        )

    def _fast_score(self) -> FastScore | None:
        """The ``FastScore`` this server runs (behind uvicorn's middleware), found once per connection."""
        if not self._found:
            app: Any = self.app
            while app is not None and not isinstance(app, FastScore):
                app = getattr(app, "app", None)
            self._fast, self._found = app, True
        return self._fast

    def _answer(self, request: _Request, done: asyncio.Future[Answer]) -> None:
        """Write the batch's answer to ``request`` (or the app's error for a failed batch), count it."""
        fast = self._fast
        assert fast is not None
        status, close = 200, False
        try:
            answer = done.result()
        except FraudflowError as exc:  # the store or the lake: FastScore's answer for it
            status, body = error_answer(exc)
        except Exception:  # as uvicorn answers an app that failed: logged, a 500, the connection closed
            self.logger.exception("Exception in ASGI application")
            status, close, body = 500, True, _ERROR_500
        else:
            fast.metrics.answered([answer])
            body = answer.body.encode()
        if not request.disconnected:
            if self.access_log:  # as uvicorn logs a request
                client = get_client_addr(self.scope)
                self.access_logger.info('%s - "POST %s HTTP/1.1" %d', client, ROUTE, status)
            self.transport.write(self._response(status, body, close or not request.keep_alive))
        fast.metrics.request(ROUTE, status, time.perf_counter() - request.started)
        request.response_complete = True
        if close or not request.keep_alive:  # the server shuts down, or the request failed
            self.transport.close()
        self.on_response_complete()

    def _response(self, status: int, body: bytes, close: bool) -> bytes:
        """The bytes uvicorn writes for ``FastScore``'s answer: its headers, then the answer's."""
        head = [STATUS_LINE[status]]
        head += [b"%s: %s\r\n" % header for header in self.server_state.default_headers]
        if status == 500:
            head.append(_HEAD_500)
        else:
            head.append(b"%scontent-length: %d\r\n" % (_HEAD_END, len(body)))
            if close:
                head.append(b"connection: close\r\n")
        head += (b"\r\n", body)
        return b"".join(head)
