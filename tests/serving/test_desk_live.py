"""The desk while `fraudflow replay` drives the service: the queue fills as traffic flows, a verdict lands."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fraudflow.lake import Lake
from fraudflow.store import labels
from tests.serving.conftest import API_KEY, start_server
from tests.serving.test_desk import ANALYST, CHROMIUM, CHROMIUM_ARGS
from tests.serving.test_prediction_log import own_lake

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("desk")]


def test_the_desk_works_while_replay_drives_the_service(served_lake: Path, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    root = own_lake(served_lake, tmp_path)
    server = start_server(root, api_key=API_KEY, options=["--threshold", "0.5"])
    command = [sys.executable, "-m", "fraudflow.cli", "replay", "--data", str(root), "--url", server.url]
    command += ["--days", "1", "--rate", "30", "--concurrency", "4"]
    env = {**os.environ, "FRAUDFLOW_API_KEY": API_KEY}
    replay = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1600, "height": 900})
            page.goto(f"{server.url}/desk")
            page.fill("#name", ANALYST)
            page.fill("#key", API_KEY)
            page.click("button[type=submit]")
            expect(page.locator("#analyst")).to_have_text(ANALYST)
            # the queue fills as the replayed day is scored
            deadline = time.monotonic() + 90
            while page.locator("tr.card-row").count() == 0 and time.monotonic() < deadline:
                time.sleep(2)
                page.goto(f"{server.url}/desk")
            rows = page.locator("tr.card-row")
            assert rows.count() > 0, "no alerted card reached the queue while replay ran"
            assert replay.poll() is None  # traffic still flowing
            expect(page.locator("#scored")).not_to_have_text("0", timeout=30_000)  # the live view counts it
            first = int(rows.first.get_attribute("data-customer") or "-1")
            expect(page.locator(f'.card[data-customer="{first}"]')).to_be_visible()
            picked = page.locator(f'.card[data-customer="{first}"] input.pick:checked')
            ids = sorted(int(v) for v in picked.evaluate_all("i => i.map(x => x.value)"))
            page.keyboard.press("f")  # while replay still sends
            expect(page.locator(f'tr.card-row[data-customer="{first}"]')).to_have_count(0)
            browser.close()
        stderr = replay.communicate(timeout=300)[1].decode()
        assert replay.returncode == 0, stderr
    finally:
        if replay.poll() is None:
            replay.kill()
        server.stop()
    given = [r for r in labels.read(Lake(root), history=True).to_pylist() if r["SOURCE"] == "analyst"]
    assert ids and sorted(r["TRANSACTION_ID"] for r in given) == ids
    assert all((r["TX_FRAUD"], r["ANALYST"]) == (1, ANALYST) for r in given)
