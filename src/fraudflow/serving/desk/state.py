"""The desk's objects, built once with the app: the service's lake, scorer and metrics, the templates."""

from __future__ import annotations

import datetime as dt
from importlib import resources
from typing import Any

import numpy as np

from fraudflow.lake import Lake
from fraudflow.serving.desk import live, queue, served, verdicts
from fraudflow.serving.desk.explain import Explainer
from fraudflow.serving.engine import Scorer
from fraudflow.serving.metrics import Metrics
from fraudflow.store.predictions import PredictionBatch

#: the files under ``/desk/static/`` and their media types
STATIC = {"desk.js": "text/javascript; charset=utf-8", "desk.css": "text/css; charset=utf-8"}


class Desk:
    """What the desk's routes share."""

    def __init__(self, lake: Lake, scorer: Scorer, metrics: Metrics, api_key: str | None) -> None:
        import jinja2

        self.lake = lake
        self.scorer = scorer
        self.metrics = metrics
        self.api_key = api_key
        self.explainer = Explainer(lake, scorer)
        self.live = live.LiveState()
        self.names = list(scorer.feature_set.names)
        self._env = jinja2.Environment(
            loader=jinja2.PackageLoader("fraudflow.serving.desk", "templates"),
            autoescape=True,  # every value is escaped, in HTML and in the inline SVG alike
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._env.filters["money"] = lambda v: "—" if v is None or v != v else f"{v:,.2f}"
        self._env.filters["score"] = lambda v: f"{v:.3f}"
        self._env.filters["clock"] = lambda t: t.strftime("%H:%M:%S")
        self._static = {name: resources.files(__package__).joinpath("static", name).read_bytes() for name in STATIC}

    def pending(self) -> list[PredictionBatch]:
        log = self.scorer.served_log
        return log.pending() if log is not None else []

    def render(self, template: str, **context: Any) -> str:
        return self._env.get_template(template).render(**context)

    def static(self, name: str) -> tuple[bytes, str] | None:
        return (self._static[name], STATIC[name]) if name in STATIC else None

    def queue_context(self, day: dt.date | None, min_score: float) -> dict[str, Any]:
        """The queue of ``day`` (the newest answered day when None) with the days to choose from."""
        pending = self.pending()
        days = served.logged_days(self.lake, pending)
        day = day or (days[-1] if days else None)
        shown = None
        if day is not None:
            rows = served.read(self.lake, pending, day, day)
            labels = verdicts.in_force(self.lake, rows.tx_id[rows.alert].tolist())
            shown = queue.build(rows, day, labels, min_score)
        return {"queue": shown, "days": days[::-1], "day": day, "min_score": min_score, "np": np}
