"""The dashboard's figures, computed once here: /dashboard draws them, /api/v1/metrics returns them.

Uploads, flags and probabilities cover the last UPLOAD_DAYS days (UTC) of every model version;
refusals the same days. Performance comes from reviewed results of the served model version
only, each result's latest review, UNSURE left out; subtype agreement likewise, over results
with the model's subtype whose latest review confirms one. Each reviewed result is judged with the
threshold stored on its own row (the one its label was given with), so a site threshold
applied half-way counts each result as it was shown to the clinician; AUC and the ROC curve
do not depend on a threshold. Drift compares the served model version's uploads per ISO week
with the model's drift reference (pneumoscan.drift).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pneumoscan import drift
from pneumoscan.metrics import (
    bootstrap_auc_interval,
    confusion_counts,
    rates_with_intervals,
    roc_auc,
    roc_curve,
    wilson_interval,
)
from pneumoscan.model_card import SUBTYPE_NAMES, ModelCard
from pneumoscan.web.models import RefusalCount, Result
from pneumoscan.web.results import site_threshold
from pneumoscan.web.results.reviews import latest_review

UPLOAD_DAYS = 30
DRIFT_WEEKS = 12
HISTOGRAM_BINS = 10
SMALL_SAMPLE = 30
AUC_BOOTSTRAP_ROUNDS = 1000
AUC_BOOTSTRAP_SEED = 0
NOT_COMPARED = {"feature_distance": None, "shifts": None, "limits": None, "beyond": [], "flagged": None}


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def uploads(session: Session, today: date) -> dict:
    """Uploads per day (zero-filled), the share flagged as pneumonia and the probabilities' histogram."""
    first = today - timedelta(days=UPLOAD_DAYS - 1)
    rows = session.execute(
        select(Result.created_at, Result.probability, Result.label).where(
            Result.created_at >= _start_of(first)
        )
    ).all()
    per_day = Counter(created.date() for created, _, _ in rows)
    flagged = sum(label == "PNEUMONIA" for _, _, label in rows)
    counts, edges = np.histogram(
        [probability for _, probability, _ in rows], bins=HISTOGRAM_BINS, range=(0.0, 1.0)
    )
    return {
        "days": UPLOAD_DAYS,
        "per_day": [
            {"day": (first + timedelta(days=i)).isoformat(), "count": per_day[first + timedelta(days=i)]}
            for i in range(UPLOAD_DAYS)
        ],
        "total": len(rows),
        "flagged_pneumonia": flagged,
        "share_pneumonia": flagged / len(rows) if rows else None,
        "probability_histogram": [
            {"low": float(edges[i]), "high": float(edges[i + 1]), "count": int(counts[i])}
            for i in range(HISTOGRAM_BINS)
        ],
    }


def refusals(session: Session, today: date) -> dict:
    """Refused uploads per reason over the window, and per reason and day."""
    first = today - timedelta(days=UPLOAD_DAYS - 1)
    rows = session.execute(
        select(RefusalCount.day, RefusalCount.reason, RefusalCount.count)
        .where(RefusalCount.day >= first)
        .order_by(RefusalCount.day, RefusalCount.reason)
    ).all()
    by_reason = Counter()
    for _, reason, count in rows:
        by_reason[reason] += count
    return {
        "days": UPLOAD_DAYS,
        "total": sum(by_reason.values()),
        "by_reason": [{"reason": reason, "count": count} for reason, count in by_reason.most_common()],
        "by_day": [{"day": day.isoformat(), "reason": reason, "count": count} for day, reason, count in rows],
    }


def performance(session: Session, model_version: str) -> dict:
    """Sensitivity, specificity, PPV, NPV (Wilson 95 %), AUC (bootstrap 95 %), the confusion matrix
    and ROC points from reviewed results, with the number of cases and a warning while few."""
    cases = site_threshold.reviewed_cases(session, model_version)
    review = latest_review()
    unsure = session.scalar(
        select(func.count())
        .select_from(Result)
        .join(review, review.prediction_id == Result.id)
        .where(Result.model_version == model_version, review.finding == "UNSURE")
    )
    confusion = confusion_counts(cases.labels, cases.probabilities >= cases.thresholds)
    both = cases.normal > 0 and cases.pneumonia > 0
    fpr, tpr, _ = roc_curve(cases.labels, cases.probabilities) if both else ([], [], [])
    auc_interval = bootstrap_auc_interval(
        cases.labels, cases.probabilities, AUC_BOOTSTRAP_ROUNDS, AUC_BOOTSTRAP_SEED
    )
    small = min(cases.normal, cases.pneumonia) < SMALL_SAMPLE
    return {
        "model_version": model_version,
        "cases": int(cases.labels.size),
        "normal": cases.normal,
        "pneumonia": cases.pneumonia,
        "unsure_left_out": unsure or 0,
        "judged_with": "the threshold stored with each result",
        "confusion_matrix": confusion,
        **rates_with_intervals(confusion),
        "auc": {
            "value": roc_auc(cases.labels, cases.probabilities) if both else None,
            "cases": int(cases.labels.size),
            "interval_95": list(auc_interval) if auc_interval else None,
        },
        "roc": [{"fpr": float(x), "tpr": float(y)} for x, y in zip(fpr, tpr, strict=True)],
        "small_sample": small,
        "warning": (
            f"Only {cases.normal} reviewed normal and {cases.pneumonia} reviewed pneumonia cases: "
            f"these figures are uncertain until each class has at least {SMALL_SAMPLE}."
        )
        if small
        else None,
    }


