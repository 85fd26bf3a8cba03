"""An open-loop HTTP/1.1 load generator: request i is due at ``t0 + i / rate`` whatever the answers.

    .venv/bin/python -m benchmarks.loadgen --url http://127.0.0.1:8000 --bodies traffic.jsonl \\
        --rate 1000 --seconds 10 [--start 0] [--connections 32] [--check-ids]

Prints one JSON object (see ``Result``). Meant to run in its own process beside the server.

How it sends: every request is encoded before the clock starts (the JSON bodies of ``--bodies``,
one per line, from line ``--start``), over ``--connections`` keep-alive connections opened
beforehand, one request in flight on each (no pipelining). When a request falls due it leaves on an
idle connection; when every connection is busy it waits in the generator's FIFO backlog and leaves
on the next connection to free up. Either way its **latency is counted from its due time** to the
last byte of its answer, so time spent queued behind slow answers, in the server or in this
backlog, is counted (no coordinated omission). ``late_sends`` counts the requests that left more
than 1 ms after their due time, for either reason.

Why so low-level: the generator shares the 2 cores with the server it measures (httpx's async
client saturated a core at 500 requests/s here, issue 5). Here a request costs one ``send`` and
one parse of the status line and ``content-length`` (``cpu_us_per_request`` reports the
generator's own CPU, user + system, per request: mostly the kernel's wake-ups and loopback TCP).
The event loop is asyncio's with a ``select()`` selector: epoll and uvloop (libuv) wait in whole
milliseconds, which sent requests due 0.25-1 ms apart up to 1 ms late (send lag p99 1.1 ms against
the stub); ``select()`` takes microseconds (send lag p99 0.2 ms on the same machine).

Errors: a status other than 200, a connection lost with a request in flight, a request with no
answer ``--drain`` seconds after the last was due, and (``--check-ids``) an answer that does not
name the request's TRANSACTION_ID or says ``"duplicate":true``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import itertools
import json
import math
import re
import resource
import selectors
from dataclasses import asdict, dataclass
from typing import cast

_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)
#: A request that leaves this long after its due time counts as a late send.
LATE_S = 0.001


@dataclass
class Result:
    """One run: what was offered, what came back, latency from due time (ms), the generator's own cost."""

    url: str
    path: str
    offered_rps: float
    seconds: float  # the offered window: n / rate
    requests: int
    connections: int
    answered: int  # answers received (any status)
    errors: int
    error_kinds: dict[str, int]
    achieved_rps: float  # answers (status 200) received within the offered window, per second of it
    completed_rps: float  # every request settled / (the last settled - t0): the closed-loop throughput
    # latency from due time over every request, errors included (a refused request was waited for too)
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    mean_ms: float
    late_sends: int  # left > 1 ms after due (all connections busy, or the generator behind)
    send_lag_p99_ms: float  # how late requests left, 99th percentile
    send_lag_max_ms: float
    peak_busy_connections: int
    peak_backlog: int
    cpu_us_per_request: float  # this process's CPU (user + system) during the run, per request


def request_bytes(host: str, path: str, body: bytes) -> bytes:
    """One complete HTTP/1.1 POST with a JSON body, keep-alive."""
    return (
        b"POST " + path.encode() + b" HTTP/1.1\r\nHost: " + host.encode() + b"\r\nContent-Type: application/json"
        b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )


def precise_loop() -> asyncio.AbstractEventLoop:
    """An asyncio loop whose timers wake within microseconds (``select()``: fine for < 1,000 sockets)."""
    return asyncio.SelectorEventLoop(selectors.SelectSelector())


class _Connection(asyncio.Protocol):
    """One keep-alive connection with at most one request in flight."""

    def __init__(self, gen: _OpenLoop) -> None:
        self.gen = gen
        self.transport: asyncio.Transport | None = None
        self.current = -1  # index of the request in flight, or -1
        self.buf = bytearray()
        self.need = -1  # bytes of the whole answer once its head is parsed
        self.head_end = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def send(self, i: int) -> None:
        self.current = i
        assert self.transport is not None
        self.transport.write(self.gen.requests[i])

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.need < 0:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            m = _CONTENT_LENGTH.search(self.buf, 0, end + 2)
            if m is None:  # chunked or close-delimited: not what the servers measured here send
                self.gen.failed(self, "no content-length")
                return
            self.head_end = end + 4
            self.need = self.head_end + int(m.group(1))
        if len(self.buf) < self.need:
            return
        status = bytes(self.buf[9:12])
        body = bytes(self.buf[self.head_end : self.need])
        del self.buf[: self.need]
        self.need = -1
        i, self.current = self.current, -1
        self.gen.answered(self, i, status, body)

    def connection_lost(self, exc: Exception | None) -> None:
        self.gen.lost(self)


