"""A small lake with a trained model, and a real `fraudflow serve` process on a loopback port."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from fraudflow import WorldParams, generate
from fraudflow.features import FRAUDFLOW, build_features
from fraudflow.lake import Lake
from fraudflow.training import workflow
from tests.conftest import free_port

WORLD = WorldParams(n_customers=300, n_terminals=500, nb_days=45, radius=10.0, start_date=dt.date(2018, 4, 1))
API_KEY = "test-key-0123456789abcdef"


@pytest.fixture(scope="session")
def served_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("served")
    generate(root, WORLD)
    build_features(root, FRAUDFLOW)
    workflow.train(Lake(root), dt.date(2018, 4, 10), {"n_estimators": 30, "max_depth": 3})
    return root


@dataclass
class Server:
    url: str
    root: Path
    proc: subprocess.Popen[bytes]
    env: dict[str, str]
    port: int

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


def start_server(
    root: Path,
    port: int | None = None,
    api_key: str | None = None,
    online: str | None = None,
    workers: int = 1,
    env: dict[str, str] | None = None,
    options: list[str] | None = None,
) -> Server:
    port = port or free_port()
    env = {**os.environ, "FRAUDFLOW_API_KEY": api_key or "", **(env or {})}
    cmd = [sys.executable, "-m", "fraudflow.cli", "serve", "--data", str(root), "--port", str(port)]
    if online:
        cmd += ["--online", online]
    if workers > 1:
        cmd += ["--workers", str(workers)]
    cmd += options or []
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return Server(url, root, proc, env, port)
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not become ready")


@pytest.fixture(scope="session")
def server(served_lake: Path) -> Iterator[Server]:
    started = start_server(served_lake)
    yield started
    started.stop()


@dataclass
class RedisServer:
    """A redis-server of the test's own, on a loopback port, its append-only file in ``dir``."""

    port: int
    dir: Path
    proc: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        import shutil

        import redis

        exe = shutil.which("redis-server")
        if exe is None:
            pytest.fail("redis-server is not installed: `make test` installs it (.ci/ensure-system)")
        # every write is in the append-only file, fsynced, before Redis answers it
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir), "--save", ""]
        args += ["--appendonly", "yes", "--appendfsync", "always"]
        self.proc = subprocess.Popen([exe, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                client.ping()
                return
            except redis.BusyLoadingError:
                time.sleep(0.05)
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture
def persistent_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server with persistence on (appendonly yes, appendfsync always), for one test."""
    server = RedisServer(free_port(), tmp_path / "redis")
    server.dir.mkdir()
    server.start()
    yield server
    server.stop()
