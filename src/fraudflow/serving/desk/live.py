"""The live view: throughput and latency, alerts per day against the budget, scores, live AP and CP@100
on mature days, the model in production and its promotions, the monitor's flags.

Throughput and latency come from the service's own metrics (``/metrics``' text, so several workers'
counts are summed as Prometheus sees them), sampled each time the view is asked for: the rate is the
difference between samples. Live AP and CP@100 follow the monitor's rule (``jobs.monitor``, which the
service cannot import): days at least ``DELAY_DAYS`` before the newest answered day, labels as known
now (unlabelled: genuine), else, in a lake without a labels table, the simulator's ``TX_FRAUD``.
They are recomputed at most every ``SLOW_SECONDS``.

Drift flags are the monitor's: the service cannot compute them (the monitor reads the offline store
and lives above the service), so the view shows the flags of the monitor report stored in the lake at
``monitor/report.json`` (the latest report ``fraudflow monitor`` and ``operate`` keep in the lake), when there is one.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fraudflow import schema
from fraudflow.lake import Lake
from fraudflow.serving.desk import charts
from fraudflow.serving.desk.served import Served, day_number, day_of, read
from fraudflow.serving.engine import Scorer
from fraudflow.serving.metrics import Metrics
from fraudflow.store import labels as label_table
from fraudflow.store.predictions import PredictionBatch
from fraudflow.training import budget, metrics, registry
from fraudflow.training.protocol import DELAY_DAYS, K

#: the route whose latency the view shows
SCORE_ROUTE = "/v1/score"
#: the days of alerts the view charts, and the mature days it judges
ALERT_DAYS = 14
MATURE_DAYS = 28
#: the samples of the metrics kept (one a poll), and the slow figures' lifetime
SAMPLES = 60
SLOW_SECONDS = 30.0
#: where a monitor report stored in the lake is read from
MONITOR_REPORT = ("monitor", "report.json")


@dataclass(frozen=True)
class Sample:
    at: float  # monotonic seconds
    scored: float
    alerts: float
    labels: float
    buckets: dict[float, float]  # the score route's latency histogram: upper bound -> cumulative count


@dataclass(frozen=True)
class Traffic:
    per_second: float
    rates: list[float]
    scored: int
    alerts: int
    labels: int
    p50_ms: float | None
    p99_ms: float | None
    sparkline: str


@dataclass(frozen=True)
class Judged:
    """Live figures on the mature days."""

    days: list[str]
    average_precision: float | None
    card_precision: float | None
    per_day: charts.BarChart | None
    labels: str  # which labels: the labels table, the simulator's truth


@dataclass(frozen=True)
class View:
    traffic: Traffic
    day: dt.date | None
    alerts: charts.BarChart | None
    cards_per_day: float
    scores: charts.BarChart | None
    judged: Judged | None
    serving: str
    threshold: float
    production: str | None
    decisions: list[dict[str, Any]]
    monitor: dict[str, Any] | None  # the stored monitor report's day range and flags


@dataclass
class LiveState:
    """What the view keeps between polls: metric samples and the slow figures."""

    samples: deque[Sample] = field(default_factory=lambda: deque(maxlen=SAMPLES))
    judged: tuple[float, Judged | None] = (-math.inf, None)
    lock: threading.Lock = field(default_factory=threading.Lock)


def view(
    state: LiveState,
    metrics_: Metrics,
    lake: Lake,
    scorer: Scorer,
    pending: Sequence[PredictionBatch],
    day: dt.date | None,
    newest: dt.date | None,
) -> View:
    """The live view of day ``day`` (the newest answered day when None)."""
    day = day or newest
    alerts = scores = None
    cards_per_day = _cards_per_day(scorer)
    if newest is not None and day is not None:
        first = min(day, newest - dt.timedelta(days=ALERT_DAYS - 1))
        recent = read(lake, pending, first, max(day, newest))
        alerts = _alerts_chart(recent, newest, cards_per_day)
        scores = _scores_chart(recent, day)
    return View(
        traffic=_traffic(state, metrics_),
        day=day,
        alerts=alerts,
        cards_per_day=cards_per_day,
        scores=scores,
        judged=_judged(state, lake, pending, newest),
        serving=scorer.model_id,
        threshold=scorer.threshold,
        production=registry.production(lake),
        decisions=[d.to_json() for d in registry.decisions(lake)[-6:]][::-1],
        monitor=_monitor(lake),
    )


def _cards_per_day(scorer: Scorer) -> float:
    stored = budget.stored(scorer.model.metadata) if scorer.model is not None else None
    return stored.cards_per_day if stored is not None else float(budget.CARDS_PER_DAY)


def _traffic(state: LiveState, metrics_: Metrics) -> Traffic:
    sample = _sample(metrics_)
    with state.lock:
        if not state.samples or sample.at - state.samples[-1].at >= 1.0:
            state.samples.append(sample)
        samples = list(state.samples)
    rates = [max(b.scored - a.scored, 0.0) / (b.at - a.at) for a, b in itertools.pairwise(samples)]
    since = samples[0] if len(samples) > 1 else None
    buckets = {le: n - (since.buckets.get(le, 0.0) if since else 0.0) for le, n in sample.buckets.items()}
    if not buckets or max(buckets.values()) <= 0:
        buckets = sample.buckets  # no request since the first sample: the whole life's
    return Traffic(
        per_second=rates[-1] if rates else 0.0,
        rates=rates,
        scored=int(sample.scored),
        alerts=int(sample.alerts),
        labels=int(sample.labels),
        p50_ms=_quantile_ms(buckets, 0.5),
        p99_ms=_quantile_ms(buckets, 0.99),
        sparkline=charts.sparkline(rates),
    )


def _sample(metrics_: Metrics) -> Sample:
    from prometheus_client.parser import text_string_to_metric_families

    totals = {"fraudflow_transactions_scored": 0.0, "fraudflow_alerts": 0.0, "fraudflow_labels": 0.0}
    buckets: dict[float, float] = {}
    for family in text_string_to_metric_families(metrics_.render().decode()):
        for s in family.samples:
            if family.name in totals and s.name.endswith("_total"):
                totals[family.name] += s.value
            elif s.name == "fraudflow_request_seconds_bucket" and s.labels.get("route") == SCORE_ROUTE:
                le = float(s.labels["le"])
                buckets[le] = buckets.get(le, 0.0) + s.value
    return Sample(
        time.monotonic(),
        totals["fraudflow_transactions_scored"],
        totals["fraudflow_alerts"],
        totals["fraudflow_labels"],
        buckets,
    )


def _quantile_ms(buckets: dict[float, float], q: float) -> float | None:
    """The ``q`` quantile of a cumulative histogram, interpolated within its bucket (Prometheus' rule)."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    rank = q * buckets[bounds[-1]]
    lower, below = 0.0, 0.0
    for le in bounds:
        if buckets[le] >= rank:
            if math.isinf(le):
                return lower * 1000
            inside = buckets[le] - below
            return 1000 * (lower + (le - lower) * ((rank - below) / inside if inside else 1.0))
        lower, below = le, buckets[le]
    return None


def _alerts_chart(recent: Served, newest: dt.date, cards_per_day: float) -> charts.BarChart:
    days = [newest - dt.timedelta(days=i) for i in range(ALERT_DAYS - 1, -1, -1)]
    numbers = recent.day
    counts = []
    for d in days:
        rows = (numbers == day_number(d)) & recent.alert
        counts.append(float(len(np.unique(recent.customer[rows]))))
    return charts.bars(
        counts,
        [d.strftime("%d") for d in days],
        reference=cards_per_day,
        reference_label=f"budget {cards_per_day:g} cards a day",
        fmt="{:.0f}",
    )


def _scores_chart(recent: Served, day: dt.date) -> charts.BarChart:
    scores = recent.score[recent.day == day_number(day)]
    # tenths of [0, 1], the last one 1.0 too
    counts = np.bincount(np.minimum((scores * 10).astype(np.int64), 9), minlength=10) if len(scores) else np.zeros(10)
    return charts.bars([float(c) for c in counts], [f".{i}" if i else "0" for i in range(10)], log=True, fmt="{:.0f}")


def _judged(state: LiveState, lake: Lake, pending: Sequence[PredictionBatch], newest: dt.date | None) -> Judged | None:
    with state.lock:
        at, kept = state.judged
    if time.monotonic() - at < SLOW_SECONDS:
        return kept
    judged = judge_mature(lake, pending, newest)
    with state.lock:
        state.judged = (time.monotonic(), judged)
    return judged


def judge_mature(lake: Lake, pending: Sequence[PredictionBatch], newest: dt.date | None) -> Judged | None:
    """AP and CP@100 of the answers on the mature days (the last ``MATURE_DAYS`` of them); None when none is."""
    if newest is None:
        return None
    last = newest - dt.timedelta(days=DELAY_DAYS)
    rows = read(lake, pending, last - dt.timedelta(days=MATURE_DAYS - 1), last)
    if not len(rows):
        return None
    fraud, source = _labels(lake, rows)
    if fraud is None:
        return Judged([], None, None, None, source)
    judged = metrics.performance(rows.day, rows.customer, fraud, rows.score, K)
    days = [day_of(d) for d in np.unique(rows.day).tolist()]
    chart = charts.bars(judged.card_precision_per_day, [d.strftime("%d") for d in days], fmt="{:.2f}")
    ap = judged.average_precision
    return Judged([d.isoformat() for d in days], None if math.isnan(ap) else ap, judged.card_precision, chart, source)


def _labels(lake: Lake, rows: Served) -> tuple[np.ndarray | None, str]:
    """The rows' labels as known now (unlabelled: genuine), else the simulator's truth; which they are."""
    if label_table.exists(lake):
        known = label_table.read(lake)
        return _lookup(rows.tx_id, known[schema.TRANSACTION_ID].to_numpy(), known[schema.TX_FRAUD].to_numpy()), (
            "the labels table (unlabelled: genuine)"
        )
    days = {day_of(d) for d in np.unique(rows.day).tolist()}
    if not days <= set(lake.partitions("transactions")):
        return None, "no labels yet"
    truth = lake.read_partitions("transactions", sorted(days), columns=[schema.TRANSACTION_ID, schema.TX_FRAUD])
    return _lookup(rows.tx_id, truth[schema.TRANSACTION_ID].to_numpy(), truth[schema.TX_FRAUD].to_numpy()), (
        "the simulator's TX_FRAUD (no labels table)"
    )


def _lookup(ids: np.ndarray, known: np.ndarray, values: np.ndarray) -> np.ndarray:
    out = np.zeros(len(ids), dtype=np.int64)
    if len(known):
        order = np.argsort(known)
        at = np.clip(np.searchsorted(known[order], ids), 0, len(known) - 1)
        hit = known[order][at] == ids
        out[hit] = values[order][at][hit]
    return out


def _monitor(lake: Lake) -> dict[str, Any] | None:
    if not lake.exists(*MONITOR_REPORT):
        return None
    try:
        report = lake.read_json(lake.path(*MONITOR_REPORT))
        return {
            "days": f"{report.get('first_day', '?')} .. {report.get('last_day', '?')}",
            "flags": [str(f.get("message", f)) for f in report.get("flags", [])],
        }
    except (ValueError, OSError, AttributeError) as exc:
        return {"days": "unreadable", "flags": [f"{'/'.join(MONITOR_REPORT)}: {exc}"]}
