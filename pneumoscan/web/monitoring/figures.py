"""The site's figures for the model being served: one source for the dashboard and /api/v1/metrics."""

from __future__ import annotations

from pathlib import Path

from flask import current_app

from pneumoscan.web import db
from pneumoscan.web.modelcache import predictor
from pneumoscan.web.monitoring.site_metrics import site_metrics


def current_metrics() -> dict:
    """The figures for the served model, from the request's database session."""
    return site_metrics(db.session(), predictor().card, Path(current_app.config["MODEL_DIR"]))