class _OpenLoop:
    def __init__(
        self, host: str, port: int, requests: list[bytes], rate: float, connections: int, ids: list[int] | None
    ) -> None:
        self.host, self.port = host, port
        self.requests = requests
        self.rate = rate
        self.n = len(requests)
        self.nconn = connections
        self.ids = ids
        self.done = [-1.0] * self.n  # when each answer's last byte arrived
        self.sent = [-1.0] * self.n
        self.ok = [False] * self.n
        self.errors: collections.Counter[str] = collections.Counter()
        self.idle: collections.deque[_Connection] = collections.deque()
        self.backlog: collections.deque[int] = collections.deque()
        self.busy = 0
        self.peak_busy = 0
        self.peak_backlog = 0
        self.remaining = self.n
        self.next = 0  # the next request to fall due
        self.answers = 0  # answers received, any status
        self.t0 = 0.0
        self.loop = asyncio.get_running_loop()
        self.finished = self.loop.create_future()

    async def connect(self) -> None:
        _, conn = await self.loop.create_connection(lambda: _Connection(self), self.host, self.port)
        self.idle.append(conn)

    def dispatch(self, i: int) -> None:
        if self.idle:
            conn = self.idle.popleft()
            self.busy += 1
            self.peak_busy = max(self.peak_busy, self.busy)
            self.sent[i] = self.loop.time()
            conn.send(i)
        else:
            self.backlog.append(i)
            self.peak_backlog = max(self.peak_backlog, len(self.backlog))

    def _free(self, conn: _Connection) -> None:
        if self.backlog:
            i = self.backlog.popleft()
            self.sent[i] = self.loop.time()
            conn.send(i)
        else:
            self.busy -= 1
            self.idle.append(conn)  # FIFO: every connection stays in use (servers close idle ones)

    def _settle(self, i: int, ok: bool, kind: str = "") -> None:
        self.done[i] = self.loop.time()
        self.ok[i] = ok
        if not ok:
            self.errors[kind] += 1
        self.remaining -= 1
        if self.remaining == 0 and not self.finished.done():
            self.finished.set_result(None)

    def answered(self, conn: _Connection, i: int, status: bytes, body: bytes) -> None:
        self.answers += 1
        if status != b"200":
            self._settle(i, False, f"HTTP {status.decode(errors='replace')}")
        elif self.ids is not None and b'"TRANSACTION_ID":%d' % self.ids[i] not in body:
            self._settle(i, False, "answer for another TRANSACTION_ID")
        elif self.ids is not None and b'"duplicate":true' in body:
            self._settle(i, False, "answered as a duplicate")
        else:
            self._settle(i, True)
        self._free(conn)

    def failed(self, conn: _Connection, kind: str) -> None:
        if conn.current >= 0:
            self._settle(conn.current, False, kind)
            conn.current = -1
        assert conn.transport is not None
        conn.transport.abort()

    def lost(self, conn: _Connection) -> None:
        if conn.current >= 0:
            self._settle(conn.current, False, "connection lost")
            conn.current = -1
        if conn in self.idle:
            self.idle.remove(conn)
        else:
            self.busy -= 1
        if self.remaining:
            self.loop.create_task(self._replace())

    async def _replace(self) -> None:
        try:
            await self.connect()
        except OSError:
            self.errors["reconnect failed"] += 1
            return
        conn = self.idle.pop()
        self.busy += 1
        self._free(conn)

    def _tick(self) -> None:
        """Send every request now due, then sleep until the next one is (a timer, no coroutine)."""
        due_now = min(self.n, math.floor((self.loop.time() - self.t0) * self.rate) + 1)
        while self.next < due_now:
            self.dispatch(self.next)
            self.next += 1
        if self.next < self.n:
            self.loop.call_at(self.t0 + self.next / self.rate, self._tick)

    async def run(self, drain: float) -> None:
        await asyncio.gather(*(self.connect() for _ in range(self.nconn)))
        self.t0 = self.loop.time() + 0.01
        self.loop.call_at(self.t0, self._tick)
        try:
            await asyncio.wait_for(asyncio.shield(self.finished), self.n / self.rate + 0.01 + drain)
        except TimeoutError:
            for j in range(self.n):
                if self.done[j] < 0:
                    self._settle(j, False, f"no answer within {drain:g} s")
        for conn in list(self.idle):
            assert conn.transport is not None
            conn.transport.close()


