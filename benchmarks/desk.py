"""Benchmark: the analyst desk with 1,000 alerted cards in its queue, in Debian's Chromium.

    .venv/bin/python -m benchmarks.desk [--cards 1000] [--verdicts 20] [--root DIR]

Setup: a world of 1,200 customers (45 days), its features and a model trained on 2018-04-10..16;
``fraudflow serve`` with ``--threshold 0`` (every transaction alerted) and an API key; 2 transactions
for each of ``--cards`` cards on 2018-05-16 sent by ``POST /v1/score/batch`` (so the queue holds
``--cards`` cards; its first render reads the answers still in memory and, after the 5 s commit,
the prediction log). The browser (headless Chromium, Playwright) signs in, then:

- **first render**: from ``page.goto('/desk')`` to the queue's last row in the DOM and the first
  card's page (transactions, contributions) shown; the median of 5 loads;
- **verdict**: from the key ``f`` to its card gone from the queue (the label in the lake's labels
  table and the online store: the POST answers after both), the next card selected; the median
  and the worst of ``--verdicts``;
- the server's time for ``GET /desk`` alone (httpx, the median of 5).
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from pathlib import Path

import httpx

API_KEY = "bench-key-0123456789abcdef"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def make_lake(root: Path) -> None:
    from fraudflow import WorldParams, generate
    from fraudflow.features import build_features
    from fraudflow.lake import Lake
    from fraudflow.training import workflow

    world = WorldParams(n_customers=1200, n_terminals=1000, nb_days=45, radius=10.0, start_date=dt.date(2018, 4, 1))
    generate(root, world)
    build_features(root, workflow.FRAUDFLOW_FEATURES)
    workflow.train(Lake(root), dt.date(2018, 4, 10), {"n_estimators": 30, "max_depth": 3})


def send(url: str, cards: int) -> None:
    t0 = dt.datetime(2018, 5, 16)
    txs = [
        {
            "TRANSACTION_ID": 30_000_000 + i,
            "TX_DATETIME": (t0 + dt.timedelta(seconds=40 * i)).isoformat(),
            "CUSTOMER_ID": i % cards,
            "TERMINAL_ID": (7 * i) % 1000,
            "TX_AMOUNT": round(5 + (i * 13.37) % 200, 2),
        }
        for i in range(2 * cards)
    ]
    with httpx.Client(timeout=60, headers={"X-API-Key": API_KEY}) as client:
        for lo in range(0, len(txs), 500):
            client.post(f"{url}/v1/score/batch", json={"transactions": txs[lo : lo + 500]}).raise_for_status()


def measure(url: str, cards: int, verdicts: int) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    with httpx.Client(base_url=url, timeout=60) as client:
        client.post("/desk/login", data={"name": "bench", "key": API_KEY})
        server = []
        for _ in range(5):
            t = time.perf_counter()
            client.get("/desk").raise_for_status()
            server.append(time.perf_counter() - t)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 900})
        page.goto(f"{url}/desk/login")
        page.fill("#name", "bench")
        page.fill("#key", API_KEY)
        page.click("button[type=submit]")
        page.wait_for_selector("#analyst")
        renders = []
        for _ in range(5):
            t = time.perf_counter()
            page.goto(f"{url}/desk")
            page.wait_for_selector(f"tr.card-row:nth-child({cards})", state="attached")
            page.wait_for_selector(".card .actions")
            renders.append(time.perf_counter() - t)
        rows = page.locator("tr.card-row")
        assert rows.count() == cards, f"{rows.count()} cards in the queue, expected {cards}"
        times = []
        for _ in range(verdicts):
            customer = page.locator("tr.card-row.selected").get_attribute("data-customer")
            t = time.perf_counter()
            page.keyboard.press("f")
            page.wait_for_selector(f'tr.card-row[data-customer="{customer}"]', state="detached")
            page.wait_for_selector("tr.card-row.selected")
            times.append(time.perf_counter() - t)
            page.wait_for_selector(".card .actions")
        browser.close()
    return {
        "server_get_desk_s": statistics.median(server),
        "first_render_s": statistics.median(renders),
        "verdict_median_s": statistics.median(times),
        "verdict_worst_s": max(times),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cards", type=int, default=1000)
    parser.add_argument("--verdicts", type=int, default=20)
    parser.add_argument("--root", type=Path, default=None)
    args = parser.parse_args()
    from tests.serving.conftest import start_server

    with tempfile.TemporaryDirectory() as tmp:
        root = args.root or Path(tmp) / "lake"
        if not (root / "world").exists():
            make_lake(root)
        server = start_server(root, api_key=API_KEY, options=["--threshold", "0"])
        try:
            send(server.url, args.cards)
            result = measure(server.url, args.cards, args.verdicts)
        finally:
            server.stop()
    for name, value in result.items():
        print(f"{name}: {value * 1000:.0f} ms")


if __name__ == "__main__":
    main()
