"""Service metrics through ``prometheus_client``: requests, latency, scores, alerts, labels.

One process (``fraudflow serve``, the app in tests): each ``Metrics`` has a registry of its own.
Several worker processes (``fraudflow serve --workers N``): the parent gives them one fresh folder
in ``PROMETHEUS_MULTIPROC_DIR`` before they start; every worker's counts go to its own files there
and ``/metrics``, whichever worker answers it, sums them all (``MultiProcessCollector``).
``prometheus_client`` picks its value storage when first imported, so the variable must be set
before then: it is imported here lazily, never by ``import fraudflow`` or the CLI.
"""

from __future__ import annotations

import functools
import operator
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry, Counter, Histogram

    from fraudflow.serving.engine import Answer

#: Where the workers of one service keep their counts (prometheus_client's own variable).
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: The ``/metrics`` content type: Prometheus' text format 0.0.4, which every Prometheus reads.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: The route label of a request matching no route: user-controlled paths never become labels.
OTHER_ROUTE = "other"

LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)
SCORE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99)


class Metrics:
    """The service's metrics; ``render()`` is the ``/metrics`` body."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics

        disable_created_metrics()  # no *_created series: the totals are what is watched
        self.multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        # in multiprocess mode the values live in the shared folder; this registry only keeps the
        # metric objects of this app (several apps in one process in tests do not collide)
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "fraudflow_requests", "HTTP requests by route template and status", ("route", "status"), registry=r
        )
        self.latency = Histogram(
            "fraudflow_request_seconds",
            "Request latency by route template",
            ("route",),
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.scored = Counter("fraudflow_transactions_scored", "Transactions scored (duplicates left out)", registry=r)
        self.duplicates = Counter("fraudflow_duplicates", "Transactions sent again, answered as before", registry=r)
        self.alerts = Counter("fraudflow_alerts", "Transactions scored at or over the threshold", registry=r)
        self.labels = Counter("fraudflow_labels", "Fraud labels accepted", registry=r)
        self.scores = Histogram(
            "fraudflow_score", "Scores of the transactions scored", buckets=SCORE_BUCKETS, registry=r
        )
        # each (route template, status)'s series: ``labels`` looks them up under a lock (5 µs a request)
        self._by_route: dict[tuple[str, int], tuple[Counter, Histogram]] = {}

    def request(self, route: str, status: int, seconds: float) -> None:
        counted = self._by_route.get((route, status))
        if counted is None:  # a route template and status seen first: their series, kept (a few in all)
            counted = self._by_route[route, status] = (
                self.requests.labels(route, str(status)),
                self.latency.labels(route),
            )
        requests, latency = counted
        requests.inc()
        latency.observe(seconds)

    def answered(self, answers: Sequence[Answer]) -> None:
        """Count answers: a duplicate as such, every other one as scored (and alert), its score observed."""
        from fraudflow.serving.engine import Answers

        if isinstance(answers, Answers):  # a batch's columns, counted at once
            again = np.array(answers.duplicate, dtype=bool)
            scores, alerts = answers.scores[~again].tolist(), int(np.count_nonzero(answers.alert[~again]))
        else:
            scored = [a for a in answers if not a.duplicate]
            scores, alerts = [a.score for a in scored], sum(a.alert for a in scored)
        if len(scores) < len(answers):
            self.duplicates.inc(len(answers) - len(scores))
        if scores:
            self.scored.inc(len(scores))
            if alerts:
                self.alerts.inc(alerts)
            observe(self.scores, scores)

    def label(self, n: int) -> None:
        self.labels.inc(n)

    def render(self) -> bytes:
        from prometheus_client import generate_latest

        registry: CollectorRegistry = self.registry
        if self.multiprocess:
            from prometheus_client import CollectorRegistry
            from prometheus_client.multiprocess import MultiProcessCollector

            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # every worker's files in the shared folder, summed
        return generate_latest(registry)


#: Below this many values ``observe`` calls the histogram's own ``observe`` for each.
_FEW = 16


def observe(histogram: Histogram, values: list[float]) -> None:
    """``histogram.observe(v)`` for each of ``values``, in order, with the same result: each bucket
    incremented once by its count, the sum the same additions in the same order (each a Python
    float's, so the same bits). The service's event loop is the only thread that observes."""
    if len(values) < _FEW:
        for value in values:
            histogram.observe(value)
        return
    bounds = histogram._upper_bounds  # observe: the first bucket whose bound is >= the value
    counts = np.bincount(np.searchsorted(bounds, values, side="left"), minlength=len(bounds))
    for bucket, count in zip(histogram._buckets, counts.tolist(), strict=False):  # a nan: in no bucket
        if count:
            bucket.inc(count)
    histogram._sum.set(functools.reduce(operator.add, values, histogram._sum.get()))
