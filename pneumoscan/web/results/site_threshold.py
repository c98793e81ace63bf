"""This site's decision threshold for a model version, picked from its own reviewed cases.

The model card's threshold was picked on the external set; a site threshold is picked by the
same ROC policy (highest specificity with sensitivity >= 0.95) on the site's reviewed cases of
the served model version, once there are MIN_PER_CLASS of each class. Every change is a new
SiteThreshold row; the latest row of the model version decides (a reset row, with no
threshold, means the card's), so a new model version starts from its card's threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from pneumoscan.metrics import classification_report, pick_threshold
from pneumoscan.model_card import ModelCard
from pneumoscan.threshold import pick_threshold_with_interval
from pneumoscan.web.db import make_engine
from pneumoscan.web.models import Result, SiteThreshold
from pneumoscan.web.results.reviews import latest_review

MIN_PER_CLASS = 30
POLICY = "sensitivity"
MIN_SENSITIVITY = 0.95
# The interval is the bootstrap picks' 90 % range, as on the model card; the proposal itself is
# the plain pick on the cases (quantile 0.5 would be the median pick instead).
BOOTSTRAP_SEED = 0


@dataclass(frozen=True)
class ThresholdInUse:
    """The threshold new uploads are judged with, and its SiteThreshold row (None: the card's)."""

    value: float
    row: SiteThreshold | None

    @property
    def source(self) -> str:
        return "site" if self.row is not None else "model card"


@dataclass(frozen=True)
class ReviewedCases:
    """Reviewed results of one model version (UNSURE left out): truth (1 = PNEUMONIA), the stored
    calibrated probability and the threshold each was judged with."""

    labels: np.ndarray
    probabilities: np.ndarray
    thresholds: np.ndarray

    @property
    def normal(self) -> int:
        return int((self.labels == 0).sum())

    @property
    def pneumonia(self) -> int:
        return int((self.labels == 1).sum())


def latest_change(session: Session, model_version: str) -> SiteThreshold | None:
    return session.scalar(
        select(SiteThreshold)
        .where(SiteThreshold.model_version == model_version)
        .order_by(SiteThreshold.created_at.desc(), SiteThreshold.id.desc())
        .limit(1)
    )


def in_use(session: Session, card: ModelCard) -> ThresholdInUse:
    """The latest change for the card's model version when it set a threshold, else the card's."""
    row = latest_change(session, card.model_version)
    if row is None or row.threshold is None:
        return ThresholdInUse(card.threshold, None)
    return ThresholdInUse(row.threshold, row)


def history(session: Session, model_version: str) -> list[SiteThreshold]:
    return list(
        session.scalars(
            select(SiteThreshold)
            .where(SiteThreshold.model_version == model_version)
            .order_by(SiteThreshold.created_at.desc(), SiteThreshold.id.desc())
        )
    )


def reviewed_cases(session: Session, model_version: str) -> ReviewedCases:
    """Each result's latest review, when it says PNEUMONIA or NORMAL, for one model version."""
    review = latest_review()
    rows = session.execute(
        select(review.finding, Result.probability, Result.threshold)
        .join(review, review.prediction_id == Result.id)
        .where(Result.model_version == model_version, review.finding.in_(("PNEUMONIA", "NORMAL")))
        .order_by(Result.created_at, Result.id)
    ).all()
    return ReviewedCases(
        labels=np.array([finding == "PNEUMONIA" for finding, _, _ in rows], dtype=int),
        probabilities=np.array([probability for _, probability, _ in rows], dtype=np.float64),
        thresholds=np.array([threshold for _, _, threshold in rows], dtype=np.float64),
    )


@dataclass(frozen=True)
class Proposal:
    threshold: float
    interval_90: tuple[float, float]
    sensitivity: float
    specificity: float
    normal: int
    pneumonia: int


def missing(cases: ReviewedCases) -> dict[str, int]:
    """How many more reviewed cases of each class a proposal needs (zeros when it can be made)."""
    return {
        "NORMAL": max(MIN_PER_CLASS - cases.normal, 0),
        "PNEUMONIA": max(MIN_PER_CLASS - cases.pneumonia, 0),
    }


def propose(cases: ReviewedCases) -> Proposal | None:
    """The ROC policy's threshold on the cases, with the 90 % range of case-level bootstrap picks
    and the sensitivity and specificity it gives on them; None below MIN_PER_CLASS of a class."""
    if any(missing(cases).values()):
        return None
    threshold = pick_threshold(cases.labels, cases.probabilities, POLICY, MIN_SENSITIVITY)
    cases_as_groups = np.arange(cases.labels.size)
    _, spread = pick_threshold_with_interval(
        cases.labels, cases.probabilities, cases_as_groups, POLICY, MIN_SENSITIVITY, 0.5, BOOTSTRAP_SEED
    )
    report = classification_report(cases.labels, cases.probabilities, threshold)
    low, high = spread["interval_90"]
    return Proposal(
        threshold, (low, high), report["sensitivity"], report["specificity"], cases.normal, cases.pneumonia
    )


def record_change(
    session: Session, card: ModelCard, proposal: Proposal | None, cases: ReviewedCases, user
) -> SiteThreshold:
    """A new SiteThreshold row: the proposal applied, or (None) a reset to the card's. The caller
    audits and commits."""
    row = SiteThreshold(
        model_version=card.model_version,
        threshold=proposal.threshold if proposal else None,
        previous_threshold=in_use(session, card).value,
        set_by_id=user.id if user is not None else None,
        reviewed_normal=cases.normal,
        reviewed_pneumonia=cases.pneumonia,
        interval_low=proposal.interval_90[0] if proposal else None,
        interval_high=proposal.interval_90[1] if proposal else None,
        sensitivity=proposal.sensitivity if proposal else None,
        specificity=proposal.specificity if proposal else None,
    )
    session.add(row)
    session.flush()
    return row


def in_use_at(database_url: str, card: ModelCard) -> ThresholdInUse:
    """`in_use` read from an app database by URL, for the command line."""
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            return in_use(session, card)
    finally:
        engine.dispose()