def subtype_agreement(session: Session, model_version: str) -> dict:
    """How often the clinician's confirmed subtype is the model's (Wilson 95 %), with the counts
    per estimated and confirmed subtype."""
    review = latest_review()
    pairs = Counter(
        (estimated, confirmed)
        for estimated, confirmed in session.execute(
            select(Result.subtype, review.subtype_finding)
            .join(review, review.prediction_id == Result.id)
            .where(
                Result.model_version == model_version,
                Result.subtype.is_not(None),
                review.subtype_finding.is_not(None),
            )
        )
    )
    cases = sum(pairs.values())
    agreed = sum(pairs[(name, name)] for name in SUBTYPE_NAMES)
    interval = wilson_interval(agreed, cases)
    return {
        "model_version": model_version,
        "cases": cases,
        "agreed": agreed,
        "agreement": {
            "value": agreed / cases if cases else None,
            "cases": cases,
            "interval_95": list(interval) if interval else None,
        },
        "by_subtype": [
            {"estimated": estimated, "confirmed": confirmed, "count": pairs[(estimated, confirmed)]}
            for estimated in SUBTYPE_NAMES
            for confirmed in SUBTYPE_NAMES
        ],
    }


def weekly_drift(session: Session, model_version: str, model_dir: Path, today: date) -> dict:
    """Per ISO week of the last DRIFT_WEEKS, the served model version's uploads against the reference."""
    reference = drift.load_reference(model_dir)
    if reference is not None and reference["model_version"] != model_version:
        reference = None
    monday = today - timedelta(days=today.weekday()) - timedelta(weeks=DRIFT_WEEKS - 1)
    rows = session.execute(
        select(Result.created_at, Result.gate_reading).where(
            Result.model_version == model_version,
            Result.created_at >= _start_of(monday),
        )
    ).all()
    by_week: dict[date, list[dict]] = defaultdict(list)
    # Results made before gate readings were kept have none (SQL NULL or JSON null).
    for created, reading in (row for row in rows if row.gate_reading):
        day = created.date()
        by_week[day - timedelta(days=day.weekday())].append(reading)
    weeks = []
    for i in range(DRIFT_WEEKS):
        start = monday + timedelta(weeks=i)
        year, week, _ = start.isocalendar()
        readings = by_week.get(start, [])
        compared = drift.compare_week(readings, reference) if readings and reference else NOT_COMPARED
        weeks.append(
            {
                "week": f"{year}-W{week:02d}",
                "starts": start.isoformat(),
                "uploads": len(readings),
                **compared,
            }
        )
    return {
        "weeks": DRIFT_WEEKS,
        "reference": {k: reference[k] for k in ("source", "images", "mean", "spread", "quantile")}
        if reference
        else None,
        "per_week": weeks,
        "flagged_weeks": [week["week"] for week in weeks if week.get("flagged")],
    }


def site_metrics(session: Session, card: ModelCard, model_dir: Path, today: date | None = None) -> dict:
    """Everything the dashboard shows, as plain JSON-ready values."""
    today = today or datetime.now(UTC).date()
    threshold = site_threshold.in_use(session, card)
    return {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "model_version": card.model_version,
        "threshold": {
            "value": threshold.value,
            "source": threshold.source,
            "model_card": card.threshold,
            "site_threshold_id": threshold.row.id if threshold.row else None,
            "set_at": threshold.row.created_at.isoformat() if threshold.row else None,
        },
        "uploads": uploads(session, today),
        "refusals": refusals(session, today),
        "reviewed": performance(session, card.model_version),
        "subtype_agreement": subtype_agreement(session, card.model_version),
        "drift": weekly_drift(session, card.model_version, model_dir, today),
    }
