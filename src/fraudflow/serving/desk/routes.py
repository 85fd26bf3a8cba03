"""The desk's routes under ``/desk``: the pages, their fragments, verdicts, login.

Reading the lake (DuckDB over Parquet) blocks: the GET routes are plain functions, which FastAPI runs
in its thread pool, and the verdicts read in a worker thread, so the event loop keeps scoring.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from pydantic import BaseModel, ConfigDict, Field

from fraudflow.serving.desk import card as card_view
from fraudflow.serving.desk import live, queue, served, session, verdicts
from fraudflow.serving.desk.state import Desk
from fraudflow.serving.labelling import accept_labels

router = APIRouter(prefix="/desk", include_in_schema=False)

#: what a desk page may load and do: its own files only, no inline script, no framing
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",  # not no-referrer: with it, a form's POST says Origin: null
    "Cache-Control": "no-store",
}
MAX_TRANSACTIONS = 1000
TxId = Annotated[int, Field(ge=0, lt=2**62)]
Day = Annotated[dt.date | None, Query(description="the day (YYYY-MM-DD); the newest answered when absent")]
MinScore = Annotated[float, Query(ge=0.0, le=1.0)]


class VerdictIn(BaseModel):
    """A verdict on some of a card's transactions of a day (or the undoing of one: ``verdict`` ignored)."""

    model_config = ConfigDict(extra="forbid")

    day: dt.date
    customer: TxId
    transactions: list[TxId] = Field(min_length=1, max_length=MAX_TRANSACTIONS)
    verdict: Literal["fraud", "genuine"] = "fraud"


def desk_of(request: Request) -> Desk:
    desk: Desk = request.app.state.desk
    return desk


DeskDep = Annotated[Desk, Depends(desk_of)]


def session_of(request: Request, desk: DeskDep) -> session.Session | None:
    return session.verify(desk.api_key, request.cookies.get(session.COOKIE))


def signed_in(request: Request, desk: DeskDep) -> session.Session:
    """The analyst's session; 401 without one."""
    found = session_of(request, desk)
    if found is None:
        raise HTTPException(401, "sign in at /desk/login with the service's API key")
    return found


def posting(
    request: Request, desk: DeskDep, analyst: Annotated[session.Session, Depends(signed_in)]
) -> session.Session:
    """The session of a POST from the desk's own page: 403 without its CSRF token, or from another origin."""
    if not same_origin(request):
        raise HTTPException(403, "cross-origin request refused")
    if not session.check_csrf(desk.api_key, analyst, request.headers.get(session.CSRF_HEADER)):
        raise HTTPException(403, "missing or wrong CSRF token (reload the page)")
    return analyst


def same_origin(request: Request) -> bool:
    """False when the browser says the request comes from another site (``Origin``, ``Sec-Fetch-Site``)."""
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    return origin is None or urlsplit(origin).netloc == request.headers.get("host")


Analyst = Annotated[session.Session, Depends(signed_in)]
Poster = Annotated[session.Session, Depends(posting)]


