"""A minimal HTTP/1.1 server that answers every request with 200 and a fixed body after a fixed delay.

    .venv/bin/python -m benchmarks.stub_server --port 18800 [--delay-ms 0] [--body-bytes 600]

The load generator's calibration target (``benchmarks.serve --only generator``): with no delay it
costs a few tens of µs a request, so a run against it measures the generator's own ceiling; with a
delay (a timer, no CPU) the latencies the generator reports can be checked against a known answer.
It answers a connection's requests in order, one at a time, as an HTTP/1.1 server does.
"""

from __future__ import annotations

import argparse
import asyncio
import re

from benchmarks.loadgen import precise_loop

_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)


def answer(body_bytes: int) -> bytes:
    body = b'{"answer":"' + b"x" * max(0, body_bytes - 13) + b'"}'
    return b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)


class _Stub(asyncio.Protocol):
    def __init__(self, response: bytes, delay: float) -> None:
        self.response = response
        self.delay = delay
        self.buf = b""
        self.pending = 0  # requests received, not yet answered
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while (end := self.buf.find(b"\r\n\r\n")) >= 0:
            m = _CONTENT_LENGTH.search(self.buf, 0, end + 2)
            size = end + 4 + (int(m.group(1)) if m else 0)
            if len(self.buf) < size:
                return
            self.buf = self.buf[size:]
            self._received()

    def _received(self) -> None:
        self.pending += 1
        if self.pending == 1:  # in order: the next one's delay starts when this one is answered
            self._schedule()

    def _schedule(self) -> None:
        if self.delay > 0:
            asyncio.get_running_loop().call_later(self.delay, self._answer)
        else:
            self._answer()

    def _answer(self) -> None:
        assert self.transport is not None
        if self.transport.is_closing():
            return
        self.transport.write(self.response)
        self.pending -= 1
        if self.pending:
            self._schedule()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--delay-ms", type=float, default=0.0, help="answer each request this long after it arrives")
    ap.add_argument("--body-bytes", type=int, default=600, help="size of the answer's body")
    args = ap.parse_args()
    response = answer(args.body_bytes)
    loop = precise_loop()

    async def serve() -> None:
        server = await loop.create_server(lambda: _Stub(response, args.delay_ms / 1000), args.host, args.port)
        async with server:
            await server.serve_forever()

    try:
        loop.run_until_complete(serve())
    except KeyboardInterrupt:
        pass
    finally:
        loop.close()


if __name__ == "__main__":
    main()
