"""The history's filters, read once from the query string and applied once as SQL, so the history
page, /history.csv and /api/v1/predictions (JSON or CSV) select exactly the same results."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta

from flask import abort, request
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from pneumoscan.model_card import CLASS_NAMES, SUBTYPE_NAMES
from pneumoscan.web.models import Result, Review
from pneumoscan.web.queryargs import choice_arg, date_arg, optional_int_arg
from pneumoscan.web.results.reviews import REVIEW_STATES, latest_review, state_condition

ESTIMATES = CLASS_NAMES
SUBTYPES = SUBTYPE_NAMES
# `sort` and what each order is: newest is the default; ties go newest first.
SORTS = {
    "newest": "Newest first",
    "probability": "Highest probability first",
    "unreviewed": "Unreviewed first, then newest",
}
MAX_CASE_SEARCH = 64
# The query-string name of each filter (`from` and `to` are Python keywords, hence the mapping).
ARG_NAMES = {
    "estimate": "estimate",
    "subtype": "subtype",
    "review": "review",
    "uploader": "uploader",
    "date_from": "from",
    "date_to": "to",
    "case": "case",
    "sort": "sort",
}


@dataclass(frozen=True)
class HistoryFilters:
    """What the history is narrowed to; None means "any"."""

    estimate: str | None = None
    subtype: str | None = None
    review: str | None = None
    uploader: int | None = None
    date_from: date | None = None
    date_to: date | None = None
    case: str | None = None
    sort: str | None = None

    def query_args(self) -> dict[str, str]:
        """The filters as query arguments, for links that keep them (pager, CSV download)."""
        return {
            ARG_NAMES[name]: value.isoformat() if isinstance(value, date) else str(value)
            for name, value in asdict(self).items()
            if value is not None
        }

    def describe(self) -> str:
        """For the audit trail: `estimate=NORMAL to=2026-01-31`, or `all results`."""
        return " ".join(f"{name}={value}" for name, value in self.query_args().items()) or "all results"


def parse_filters() -> HistoryFilters:
    """The current request's filters; a value that is not allowed is a 400 naming the argument."""
    case = request.args.get("case", "").strip()
    if len(case) > MAX_CASE_SEARCH or not case.isprintable():
        abort(400, f"'case' must be printable text of at most {MAX_CASE_SEARCH} characters")
    filters = HistoryFilters(
        estimate=choice_arg("estimate", ESTIMATES),
        subtype=choice_arg("subtype", SUBTYPES),
        review=choice_arg("review", REVIEW_STATES),
        uploader=optional_int_arg("uploader", 1),
        date_from=date_arg("from"),
        date_to=date_arg("to"),
        case=case or None,
        sort=choice_arg("sort", tuple(SORTS)),
    )
    if filters.date_from and filters.date_to and filters.date_from > filters.date_to:
        abort(400, "'from' must not be after 'to'")
    return filters


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _like_pattern(text: str) -> str:
    """A case-insensitive "contains" pattern in which % and _ match themselves."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def filtered(filters: HistoryFilters) -> Select:
    """(result, its latest review or None) rows matching `filters`, in their `sort` order (newest
    breaks ties). Dates are UTC days; `to` includes its whole day."""
    latest = latest_review()
    query = select(Result, latest).outerjoin(latest, latest.prediction_id == Result.id)
    if filters.estimate:
        query = query.where(Result.label == filters.estimate)
    if filters.subtype:
        query = query.where(Result.subtype == filters.subtype)
    if filters.review:
        query = query.where(state_condition(filters.review, latest))
    if filters.uploader is not None:
        query = query.where(Result.uploaded_by_id == filters.uploader)
    if filters.date_from:
        query = query.where(Result.created_at >= _start_of(filters.date_from))
    if filters.date_to:
        query = query.where(Result.created_at < _start_of(filters.date_to + timedelta(days=1)))
    if filters.case:
        pattern = _like_pattern(filters.case)
        query = query.where(func.lower(Result.case_reference).like(pattern, escape="\\"))
    newest = (Result.created_at.desc(), Result.id.desc())
    if filters.sort == "probability":
        return query.order_by(Result.probability.desc(), *newest)
    if filters.sort == "unreviewed":
        return query.order_by(latest.id.is_not(None), *newest)
    return query.order_by(*newest)


def page(
    session: Session, filters: HistoryFilters, limit: int, offset: int
) -> tuple[int, list[tuple[Result, Review | None]]]:
    """How many results match, and one page of them with their latest reviews."""
    query = filtered(filters)
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    rows = session.execute(query.limit(limit).offset(offset)).all()
    return total, list(rows)
