"""Clinicians' reviews of results. Reviews are versioned: a change adds a version, and the
highest version of a result is the one that counts (history filters, metrics, site threshold)."""

from __future__ import annotations

from sqlalchemy import and_, func, select
from sqlalchemy.orm import aliased
from sqlalchemy.orm.util import AliasedClass

from pneumoscan.web.models import Review


def latest_review() -> AliasedClass:
    """Review, narrowed to each result's latest version: outer-join it on `prediction_id`."""
    newest = (
        select(Review.prediction_id, func.max(Review.version).label("version"))
        .group_by(Review.prediction_id)
        .subquery()
    )
    latest = (
        select(Review)
        .join(
            newest, and_(Review.prediction_id == newest.c.prediction_id, Review.version == newest.c.version)
        )
        .subquery()
    )
    return aliased(Review, latest)
