"""A server killed mid-replay loses nothing it answered and counts nothing twice; fuzzing finds no 5xx."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from fraudflow.store.online.interface import OnlineStore
from fraudflow.store.online.redis import RedisStore
from fraudflow.store.online.sqlite import SQLiteStore
from tests.serving.conftest import RedisServer, Server, start_server


def traffic(n: int) -> list[dict[str, object]]:
    t0 = dt.datetime(2018, 5, 16, 0, 0, 0)
    return [
        {
            "TRANSACTION_ID": 20_000_000 + i,
            "TX_DATETIME": (t0 + dt.timedelta(seconds=37 * i)).isoformat(),
            "CUSTOMER_ID": i % 50,
            "TERMINAL_ID": (7 * i) % 90,
            "TX_AMOUNT": round(5 + (i * 13.37) % 200, 2),
        }
        for i in range(n)
    ]


@pytest.mark.slow
def test_sigkill_mid_replay_then_restart(served_lake: Path, tmp_path: Path) -> None:
    db = tmp_path / "kill.sqlite"
    server = start_server(served_lake, online=f"sqlite://{db}")
    txs = traffic(400)
    answered = kill_mid_replay(server, txs)

    again = start_server(served_lake, port=server.port, online=f"sqlite://{db}")
    try:
        with httpx.Client(timeout=5) as client:
            for tx in txs:
                r = client.post(f"{again.url}/v1/score", json=tx)
                assert r.status_code == 200
                body = r.json()
                first = answered.get(int(tx["TRANSACTION_ID"]))  # type: ignore[arg-type]
                if first is not None:  # answered before the kill: the same answer, not counted again
                    assert body["duplicate"] is True and body["features"] == first["features"]
    finally:
        again.stop()
    assert_recorded_once(SQLiteStore(str(db)), txs)


def assert_recorded_once(store: OnlineStore, txs: list[dict[str, object]]) -> None:
    """Each of ``txs`` is in the store's log once, their seqs one after the other (nothing appended
    twice, nothing lost between), and each is answered, once, under its seq in the log."""
    wanted = {int(t["TRANSACTION_ID"]) for t in txs}  # type: ignore[call-overload]
    log = store.catch_up(0)
    seqs, ids = log.seqs.tolist(), log.txs.tx_id.tolist()
    assert seqs == sorted(set(seqs))  # the whole log: each seq once, in order
    logged = [(seq, tx_id) for seq, tx_id in zip(seqs, ids, strict=True) if tx_id in wanted]
    assert sorted(tx_id for _, tx_id in logged) == sorted(wanted)  # each transaction once
    assert logged[-1][0] - logged[0][0] + 1 == len(txs)  # without gaps
    answered = [(seq, tx_id) for seq, tx_id, _ in store.answers() if tx_id in wanted]
    assert answered == logged
    store.close()


def kill_mid_replay(
    server: Server, txs: list[dict[str, object]], also: Callable[[], None] | None = None
) -> dict[int, dict[str, object]]:
    """Send ``txs`` and SIGKILL the server (then run ``also``) once 120 are answered; the answers."""
    answered: dict[int, dict[str, object]] = {}
    sender = threading.Thread(target=send_until_killed, args=(server, txs, answered))
    sender.start()
    while len(answered) < 120 and sender.is_alive():
        time.sleep(0.01)
    server.kill()
    if also is not None:
        also()
    sender.join()
    assert 120 <= len(answered) < len(txs)
    return answered


def send_until_killed(server: Server, txs: list[dict[str, object]], answered: dict[int, dict[str, object]]) -> None:
    """Post ``txs`` one after the other, keeping each answer, until the server stops answering."""
    with httpx.Client(timeout=5) as client:
        for tx in txs:
            try:
                r = client.post(f"{server.url}/v1/score", json=tx)
            except httpx.TransportError:
                return
            if r.status_code == 200:
                answered[int(tx["TRANSACTION_ID"])] = r.json()  # type: ignore[arg-type]


def send_all(server: Server, txs: list[dict[str, object]]) -> list[dict[str, object]]:
    with httpx.Client(timeout=5) as client:
        out = []
        for tx in txs:
            r = client.post(f"{server.url}/v1/score", json=tx)
            assert r.status_code == 200, r.text
            out.append(r.json())
        return out


@pytest.mark.slow
def test_sigkill_of_the_service_and_redis_mid_replay_then_restart(
    served_lake: Path, persistent_redis: RedisServer
) -> None:
    """With Redis persisting every write before it answers (appendonly, appendfsync always), killing
    both the service and redis-server mid-replay loses no answered transaction: after both restart,
    the run finishes with the same vectors as an uninterrupted run, each transaction recorded once."""
    txs = traffic(400)
    # the uninterrupted run, on another database of the same server
    clean = start_server(served_lake, online=persistent_redis.url(1))
    try:
        uninterrupted = {int(b["TRANSACTION_ID"]): b["features"] for b in send_all(clean, txs)}  # type: ignore[call-overload]
    finally:
        clean.stop()

    server = start_server(served_lake, online=persistent_redis.url(0))
    # Redis dies too: only its append-only file is left
    answered = kill_mid_replay(server, txs, also=persistent_redis.kill)

    persistent_redis.start()
    again = start_server(served_lake, port=server.port, online=persistent_redis.url(0))
    try:
        after = send_all(again, txs)
    finally:
        again.stop()
    for tx, body in zip(txs, after, strict=True):
        tx_id = int(tx["TRANSACTION_ID"])  # type: ignore[call-overload]
        first = answered.get(tx_id)
        if first is not None:  # answered before the kill: the same answer, not counted again
            assert body["duplicate"] is True and body["features"] == first["features"], tx_id
        assert body["features"] == uninterrupted[tx_id], tx_id
    assert_recorded_once(RedisStore(persistent_redis.url(0)), txs)


#: Requests per operation schemathesis must send in the fuzzing phase (and how many examples it is asked for).
EXAMPLES = 200
SCHEMATHESIS_SEED = "20181001"  # reproducible in CI; change it to explore other inputs


def schemathesis(url: str, cwd: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict]:
    report = cwd / f"report-{len(list(cwd.glob('report-*')))}.json"
    exe = Path(sys.executable).parent / "schemathesis"
    cmd = [str(exe), "run", f"{url}/openapi.json", "--checks", "all", "--workers", "1", "--seed", SCHEMATHESIS_SEED]
    cmd += ["--generation-database", "none", "--request-timeout", "20", "--no-color", "--report", "json"]
    cmd += ["--report-json-path", str(report), *args]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=cwd)
    return result, json.loads(report.read_text())


def requests_per_route(url: str) -> dict[str, int]:
    """Requests the service counted per route (405s left out: schemathesis' probing of other methods)."""
    counts: dict[str, int] = {}
    for route, status, n in re.findall(
        r'^fraudflow_requests_total\{route="([^"]*)",status="(\d+)"\} (\d+)(?:\.0)?$',
        httpx.get(f"{url}/metrics").text,
        re.M,
    ):
        if status != "405":
            counts[route] = counts.get(route, 0) + int(n)
    return counts


@pytest.mark.slow
def test_schemathesis_finds_the_service_true_to_its_schema(served_lake: Path, tmp_path: Path) -> None:
    """Every check (no 5xx, documented statuses, content types and bodies, schema-valid requests
    accepted, invalid ones refused), 200 generated examples per operation, then the stateful phase."""
    server = start_server(served_lake, online=f"sqlite://{tmp_path / 'fuzz.sqlite'}")
    try:
        result, report = schemathesis(
            server.url, tmp_path, "--phases", "examples,coverage,fuzzing", "--max-examples", str(EXAMPLES)
        )
        assert result.returncode == 0, result.stdout[-6000:]
        sent = requests_per_route(server.url)
        # fuzzing alone sends EXAMPLES per operation that has inputs; the coverage phase adds its cases
        assert all(sent[route] >= EXAMPLES for route in ("/v1/score", "/v1/score/batch", "/v1/labels")), sent
        assert report["test_cases"]["generated"] >= 3 * EXAMPLES and report["test_cases"]["with_failures"] == 0, report[
            "test_cases"
        ]
        assert report["operations"]["tested"] == 6
        # sequences of calls (the inferred link from a scored transaction to its label), a shorter budget
        result, report = schemathesis(server.url, tmp_path, "--phases", "stateful", "--max-examples", "20")
        assert result.returncode == 0, result.stdout[-6000:]
        assert report["test_cases"]["generated"] >= 50 and report["test_cases"]["with_failures"] == 0, report[
            "test_cases"
        ]
    finally:
        server.stop()


@pytest.mark.slow
def test_two_worker_processes_share_the_sqlite_store(served_lake: Path, tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    db = tmp_path / "workers.sqlite"
    server = start_server(served_lake, online=f"sqlite://{db}", workers=2)
    txs = traffic(300)
    try:
        with httpx.Client(timeout=10) as client, ThreadPoolExecutor(8) as pool:
            first = list(pool.map(lambda t: client.post(f"{server.url}/v1/score", json=t), txs))
            again = list(pool.map(lambda t: client.post(f"{server.url}/v1/score", json=t), txs))
    finally:
        server.stop()
    assert all(r.status_code == 200 for r in first + again)
    assert all(r.json()["duplicate"] for r in again)  # whichever process answered the first time
    assert [r.json()["features"] for r in again] == [r.json()["features"] for r in first]
    assert_recorded_once(SQLiteStore(str(db)), txs)
