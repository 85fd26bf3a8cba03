"""Charts as geometry for inline SVG (the templates draw them): bars with an optional reference line, a sparkline."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

WIDTH = 360
HEIGHT = 120
#: room under the bars for their labels
AXIS = 16


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    value: str
    over: bool  # above the reference line


@dataclass(frozen=True)
class BarChart:
    width: int
    height: int
    bars: list[Bar]
    reference: float | None  # the y of the reference line
    reference_label: str
    top: str  # the value at the chart's top


def bars(
    values: Sequence[float],
    labels: Sequence[str],
    *,
    reference: float | None = None,
    reference_label: str = "",
    log: bool = False,
    fmt: str = "{:g}",
) -> BarChart:
    """Bars of ``values`` (``log``: on a log10(1 + v) scale), a line at ``reference`` when given."""
    scale = (lambda v: math.log10(1 + max(v, 0.0))) if log else (lambda v: max(v, 0.0))
    peak = max([scale(v) for v in values] + [scale(reference) if reference is not None else 0.0, 1e-12])
    inner = HEIGHT - AXIS
    step = WIDTH / max(len(values), 1)
    drawn = []
    for i, (value, label) in enumerate(zip(values, labels, strict=True)):
        height = inner * scale(value) / peak
        over = reference is not None and value > reference
        drawn.append(Bar(i * step + 1, inner - height, max(step - 2, 1), height, label, fmt.format(value), over))
    line = None if reference is None else inner - inner * scale(reference) / peak
    top = 10**peak - 1 if log else peak
    return BarChart(WIDTH, HEIGHT, drawn, line, reference_label, fmt.format(top))


def sparkline(values: Sequence[float], width: int = WIDTH, height: int = 40) -> str:
    """The ``points`` of an SVG polyline through ``values`` (empty for fewer than two)."""
    if len(values) < 2:
        return ""
    peak = max(max(values), 1e-12)
    step = width / (len(values) - 1)
    return " ".join(f"{i * step:.1f},{height - 2 - (height - 4) * v / peak:.1f}" for i, v in enumerate(values))
