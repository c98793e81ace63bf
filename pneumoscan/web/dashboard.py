"""The dashboard: how the model does at this site, drawn from the same figures /api/v1/metrics returns."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, current_app, render_template

from pneumoscan.web import charts, db
from pneumoscan.web.modelcache import predictor
from pneumoscan.web.site_metrics import site_metrics

bp = Blueprint("dashboard", __name__)


def current_metrics() -> dict:
    """The figures for the served model, from the request's database session."""
    return site_metrics(db.session(), predictor().card, Path(current_app.config["MODEL_DIR"]))


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
