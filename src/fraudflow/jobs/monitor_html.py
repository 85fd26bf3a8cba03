"""The monitoring report as one self-contained HTML page: inline SVG charts drawn here, no script, no download.

Each chart is an ``<svg data-chart="...">``; each of its series a ``<polyline data-series="...">``
whose ``data-values`` attribute holds the plotted values as JSON (null: no value that day), so a
reader (or a test) gets the numbers back from the page. Days on which the serving model changed
are marked on every chart (``<line data-marker="model">``); the drift chart is a grid of features
by days (``<rect data-feature data-day data-psi data-ks data-flagged>``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from html import escape

from fraudflow.jobs.monitor import CP, MonitorReport

WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 760, 200, 56, 16, 24, 28
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e")
CELL = 14

Series = dict[str, list[float | None]]


def render(report: MonitorReport) -> str:
    """The page of ``report``."""
    days = [d.day for d in report.days]
    changes = model_changes(report)
    live_days = [d.live for d in report.days]
    charts = [
        chart("volume", "Transactions a day", days, {"transactions": [d.transactions for d in report.days]}, changes),
        chart(
            "alerts",
            "Alerted cards a day against the budget",
            days,
            {"alerted_cards": [d.alerted_cards for d in report.days], "budget": [d.budget for d in report.days]},
            changes,
        ),
        chart(
            "live",
            f"Live CP@100 on mature days ({escape(report.labels)})",
            days,
            {
                CP: [None if v is None else v.card_precision for v in live_days],
                f"{CP}_bound": [None if v is None else v.card_precision_bound for v in live_days],
            },
            changes,
        ),
        chart(
            "scores",
            "Score quantiles",
            days,
            {q: [d.scores.quantiles[q] for d in report.days] for q in report.days[0].scores.quantiles},
            changes,
        ),
        drift_grid(report),
    ]
    return PAGE.format(
        title=escape(f"fraudflow monitor: {report.first_day} .. {report.last_day}"),
        summary=summary(report),
        charts="\n".join(charts),
        decisions=decisions_table(report),
    )


def model_changes(report: MonitorReport) -> list[tuple[int, str]]:
    """(day index, model id) of each day whose serving model differs from the day before's."""
    return [
        (i, day.model_id) for i, day in enumerate(report.days) if i > 0 and day.model_id != report.days[i - 1].model_id
    ]


