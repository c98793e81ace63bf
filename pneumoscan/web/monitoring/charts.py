"""Geometry of the dashboard's charts, drawn as inline SVG by the _charts.html template.

Drawn on the server so the page needs no JavaScript and the CSP stays strict: the SVG uses
presentation attributes and classes from style.css, never a style attribute.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 12, 48


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    value: float
    flagged: bool = False


@dataclass(frozen=True)
class Tick:
    position: float
    text: str


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten at or above `value` (1 for nothing)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return next(step * power for step in (1, 2, 5, 10) if step * power >= value)


def _number(value: float) -> str:
    return f"{value:g}"


def bar_chart(
    labels: Sequence[str],
    values: Sequence[float],
    flagged: Sequence[bool] | None = None,
    label_every: int = 1,
    top: float | None = None,
) -> dict:
    """Vertical bars with a y axis from 0 to a round top and every `label_every`-th x label."""
    top = top or nice_ceiling(max(values, default=0))
    plot_width, plot_height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_width / max(len(values), 1)
    flags = flagged or [False] * len(values)
    bars = [
        Bar(
            x=LEFT + i * step + step * 0.1,
            y=TOP + plot_height * (1 - value / top),
            width=step * 0.8,
            height=plot_height * value / top,
            label=label,
            value=value,
            flagged=flag,
        )
        for i, (label, value, flag) in enumerate(zip(labels, values, flags, strict=True))
    ]
    x_ticks = [Tick(bar.x + bar.width / 2, bar.label) for i, bar in enumerate(bars) if i % label_every == 0]
    y_ticks = [Tick(TOP + plot_height * (1 - f), _number(top * f)) for f in (0, 0.5, 1)]
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "left": LEFT,
        "top": TOP,
        "bottom": HEIGHT - BOTTOM,
        "right": WIDTH - RIGHT,
        "bars": bars,
        "x_ticks": x_ticks,
        "y_ticks": y_ticks,
    }


def horizontal_bars(labels: Sequence[str], values: Sequence[float]) -> dict:
    """One bar per row, its label above it: for long labels such as refusal reasons."""
    row, bar_height = 40, 16
    top = nice_ceiling(max(values, default=0))
    plot_width = WIDTH - LEFT - RIGHT
    bars = [
        Bar(
            x=LEFT,
            y=TOP + i * row + 18,
            width=plot_width * value / top,
            height=bar_height,
            label=label,
            value=value,
        )
        for i, (label, value) in enumerate(zip(labels, values, strict=True))
    ]
    height = TOP + len(bars) * row + BOTTOM
    ticks = [Tick(LEFT + plot_width * f, _number(top * f)) for f in (0, 0.5, 1)]
    return {
        "width": WIDTH,
        "height": height,
        "left": LEFT,
        "right": WIDTH - RIGHT,
        "bottom": height - BOTTOM + 8,
        "bars": bars,
        "x_ticks": ticks,
    }


def roc_chart(points: Sequence[dict]) -> dict:
    """The ROC curve (false-positive rate across, true-positive rate up) in a square plot."""
    size, margin = 320, 48
    span = size - 2 * margin + 16

    def place(fpr: float, tpr: float) -> str:
        return f"{margin + fpr * span:.1f},{margin - 16 + (1 - tpr) * span:.1f}"

    return {
        "width": size,
        "height": size,
        "left": margin,
        "top": margin - 16,
        "span": span,
        "polyline": " ".join(place(p["fpr"], p["tpr"]) for p in points),
        "ticks": [Tick(f, _number(f)) for f in (0, 0.5, 1)],
    }
