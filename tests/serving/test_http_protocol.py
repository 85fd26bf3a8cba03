"""``ScoringProtocol``: accepted ``POST /v1/score`` requests answered by the HTTP protocol itself, with
the bytes ``FastScore`` gives; everything else uvicorn's, in order. A real uvicorn server on a port,
raw sockets (pipelining and disconnects are what a client library hides)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from fraudflow.errors import LakeError
from fraudflow.serving.batching import Batcher
from fraudflow.serving.fast_score import FastScore
from fraudflow.serving.http_protocol import ScoringProtocol
from fraudflow.serving.metrics import Metrics
from tests.serving.test_fast_score import KEY, TX, EchoScorer, Inner

GET = b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n"


class App(Inner):
    """The app behind, as ``Inner``, its answer with a content-length (uvicorn would chunk it)."""

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        async def with_length(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [(b"content-length", b"3")]}
            await send(message)

        await super().__call__(scope, receive, with_length)


class Counted(FastScore):
    """``FastScore`` noting each request that reached it as an ASGI app (the protocol's skip it)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.calls: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.calls.append(scope["path"])
        await super().__call__(scope, receive, send)


class Running:
    def __init__(self, port: int, fast: Counted, inner: Inner, scorer: EchoScorer, metrics: Metrics) -> None:
        self.port, self.fast, self.inner, self.scorer, self.metrics = port, fast, inner, scorer, metrics

    def exchange(self, data: bytes, answers: int, wait: float = 5.0) -> list[tuple[bytes, dict[bytes, bytes], bytes]]:
        """Send ``data`` on a new connection; the first ``answers`` answers: status line, headers, body."""
        with socket.create_connection(("127.0.0.1", self.port)) as conn:
            conn.sendall(data)
            return read_answers(conn, answers, wait)


def read_answers(conn: socket.socket, answers: int, wait: float) -> list[tuple[bytes, dict[bytes, bytes], bytes]]:
    conn.settimeout(wait)
    buf, out = b"", []  # type: bytes, list[tuple[bytes, dict[bytes, bytes], bytes]]
    while len(out) < answers:
        head_end = buf.find(b"\r\n\r\n")
        if head_end >= 0:
            status, *lines = buf[:head_end].split(b"\r\n")
            if status.startswith(b"HTTP/1.1 1"):  # an interim answer (100 Continue): no body
                buf = buf[head_end + 4 :]
                continue
            headers = dict(line.split(b": ", 1) for line in lines)
            length = int(headers[b"content-length"])
            if len(buf) >= head_end + 4 + length:
                out.append((status, headers, buf[head_end + 4 : head_end + 4 + length]))
                buf = buf[head_end + 4 + length :]
                continue
        chunk = conn.recv(65536)
        if not chunk:
            break
        buf += chunk
    return out


def request(body: bytes, path: bytes = b"/v1/score", key: str = KEY, extra: bytes = b"") -> bytes:
    head = b"POST %s HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n" % path
    return head + b"content-length: %d\r\nx-api-key: %s\r\n%s\r\n%s" % (len(body), key.encode(), extra, body)


def tx(transaction_id: int, **fields: object) -> bytes:
    return json.dumps({**TX, "TRANSACTION_ID": transaction_id, **fields}).encode()


@pytest.fixture
def running() -> Iterator[Running]:
    scorer, inner, metrics = EchoScorer(), App(), Metrics()
    fast = Counted(inner, Batcher(scorer), metrics, KEY, 1000)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(
        fast, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off", http=ScoringProtocol
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started
    yield Running(port, fast, inner, scorer, metrics)
    server.should_exit = True
    thread.join(10)


def test_an_accepted_request_is_answered_by_the_protocol_with_the_apps_bytes(running: Running) -> None:
    [(status, headers, body)] = running.exchange(request(tx(7)), 1)
    assert running.fast.calls == [] and running.inner.bodies == []  # neither the ASGI layer nor the app
    assert (status, body) == (b"HTTP/1.1 200 OK", b'{"id":7}')
    # the same request through FastScore as an ASGI app (a query string: not the protocol's)
    [(asgi_status, asgi_headers, asgi_body)] = running.exchange(request(tx(8), path=b"/v1/score?via=app"), 1)
    assert running.fast.calls == ["/v1/score"]
    assert (asgi_status, asgi_body) == (status, b'{"id":8}')
    assert list(asgi_headers) == list(headers) == [b"date", b"server", b"content-type", b"content-length"]
    assert {k: v for k, v in headers.items() if k != b"date"} == {k: v for k, v in asgi_headers.items() if k != b"date"}
    assert [t.transaction_id for t in running.scorer.seen] == [7, 8]
    rendered = running.metrics.render().decode()
    assert 'fraudflow_requests_total{route="/v1/score",status="200"} 2.0' in rendered
    assert "fraudflow_transactions_scored_total 2.0" in rendered


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (request(tx(7, TX_AMOUNT="12")), "a field refused"),
        (request(b'{"TRANSACTION_ID": 7'), "not JSON"),
        (request(tx(7), key="wrong"), "wrong key"),
    ],
)
def test_a_request_the_protocol_does_not_answer_reaches_the_app(running: Running, data: bytes, why: str) -> None:
    [(status, _, body)] = running.exchange(data, 1)
    assert (status, body) == (b"HTTP/1.1 299 ", b"app"), why
    assert running.inner.bodies == [data.split(b"\r\n\r\n", 1)[1]]
    assert running.scorer.seen == []