def html(text: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(text, status, headers=HEADERS)


# pages -----------------------------------------------------------------------------------------
@router.get("")
def page(request: Request, desk: DeskDep, day: Day = None, min_score: MinScore = 0.0) -> Response:
    found = session_of(request, desk)
    if found is None:
        return RedirectResponse("/desk/login", 303, headers=HEADERS)
    context = desk.queue_context(day, min_score)
    return html(
        desk.render("desk.html", **context, analyst=found.analyst, csrf=session.csrf_token(desk.api_key, found))
    )


@router.get("/queue")
def queue_fragment(desk: DeskDep, _: Analyst, day: Day = None, min_score: MinScore = 0.0) -> Response:
    return html(desk.render("queue.html", **desk.queue_context(day, min_score)))


@router.get("/card")
def card_fragment(desk: DeskDep, _: Analyst, day: dt.date, customer: Annotated[int, Query(ge=0, lt=2**62)]) -> Response:
    pending = desk.pending()
    rows = served.read(desk.lake, pending, day, day, desk.names)
    labels = verdicts.in_force(desk.lake, rows.tx_id[rows.customer == customer].tolist())
    shown = card_view.view(desk.lake, rows, pending, day, customer, labels, desk.explainer)
    if shown is None:
        return html(desk.render("card.html", card=None, day=day, customer=customer), 404)
    return html(desk.render("card.html", card=shown, day=day, customer=customer))


@router.get("/live")
def live_fragment(desk: DeskDep, _: Analyst, day: Day = None) -> Response:
    pending = desk.pending()
    newest = served.newest_day(desk.lake, pending)
    shown = live.view(desk.live, desk.metrics, desk.lake, desk.scorer, pending, day, newest)
    return html(desk.render("live.html", live=shown))


# verdicts --------------------------------------------------------------------------------------
@router.post("/verdict")
async def verdict(body: VerdictIn, desk: DeskDep, analyst: Poster) -> JSONResponse:
    ids = await asyncio.to_thread(_checked, desk, body)
    n = await accept_labels(
        desk.lake, desk.scorer, verdicts.frauds_of(ids, body.verdict), source=queue.ANALYST, analyst=analyst.analyst
    )
    desk.metrics.label(n)
    return _answer(body, n, body.verdict)


@router.post("/undo")
async def undo(body: VerdictIn, desk: DeskDep, analyst: Poster) -> JSONResponse:
    ids = await asyncio.to_thread(_checked, desk, body)
    try:
        restored = await asyncio.to_thread(verdicts.restoring, desk.lake, ids)
    except verdicts.VerdictError as exc:
        raise HTTPException(409, str(exc)) from None
    n = await accept_labels(desk.lake, desk.scorer, restored, source=queue.UNDO, analyst=analyst.analyst)
    desk.metrics.label(n)
    return _answer(body, n, "undone")


def _checked(desk: Desk, body: VerdictIn) -> list[int]:
    rows = served.read(desk.lake, desk.pending(), body.day, body.day)
    try:
        return verdicts.check_transactions(rows, body.day, body.customer, body.transactions)
    except verdicts.VerdictError as exc:
        raise HTTPException(422, str(exc)) from None


def _answer(body: VerdictIn, n: int, what: str) -> JSONResponse:
    content: dict[str, Any] = {"customer": body.customer, "day": body.day.isoformat(), "labelled": n, "verdict": what}
    return JSONResponse(content, headers=HEADERS)


# login -----------------------------------------------------------------------------------------
@router.get("/login")
def login_form(desk: DeskDep) -> Response:
    return html(desk.render("login.html", error=None, name="", needs_key=desk.api_key is not None))


@router.post("/login")
async def login(request: Request, desk: DeskDep) -> Response:
    if not same_origin(request):
        raise HTTPException(403, "cross-origin request refused")
    form = parse_qs((await request.body()).decode("utf-8", "replace"), max_num_fields=4)
    name, key = form.get("name", [""])[0], form.get("key", [""])[0]
    try:
        started = session.login(desk.api_key, name, key)
    except session.LoginError as exc:
        page = desk.render("login.html", error=str(exc), name=name[:64], needs_key=desk.api_key is not None)
        return html(page, 401)
    response = RedirectResponse("/desk", 303, headers=HEADERS)
    response.set_cookie(
        session.COOKIE,
        started.token,
        max_age=session.SESSION_SECONDS,
        path="/desk",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout")
def logout(request: Request, desk: DeskDep, _: Poster) -> Response:
    response = RedirectResponse("/desk/login", 303, headers=HEADERS)
    response.delete_cookie(session.COOKIE, path="/desk", httponly=True, samesite="strict")
    return response


@router.get("/static/{name}")
def static(desk: DeskDep, name: str) -> Response:
    found = desk.static(name)
    if found is None:
        raise HTTPException(404, "no such file")
    body, media_type = found
    return Response(
        body, media_type=media_type, headers={"Cache-Control": "max-age=3600", "X-Content-Type-Options": "nosniff"}
    )