def run(
    url: str,
    bodies: list[bytes],
    rate: float,
    *,
    path: str = "/v1/score",
    connections: int = 32,
    ids: list[int] | None = None,
    drain: float = 30.0,
    latencies: str | None = None,
) -> Result:
    """Send ``bodies`` to ``url + path`` open-loop at ``rate`` per second; see the module's docstring.
    ``latencies``: a CSV file to write each request's due time (``time.monotonic()`` seconds, the
    system's monotonic clock: comparable with other processes' events) and latency (ms) to."""
    import numpy as np

    host, port = url.removeprefix("http://").rstrip("/").split(":")
    requests = [request_bytes(host, path, b) for b in bodies]

    async def main() -> _OpenLoop:
        gen = _OpenLoop(host, int(port), requests, rate, connections, ids)
        await gen.run(drain)
        return gen

    before = resource.getrusage(resource.RUSAGE_SELF)
    loop = precise_loop()
    try:
        gen = loop.run_until_complete(main())
    finally:
        loop.close()
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)

    n = len(requests)
    window = n / rate
    due = gen.t0 + np.arange(n) / rate
    done = np.array(gen.done)
    ok = np.array(gen.ok)
    latency_ms = (done - due) * 1000
    lag_ms = (np.array(gen.sent) - due)[np.array(gen.sent) >= 0] * 1000
    pct = np.percentile(latency_ms, [50, 90, 99, 99.9]) if n else [0.0] * 4
    if latencies is not None:
        with open(latencies, "w") as f:
            f.write("due_s,latency_ms,ok\n")
            f.writelines(f"{d:.6f},{lat:.3f},{int(k)}\n" for d, lat, k in zip(due, latency_ms, ok, strict=True))
    return Result(
        url=url,
        path=path,
        offered_rps=rate,
        seconds=window,
        requests=n,
        connections=connections,
        answered=gen.answers,
        errors=sum(gen.errors.values()),
        error_kinds=dict(gen.errors),
        achieved_rps=float(np.count_nonzero(ok & (done <= gen.t0 + window)) / window),
        completed_rps=float(n / (done.max() - gen.t0)) if n else 0.0,
        p50_ms=float(pct[0]),
        p90_ms=float(pct[1]),
        p99_ms=float(pct[2]),
        p999_ms=float(pct[3]),
        max_ms=float(latency_ms.max()) if n else 0.0,
        mean_ms=float(latency_ms.mean()) if n else 0.0,
        late_sends=int(np.count_nonzero(lag_ms > LATE_S * 1000)),
        send_lag_p99_ms=float(np.percentile(lag_ms, 99)) if len(lag_ms) else 0.0,
        send_lag_max_ms=float(lag_ms.max()) if len(lag_ms) else 0.0,
        peak_busy_connections=gen.peak_busy,
        peak_backlog=gen.peak_backlog,
        cpu_us_per_request=cpu / max(n, 1) * 1e6,
    )


def read_bodies(path: str, start: int, count: int) -> list[bytes]:
    """Lines ``start .. start + count`` of a JSON-lines file, as bytes (fewer if the file ends)."""
    with open(path, "rb") as f:
        return [line.rstrip(b"\n") for line in itertools.islice(f, start, start + count)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True, help="http://host:port")
    ap.add_argument("--path", default="/v1/score")
    ap.add_argument("--bodies", required=True, help="JSON lines: one request body per line")
    ap.add_argument("--start", type=int, default=0, help="first line to send")
    ap.add_argument("--rate", type=float, required=True, help="requests per second offered")
    ap.add_argument("--seconds", type=float, required=True, help="how long to offer it (rate x seconds requests)")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--drain", type=float, default=30.0, help="seconds to wait for answers after the last send")
    ap.add_argument("--latencies", metavar="CSV", help="write each request's due time and latency to CSV")
    ap.add_argument("--check-ids", action="store_true", help="each answer must name its TRANSACTION_ID, not duplicate")
    args = ap.parse_args()
    bodies = read_bodies(args.bodies, args.start, round(args.rate * args.seconds))
    ids = [int(json.loads(b)["TRANSACTION_ID"]) for b in bodies] if args.check_ids else None
    result = run(
        args.url,
        bodies,
        args.rate,
        path=args.path,
        connections=args.connections,
        ids=ids,
        drain=args.drain,
        latencies=args.latencies,
    )
    print(json.dumps(asdict(result)))


if __name__ == "__main__":
    main()