def chart(name: str, title: str, days: Sequence[str], series: Series, changes: list[tuple[int, str]]) -> str:
    """A line chart of ``series`` over ``days``, with the model changes marked."""
    values = [v for vs in series.values() for v in vs if v is not None and math.isfinite(v)]
    top = max(values, default=1.0) * 1.1 or 1.0
    n = len(days)

    def x(i: int) -> float:
        return LEFT + (WIDTH - LEFT - RIGHT) * (i / (n - 1) if n > 1 else 0.5)

    def y(v: float) -> float:
        return TOP + (HEIGHT - TOP - BOTTOM) * (1 - v / top)

    parts = [f'<svg data-chart="{name}" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}">']
    parts.append(f'<text x="{LEFT}" y="14" class="title">{escape(title)}</text>')
    parts.append(f'<line x1="{LEFT}" y1="{y(0):.1f}" x2="{WIDTH - RIGHT}" y2="{y(0):.1f}" class="axis"/>')
    for tick in (0.0, top / 2, top / 1.1):
        parts.append(f'<text x="{LEFT - 4}" y="{y(tick) + 4:.1f}" class="tick" text-anchor="end">{tick:.3g}</text>')
    for i in sorted({0, n - 1}):
        parts.append(f'<text x="{x(i):.1f}" y="{HEIGHT - 8}" class="tick" text-anchor="middle">{days[i]}</text>')
    for i, model_id in changes:
        parts.append(
            f'<line data-marker="model" data-day="{days[i]}" data-model="{escape(model_id)}" x1="{x(i):.1f}" '
            f'y1="{TOP}" x2="{x(i):.1f}" y2="{y(0):.1f}" class="marker"><title>{escape(model_id)}</title></line>'
        )
    for k, (label, vs) in enumerate(series.items()):
        color = COLORS[k % len(COLORS)]
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(vs) if v is not None and math.isfinite(v))
        data = escape(json.dumps([v if v is None or math.isfinite(v) else None for v in vs]))
        parts.append(
            f'<polyline data-series="{escape(label)}" data-values="{data}" points="{points}" '
            f'fill="none" stroke="{color}" stroke-width="1.5"/>'
        )
        parts.append(
            f'<text x="{WIDTH - RIGHT}" y="{14 + 12 * k}" fill="{color}" text-anchor="end">{escape(label)}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts)


def drift_grid(report: MonitorReport) -> str:
    """Features by days, each cell shaded by its PSI and outlined when flagged."""
    features = list(dict.fromkeys(f.feature for d in report.days if d.drift for f in d.drift.features))
    width = 300 + CELL * len(report.days)
    height = TOP + CELL * len(features) + 8
    parts = [f'<svg data-chart="drift" width="{width}" height="{height}" viewBox="0 0 {width} {height}">']
    parts.append(
        f'<text x="0" y="14" class="title">Drift against the training window (PSI; outlined: over a threshold; '
        f"window {report.thresholds.drift_days} days)</text>"
    )
    for row, feature in enumerate(features):
        y = TOP + CELL * row
        parts.append(f'<text x="294" y="{y + 11}" class="tick" text-anchor="end">{escape(feature)}</text>')
        for col, day in enumerate(report.days):
            found = [f for f in day.drift.features if f.feature == feature] if day.drift else []
            if not found or day.drift is None:
                continue
            f = found[0]
            shade = 0.0 if not math.isfinite(f.psi) else min(f.psi / max(2 * report.thresholds.psi, 1e-9), 1.0)
            color = f"rgb(255,{round(255 * (1 - shade))},{round(255 * (1 - shade))})"
            outline = ' stroke="#000" stroke-width="2"' if f.flagged else ""
            psi, ks = (json.dumps(v if math.isfinite(v) else None) for v in (f.psi, f.ks))
            parts.append(
                f'<rect data-feature="{escape(feature)}" data-day="{day.day}" data-psi="{psi}" data-ks="{ks}" '
                f'data-flagged="{str(f.flagged).lower()}" data-complete="{str(day.drift.complete).lower()}" '
                f'x="{300 + CELL * col}" y="{y}" width="{CELL - 1}" height="{CELL - 1}" fill="{color}"{outline}>'
                f"<title>{escape(feature)} {day.day}: PSI {f.psi:.3f}, KS {f.ks:.3f}</title></rect>"
            )
    parts.append("</svg>")
    return "\n".join(parts)


def summary(report: MonitorReport) -> str:
    status = "ok: no threshold crossed" if report.ok else f"{len(report.flags)} threshold(s) crossed"
    items = "".join(f'<li data-flag="{escape(f.check)}">{escape(f.message)}</li>' for f in report.flags)
    live = report.live
    figures = (
        "no mature day yet"
        if live is None
        else f"AUC {live.auc_roc:.3f}, AP {live.average_precision:.3f}, CP@100 {live.card_precision:.3f} "
        f"(bound {live.card_precision_bound:.3f}) on {live.first} .. {live.last}"
    )
    notes = "".join(f"<li>{escape(n)}</li>" for n in report.notes)
    return (
        f'<p class="status" data-ok="{str(report.ok).lower()}">{escape(status)}</p><ul>{items}</ul>'
        f"<p>Production model: {escape(report.production or '(none promoted)')}. Live metrics: {escape(figures)}; "
        f'labels: {escape(report.labels)}.</p><ul class="notes">{notes}</ul>'
    )


def decisions_table(report: MonitorReport) -> str:
    rows = "".join(
        "<tr>"
        + "".join(
            f"<td>{escape(str(d.get(k) or ''))}</td>" for k in ("time", "action", "alias", "from_model", "to_model")
        )
        + f"<td>{'yes' if d.get('changed') else 'no'}</td><td>{escape(str(d.get('reason', '')))}</td></tr>"
        for d in report.decisions
    )
    head = "".join(f"<th>{h}</th>" for h in ("time (UTC)", "action", "alias", "from", "to", "changed", "reason"))
    return (
        f'<table data-table="decisions"><tr>{head}</tr>{rows}</table>' if rows else "<p>No registry decision yet.</p>"
    )


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
svg {{ display: block; margin: 1.5em 0; font-size: 11px; }}
.title {{ font-weight: bold; font-size: 12px; }} .axis {{ stroke: #999; }} .tick {{ fill: #555; }}
.marker {{ stroke: #888; stroke-dasharray: 4 3; }}
.status[data-ok="false"] {{ color: #b00; font-weight: bold; }} .status[data-ok="true"] {{ color: #070; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 2px 6px; font-size: 12px; }}
</style></head>
<body><h1>{title}</h1>
{summary}
{charts}
<h2>Registry decisions (promotions; dashed lines on the charts: days the serving model changed)</h2>
{decisions}
</body></html>
"""
