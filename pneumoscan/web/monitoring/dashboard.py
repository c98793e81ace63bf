"""The dashboard: how the model does at this site, drawn from the same figures /api/v1/metrics returns."""

from __future__ import annotations

from flask import Blueprint, render_template

from pneumoscan.web.monitoring import charts
from pneumoscan.web.monitoring.figures import current_metrics

bp = Blueprint("dashboard", __name__)


def chart_geometry(figures: dict) -> dict:
    """The SVG charts' geometry, from the figures only."""
    per_day = figures["uploads"]["per_day"]
    histogram = figures["uploads"]["probability_histogram"]
    weeks = figures["drift"]["per_week"]
    return {
        "uploads": charts.bar_chart(
            [day["day"][5:] for day in per_day], [day["count"] for day in per_day], label_every=5
        ),
        "histogram": charts.bar_chart(
            [f"{b['low']:.1f}" for b in histogram], [b["count"] for b in histogram]
        ),
        "refusals": charts.horizontal_bars(
            [r["reason"] for r in figures["refusals"]["by_reason"]],
            [r["count"] for r in figures["refusals"]["by_reason"]],
        ),
        "roc": charts.roc_chart(figures["reviewed"]["roc"]),
        "drift": charts.bar_chart(
            [week["week"][5:] for week in weeks],
            [week["feature_distance"] or 0.0 for week in weeks],
            flagged=[bool(week["flagged"]) for week in weeks],
        ),
    }


@bp.get("/dashboard")
def dashboard():
    figures = current_metrics()
    return render_template("dashboard.html", m=figures, charts=chart_geometry(figures))
