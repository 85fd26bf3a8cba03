"""The analyst desk in a real browser: Debian's Chromium driven by Playwright against a real `fraudflow serve`.

The service runs on a copy of the served lake with a high threshold (some cards alerted, most not);
the test sends traffic, opens the page, checks the queue is the alerted cards ranked by their
highest score, gives verdicts with the mouse and the keyboard, undoes one, and checks the labels
in the lake and in the online store. Screenshots go to the test's folder (and to the folder named
by ``DESK_SCREENSHOTS``, e.g. ``docs``, when set).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fraudflow.lake import Lake
from fraudflow.serving.desk import session
from fraudflow.store import labels
from tests.serving.conftest import API_KEY, Server, start_server
from tests.serving.test_prediction_log import own_lake
from tests.serving.test_resilience import traffic

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("desk")]

THRESHOLD = 0.9
ANALYST = "Ada Lovelace"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def desk(served_lake: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[int, Any]]]:
    """A service on a lake of its own, its API key set, and its answers to 300 transactions."""
    root = own_lake(served_lake, tmp_path_factory.mktemp("desk"))
    server = start_server(root, api_key=API_KEY, options=["--threshold", str(THRESHOLD)])
    try:
        with httpx.Client(timeout=10, headers={"X-API-Key": API_KEY}) as client:
            answers = [client.post(f"{server.url}/v1/score", json=tx).json() for tx in traffic(300)]
        yield server, {a["TRANSACTION_ID"]: a for a in answers}
    finally:
        server.stop()


def expected_queue(answers: dict[int, Any]) -> list[tuple[int, list[int]]]:
    """The alerted cards, highest score first (ties by card), each with its alerted transactions."""
    by_card: dict[int, list[dict[str, Any]]] = {}
    for tx in traffic(300):
        by_card.setdefault(int(str(tx["CUSTOMER_ID"])), []).append(answers[int(str(tx["TRANSACTION_ID"]))])
    alerted = {c: a for c, a in by_card.items() if any(x["alert"] for x in a)}
    ranked = sorted(alerted, key=lambda c: (-max(x["score"] for x in alerted[c]), c))
    return [(c, [x["TRANSACTION_ID"] for x in alerted[c] if x["alert"]]) for c in ranked]


def online_labels(root: Path, ids: list[int]) -> dict[int, int]:
    con = sqlite3.connect(f"file:{root / 'online.sqlite'}?mode=ro", uri=True)
    try:
        marks = ",".join("?" * len(ids))
        return dict(con.execute(f"SELECT tx_id, fraud FROM labels WHERE tx_id IN ({marks})", ids).fetchall())
    finally:
        con.close()


def in_force(root: Path, ids: list[int]) -> dict[int, tuple[int, str, str | None]]:
    rows = labels.read(Lake(root)).to_pylist()
    return {r["TRANSACTION_ID"]: (r["TX_FRAUD"], r["SOURCE"], r["ANALYST"]) for r in rows if r["TRANSACTION_ID"] in ids}


def screenshot(page: Any, tmp_path: Path, name: str) -> None:
    page.screenshot(path=str(tmp_path / name), full_page=False)
    folder = os.environ.get("DESK_SCREENSHOTS")
    if folder:
        shutil.copy(tmp_path / name, Path(folder) / name)


def test_the_queue_verdicts_by_mouse_and_keyboard_and_undo(desk: tuple[Server, dict[int, Any]], tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    server, answers = desk
    expected = expected_queue(answers)
    assert 3 <= len(expected) < 50  # some cards alerted, not all
    (first, first_ids), (second, _), (third, third_ids) = expected[:3]
    assert len(expected) >= 4
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 900})
        page.goto(f"{server.url}/desk")
        assert page.url.endswith("/desk/login")  # no session: the login form
        page.fill("#name", ANALYST)
        page.fill("#key", "not-the-key-0123456789")
        page.click("button[type=submit]")
        expect(page.locator(".error")).to_have_text("wrong API key")
        assert page.context.cookies() == []
        page.fill("#key", API_KEY)
        page.click("button[type=submit]")
        expect(page.locator("#analyst")).to_have_text(ANALYST)
        (cookie,) = page.context.cookies()
        assert (cookie["name"], cookie["httpOnly"], cookie["sameSite"]) == (session.COOKIE, True, "Strict")

        # the queue: the alerted cards, ranked by their highest score
        shown = page.locator("tr.card-row").evaluate_all("rows => rows.map(r => Number(r.dataset.customer))")
        assert shown == [c for c, _ in expected]
        # the first card is selected: its transactions, and the contributions the service answered with
        card = page.locator(f'.card[data-customer="{first}"]')
        expect(card).to_be_visible()
        top = max((answers[i] for i in first_ids), key=lambda a: a["score"])
        features = card.locator("g.contribution").evaluate_all("gs => gs.map(g => g.dataset.feature)")
        assert features[:3] == [f["feature"] for f in top["top_features"]]
        expect(card.locator(".model-id")).to_have_text(top["model_id"])
        assert sorted(
            int(v) for v in card.locator("input.pick:checked").evaluate_all("i => i.map(x => x.value)")
        ) == sorted(first_ids)
        expect(page.locator("#serving")).to_have_text(top["model_id"])  # the live view came
        screenshot(page, tmp_path, "desk.png")

        # a verdict with the mouse: genuine
        card.locator("button.verdict.genuine").click()
        expect(page.locator(f'tr.card-row[data-customer="{first}"]')).to_have_count(0)
        assert in_force(server.root, first_ids) == dict.fromkeys(first_ids, (0, "analyst", ANALYST))
        assert online_labels(server.root, first_ids) == dict.fromkeys(first_ids, 0)

        # with the keyboard: the next card is selected, j moves on, f marks it fraud
        expect(page.locator(f'.card[data-customer="{second}"]')).to_be_visible()
        page.keyboard.press("j")
        expect(page.locator(f'.card[data-customer="{third}"]')).to_be_visible()
        page.keyboard.press("f")
        expect(page.locator(f'tr.card-row[data-customer="{third}"]')).to_have_count(0)
        assert in_force(server.root, third_ids) == dict.fromkeys(third_ids, (1, "analyst", ANALYST))
        assert online_labels(server.root, third_ids) == dict.fromkeys(third_ids, 1)
        expect(page.locator("#toast")).to_contain_text(f"Card {third}: fraud")
        expect(page.locator(f'.card[data-customer="{expected[3][0]}"]')).to_be_visible()  # the next one

        # u undoes it: back in the queue, its labels back to what they were (none: genuine)
        page.keyboard.press("u")
        expect(page.locator(f'tr.card-row[data-customer="{third}"]')).to_have_count(1)
        assert in_force(server.root, third_ids) == dict.fromkeys(third_ids, (0, "analyst-undo", ANALYST))
        assert online_labels(server.root, third_ids) == dict.fromkeys(third_ids, 0)
        shown = page.locator("tr.card-row").evaluate_all("rows => rows.map(r => Number(r.dataset.customer))")
        assert shown == [c for c, _ in expected if c != first]  # in its place again
        reviewed = page.locator("#reviewed tr")
        expect(reviewed).to_have_count(1)
        expect(reviewed.first).to_contain_text(ANALYST)
        expect(reviewed.first).to_contain_text("genuine")
        screenshot(page, tmp_path, "desk-after-verdicts.png")

        # signed out (the cookie gone), the page cannot label: the verdict is refused, the login comes
        before = labels.read(Lake(server.root), history=True).num_rows
        page.context.clear_cookies()
        page.keyboard.press("f")  # on the card selected, the one undone
        expect(page.locator("#key")).to_be_visible()
        assert labels.read(Lake(server.root), history=True).num_rows == before
        browser.close()


def test_no_verdict_without_the_key(desk: tuple[Server, dict[int, Any]]) -> None:
    server, answers = desk
    (card, ids), *_ = expected_queue(answers)
    body = {"day": "2018-05-16", "customer": card, "transactions": ids, "verdict": "fraud"}
    before = labels.read(Lake(server.root), history=True).num_rows
    with httpx.Client(base_url=server.url, timeout=10) as client:
        assert client.get("/desk").status_code == 303
        assert client.get("/desk/card", params={"day": "2018-05-16", "customer": card}).status_code == 401
        assert client.post("/desk/verdict", json=body).status_code == 401  # no session
        forged = session.login("another-key-0123456789", ANALYST, "another-key-0123456789").token
        client.cookies.set(session.COOKIE, forged)
        assert client.post("/desk/verdict", json=body).status_code == 401  # signed with another key
        client.cookies.clear()
        refused = client.post("/desk/login", data={"name": ANALYST, "key": "not-the-key-0123456789"})
        assert refused.status_code == 401 and session.COOKIE not in refused.cookies
        odd = client.post("/desk/login", data={"name": "<script>alert(1)</script>", "key": API_KEY})
        assert odd.status_code == 401 and "<script>alert(1)" not in odd.text and "&lt;script&gt;" in odd.text
        signed = client.post("/desk/login", data={"name": ANALYST, "key": API_KEY})
        assert signed.status_code == 303 and session.COOKIE in client.cookies
        assert client.post("/desk/verdict", json=body).status_code == 403  # no CSRF token
        token = session.csrf_token(API_KEY, session.verify(API_KEY, client.cookies[session.COOKIE]))  # type: ignore[arg-type]
        headers = {session.CSRF_HEADER: token}
        cross = client.post("/desk/verdict", json=body, headers={**headers, "Origin": "http://evil.example"})
        assert cross.status_code == 403
        other = client.post("/desk/verdict", json={**body, "transactions": [12345]}, headers=headers)
        assert other.status_code == 422 and "transaction 12345 is not one of card" in other.json()["detail"]
        bad = client.post("/desk/verdict", json={**body, "verdict": "maybe"}, headers=headers)
        assert bad.status_code == 422
    assert labels.read(Lake(server.root), history=True).num_rows == before
