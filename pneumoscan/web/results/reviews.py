"""Clinicians' reviews of results. Reviews are versioned: a change adds a version, and the
highest version of a result is the one that counts (history filters, metrics, site threshold)."""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased
from sqlalchemy.orm.util import AliasedClass

from pneumoscan.errors import Refused
from pneumoscan.model_card import POSITIVE_CLASS, SUBTYPE_NAMES
from pneumoscan.web import audit
from pneumoscan.web.models import FINDINGS, Result, Review, User

MAX_NOTE_LENGTH = 1000
UNSURE = "UNSURE"
# A result's review state, against its estimate: UNSURE counts as reviewed but neither agrees nor disagrees.
REVIEW_STATES = ("agreed", "disagreed", "unsure", "unreviewed")


class ReviewRefused(Refused):
    """A review that cannot be recorded; the message says why, for the form or the API."""


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


def latest_of(session: Session, prediction_id: str) -> Review | None:
    """The review that counts for one result, or None while it has none."""
    latest = latest_review()
    return session.scalar(select(latest).where(latest.prediction_id == prediction_id))


def versions(session: Session, prediction_id: str) -> list[Review]:
    """Every review of a result, newest version first (who, when, what)."""
    return list(
        session.scalars(
            select(Review).where(Review.prediction_id == prediction_id).order_by(Review.version.desc())
        )
    )


def check_subtype_finding(finding: str, subtype_finding: object) -> str | None:
    """The confirmed subtype as stored (None when not assessed); only a pneumonia has one."""
    if subtype_finding is None or subtype_finding == "":
        return None
    if subtype_finding not in SUBTYPE_NAMES:
        raise ReviewRefused(f"'subtype_finding' must be one of {', '.join(SUBTYPE_NAMES)}, or empty")
    if finding != POSITIVE_CLASS:
        raise ReviewRefused(f"a subtype is confirmed only with the finding {POSITIVE_CLASS}, not {finding}")
    return subtype_finding


def check_review(finding: object, note: object) -> tuple[str, str | None]:
    """The finding and note (stripped, None when empty) as stored; ReviewRefused when not allowed."""
    if finding not in FINDINGS:
        raise ReviewRefused(f"'finding' must be one of {', '.join(FINDINGS)}")
    if note is not None and not isinstance(note, str):
        raise ReviewRefused("'note' must be text")
    note = (note or "").strip()
    if len(note) > MAX_NOTE_LENGTH:
        raise ReviewRefused(f"the note is limited to {MAX_NOTE_LENGTH} characters (it has {len(note)})")
    return finding, note or None


def add_review(
    session: Session,
    prediction: Result,
    finding: object,
    note: object,
    reviewer: User,
    subtype_finding: object = None,
) -> Review:
    """Adds a new version of the result's review, with its audit event, and flushes; the caller commits.
    `subtype_finding` (BACTERIAL or VIRAL, optional) goes with a PNEUMONIA finding only.

    Earlier versions stay. Two reviewers saving at the same instant cannot both get a version
    number: the unique (result, version) constraint refuses the second at the flush, which rolls
    the session back and is told to retry.
    """
    finding, note = check_review(finding, note)
    subtype_finding = check_subtype_finding(finding, subtype_finding)
    current = session.scalar(select(func.max(Review.version)).where(Review.prediction_id == prediction.id))
    review = Review(
        prediction_id=prediction.id,
        version=(current or 0) + 1,
        finding=finding,
        note=note,
        reviewer_id=reviewer.id,
        reviewer=reviewer,
        subtype_finding=subtype_finding,
    )
    session.add(review)
    confirmed = f"{finding} {subtype_finding}" if subtype_finding else finding
    audit.add(session, audit.REVIEW, target_id=prediction.id, detail=f"version {review.version}: {confirmed}")
    try:
        session.flush()
    except IntegrityError as error:
        session.rollback()
        message = "another review of this result was saved at the same moment; try again"
        raise ReviewRefused(message, 409) from error
    return review


def review_state(label: str, review: Review | None) -> str:
    """One of REVIEW_STATES for a result with this estimate and latest review."""
    if review is None:
        return "unreviewed"
    if review.finding == UNSURE:
        return "unsure"
    return "agreed" if review.finding == label else "disagreed"


def state_condition(state: str, latest: AliasedClass) -> ColumnElement[bool]:
    """review_state(...) == state, as SQL over Result outer-joined with `latest`."""
    conditions = {
        "unreviewed": latest.id.is_(None),
        "unsure": latest.finding == UNSURE,
        "agreed": latest.finding == Result.label,
        "disagreed": and_(latest.finding != Result.label, latest.finding != UNSURE),
    }
    return conditions[state]
