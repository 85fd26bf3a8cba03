"""/metrics: valid Prometheus text whatever the path asked, and one total across worker processes."""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.serving.conftest import start_server
from tests.serving.test_resilience import traffic


def requests_total(text: str) -> dict[tuple[str, str], float]:
    """fraudflow_requests_total by (route, status), parsed by prometheus_client's own parser
    (which refuses a malformed exposition)."""
    from prometheus_client.parser import text_string_to_metric_families

    return {
        (sample.labels["route"], sample.labels["status"]): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "fraudflow_requests_total"
    }


def series(text: str) -> set[tuple[str, frozenset[tuple[str, str]]]]:
    """Every series of an exposition: its sample name and labels."""
    from prometheus_client.parser import text_string_to_metric_families

    return {
        (sample.name, frozenset(sample.labels.items()))
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_unknown_paths_are_counted_as_other_and_the_exposition_stays_valid(served_lake: Path) -> None:
    """A path with a quote or a newline once gave an invalid line; every unknown path a new series
    (one request to /nope-abc added 14 lines): now they all count as ``other``, and once that
    series exists, more unknown paths add none."""
    import asyncio

    from fraudflow.serving.app import create_app
    from fraudflow.serving.server import open_scorer
    from fraudflow.serving.settings import Settings

    settings = Settings(data=str(served_lake), online="memory://", api_key="k" * 16)
    app = create_app(settings, open_scorer(settings))

    async def calls() -> tuple[list[int], httpx.Response, httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://test") as client:
            statuses = [(await client.get("/nope-abc")).status_code]
            before = await client.get("/metrics")
            statuses += [
                (await client.get(path)).status_code
                for path in ('/schemathesis-probe"', "/a%22b%0A%7Dc%201%0Afake_metric%209", "/v1/score/x", "/%0A")
            ]
            statuses.append((await client.get("/v1/score")).status_code)  # a route, another method
            big = b"{" + b" " * (2 << 20) + b"}"
            statuses.append((await client.post("/v1/score", content=big)).status_code)  # refused before routing
            return statuses, before, await client.get("/metrics")

    statuses, before, r = asyncio.run(calls())
    assert statuses == [404, 404, 404, 404, 404, 405, 413]
    assert r.headers["content-type"].startswith("text/plain")
    counts = requests_total(r.text)
    assert counts[("other", "404")] == 5
    assert counts[("/v1/score", "405")] == 1 and counts[("/v1/score", "413")] == 1
    assert {route for route, _ in counts} == {"other", "/v1/score", "/metrics"}
    assert "probe" not in r.text and "fake_metric" not in r.text and "nope" not in r.text
    # once ``other`` exists, more unknown paths add no series: the only new ones are /v1/score's
    # 405 and 413 and the first scrape's own
    new = series(r.text) - series(before.text)
    assert {dict(labels).get("route") for _, labels in new} == {"/v1/score", "/metrics"}, new


@pytest.mark.slow
def test_one_scrape_sums_the_requests_of_both_workers(served_lake: Path, tmp_path: Path) -> None:
    """Many requests, each on a new connection, spread over the two workers; any worker's /metrics
    reports them all. Each worker's own count is read from its file in the shared folder (created
    under the server's TMPDIR): both answered some, and the folder is gone once the service stops."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    tmp = tmp_path / "tmp"
    tmp.mkdir()
    server = start_server(served_lake, online=f"sqlite://{tmp_path / 'm.sqlite'}", workers=2, env={"TMPDIR": str(tmp)})
    txs = traffic(240)
    try:
        with ThreadPoolExecutor(8) as pool:  # httpx.post: a new connection per request
            statuses = list(
                pool.map(lambda t: httpx.post(f"{server.url}/v1/score", json=t, timeout=10).status_code, txs)
            )
        assert statuses == [200] * len(txs)
        text = httpx.get(f"{server.url}/metrics").text
        assert requests_total(text)[("/v1/score", "200")] == len(txs)
        assert f"fraudflow_transactions_scored_total {float(len(txs))}" in text
        # whichever worker answers the scrape, the same totals
        for _ in range(10):
            assert requests_total(httpx.get(f"{server.url}/metrics").text)[("/v1/score", "200")] == len(txs)

        (folder,) = tmp.glob("fraudflow-metrics-*")
        per_worker = []
        for db in sorted(folder.glob("counter_*.db")):
            alone = tmp_path / db.stem
            alone.mkdir()
            shutil.copy(db, alone)
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=str(alone))
            per_worker.append(requests_total_of(registry).get(("/v1/score", "200"), 0.0))
        assert len(per_worker) == 2 and all(n > 0 for n in per_worker), per_worker
        assert sum(per_worker) == len(txs)
    finally:
        server.stop()
    assert not list(tmp.glob("fraudflow-metrics-*"))  # removed at exit


def requests_total_of(registry: object) -> dict[tuple[str, str], float]:
    from prometheus_client import generate_latest

    return requests_total(generate_latest(registry).decode())  # type: ignore[arg-type]


#: The service's metrics after a batch of answers, written by a fresh process: the scores observed
#: one at a time (``histogram.observe``), or a batch at a time (``Metrics.answered``, ``observe``).
_BATCH_METRICS = """
import sys
import numpy as np
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from fraudflow.serving.engine import Answers
from fraudflow.serving.metrics import Metrics
from fraudflow.store.online.codec import Texts

m = Metrics()
rng = np.random.default_rng(3)
bounds = [0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99]
scores = np.concatenate([rng.random(500), rng.random(300) ** 9, bounds, np.nextafter(bounds, 2), [0.0, 1.0, 0.1 + 0.2]])
duplicate = (rng.random(len(scores)) < 0.1).tolist()
alert = scores >= 0.5
texts = Texts.of(["{}"] * len(scores))
for _ in range(3):  # a batch, then three answers alone
    if sys.argv[1] == "one-by-one":
        alone = zip(scores[:3].tolist(), alert[:3].tolist(), [False] * 3)
        for score, is_alert, again in [*zip(scores.tolist(), alert.tolist(), duplicate), *alone]:
            if again:
                m.duplicates.inc()
            else:
                m.scored.inc()
                m.alerts.inc(is_alert)
                m.scores.observe(score)
    else:
        m.answered(Answers(np.arange(len(scores)), scores, alert, duplicate, 0.5, "m", texts, texts))
        m.answered(list(Answers(np.arange(3), scores[:3], alert[:3], [False] * 3, 0.5, "m", texts, texts)))
sys.stdout.write(m.render().decode())
"""


@pytest.mark.parametrize("multiprocess", [False, True], ids=["one-process", "multiprocess"])
def test_a_batch_observed_at_once_is_each_score_observed_alone(tmp_path: Path, multiprocess: bool) -> None:
    """``/metrics`` after batches counted at once (``Answers``: each bucket incremented once by its
    count) is the same text as after each score observed alone: counts, buckets and the sum's last
    bits (the same additions, in order); with prometheus_client's multiprocess files too (the same
    lines)."""
    import os
    import subprocess
    import sys

    texts = []
    for how in ("one-by-one", "batch"):
        env = dict(os.environ)
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        if multiprocess:
            (tmp_path / how).mkdir()
            env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / how)
        run = subprocess.run([sys.executable, "-c", _BATCH_METRICS, how], env=env, capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        texts.append(run.stdout)
    assert "fraudflow_score_bucket" in texts[0] and "fraudflow_duplicates_total" in texts[0]
    if multiprocess:  # the families in the order of the files' names, which hold the process ids
        texts = ["\n".join(sorted(text.splitlines())) for text in texts]
    assert texts[0] == texts[1]