def test_a_request_expecting_100_continue_is_left_to_uvicorn(running: Running) -> None:
    [(status, _, body)] = running.exchange(request(tx(7), extra=b"expect: 100-continue\r\n"), 1)
    assert (status, body) == (b"HTTP/1.1 200 OK", b'{"id":7}')
    assert running.fast.calls == ["/v1/score"]  # answered by FastScore as an ASGI app, after uvicorn's 100


def test_pipelined_requests_are_answered_in_order(running: Running) -> None:
    answers = running.exchange(request(tx(1)) + GET + request(tx(2)) + request(tx(3)), 4)
    assert [body for _, _, body in answers] == [b'{"id":1}', b"app", b'{"id":2}', b'{"id":3}']


def test_connection_close_is_honoured(running: Running) -> None:
    with socket.create_connection(("127.0.0.1", running.port)) as conn:
        conn.sendall(request(tx(5), extra=b"connection: close\r\n"))
        [(status, headers, body)] = read_answers(conn, 1, 5)
        assert (status, body, headers[b"connection"]) == (b"HTTP/1.1 200 OK", b'{"id":5}', b"close")
        assert conn.recv(10) == b""  # closed by the server


@pytest.mark.parametrize(
    ("failure", "status", "body"),
    [
        (LakeError("unreachable"), b"HTTP/1.1 503 Service Unavailable", b'{"detail": "unreachable"}'),
        (RuntimeError("a bug"), b"HTTP/1.1 500 Internal Server Error", b"Internal Server Error"),
    ],
)
def test_a_failed_batch_gets_the_apps_error(running: Running, failure: Exception, status: bytes, body: bytes) -> None:
    running.scorer.fail = failure
    with socket.create_connection(("127.0.0.1", running.port)) as conn:
        conn.sendall(request(tx(9)))
        [(got_status, headers, got_body)] = read_answers(conn, 1, 5)
        assert (got_status, got_body) == (status, body)
        if failure.__class__ is RuntimeError:  # as uvicorn answers a failed app: the connection closed
            assert headers[b"connection"] == b"close" and conn.recv(10) == b""
    rendered = running.metrics.render().decode()
    assert f'fraudflow_requests_total{{route="/v1/score",status="{status.split()[1].decode()}"}} 1.0' in rendered


def test_a_client_gone_before_its_answer_leaves_the_server_answering(running: Running) -> None:
    with socket.create_connection(("127.0.0.1", running.port)) as conn:
        conn.sendall(request(tx(11)))
    [(status, _, body)] = running.exchange(request(tx(12)), 1)
    assert (status, body) == (b"HTTP/1.1 200 OK", b'{"id":12}')
    assert [t.transaction_id for t in running.scorer.seen] == [11, 12]
