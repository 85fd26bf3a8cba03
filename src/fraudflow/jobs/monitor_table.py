"""The monitoring report on the terminal: a table of the days, then the live metrics and the flags."""

from __future__ import annotations

import math

from rich.table import Table

from fraudflow.jobs.monitor import Day, MonitorReport


def table(report: MonitorReport) -> Table:
    """One row a day: traffic, alerts against the budget, scores, drift, data quality, live metrics."""
    t = Table(title=f"prediction log of {report.lake}, {report.first_day} .. {report.last_day}")
    columns = ("day", "transactions", "alerted cards / budget", "alerts", "score p50 / p99", "drifted inputs")
    for name in (*columns, "quality issues", "live AUC / AP / CP@100", "model"):
        t.add_column(name, justify="left" if name in ("day", "model") else "right", no_wrap=True)
    for day in report.days:
        t.add_row(
            day.day,
            f"{day.transactions:,}",
            f"{day.alerted_cards:,} / {day.budget:g}",
            f"{day.alerts:,}",
            f"{day.scores.quantiles['p50']:.3f} / {day.scores.quantiles['p99']:.3f}",
            _drifted(day),
            f"{day.quality.issues:,}",
            "-" if day.live is None else " / ".join(_figure(v) for v in _live(day)),
            day.model_id,
        )
    return t


def lines(report: MonitorReport) -> list[str]:
    """What follows the table: the labels used, the live metrics, the lag, the notes, then the flags."""
    live = report.live
    out = [f"labels: {report.labels}"]
    if live is not None:
        out.append(
            f"live on {live.first} .. {live.last} ({live.transactions:,} transactions, {live.frauds:,} frauds): "
            f"AUC {_figure(live.auc_roc)}, AP {_figure(live.average_precision)}, "
            f"CP@100 {_figure(live.card_precision)} (bound {_figure(live.card_precision_bound)})"
        )
    lag = report.label_lag
    if lag is not None and lag.frauds:
        out.append(
            f"fraud labels arrived {lag.p50:.1f} days after their transaction"
            f" (median; p90 {lag.p90:.1f}, max {lag.max:.1f})"
        )
    out.append(f"production model: {report.production or '(none promoted)'}")
    out.extend(
        f"served by {m.model_id}: {m.first_day} .. {m.last_day}, {m.transactions:,} transactions" for m in report.models
    )
    out.extend(f"note: {n}" for n in report.notes)
    if report.ok:
        out.append("ok: no threshold crossed")
    return out


def _drifted(day: Day) -> str:
    if day.drift is None:
        return "-"
    if not day.drift.complete:
        return "(window incomplete)"
    return f"{sum(f.flagged for f in day.drift.features)} of {len(day.drift.features)}"


def _live(day: Day) -> tuple[float, float, float]:
    assert day.live is not None
    return day.live.auc_roc, day.live.average_precision, day.live.card_precision


def _figure(value: float) -> str:
    return "-" if not math.isfinite(value) else f"{value:.3f}"
