"""The fraud analyst's desk: pages served by the service at ``/desk``.

- the alert queue: a day's alerted cards ranked by their highest score (as CP@k counts them), each
  card's transactions against its customer's usual amounts, the contributions that alerted it and
  the model that scored it; filters by day and score (``queue``, ``card``, ``explain``);
- verdicts (buttons, keys ``f``/``g``, ``u`` to undo) through the service's label path, by the
  signed-in analyst (``verdicts``, ``session``);
- the live view: throughput and latency, alerts a day against the budget, scores, live AP and
  CP@100 on mature days, the registry's production model and decisions, the monitor's flags
  (``live``, ``charts``), polled every few seconds.

Jinja2 templates rendered on the server (autoescaped) and one small script of our own
(``static/desk.js``): no front-end library, nothing fetched from elsewhere.
"""

from __future__ import annotations

from fastapi import FastAPI

from fraudflow.serving.desk.routes import router
from fraudflow.serving.desk.state import Desk

__all__ = ["add_desk"]


def add_desk(app: FastAPI) -> None:
    """Serve the desk at ``/desk`` on ``app`` (after its lake, scorer, metrics and settings are set)."""
    app.state.desk = Desk(app.state.lake, app.state.scorer, app.state.metrics, app.state.settings.api_key)
    app.include_router(router)
