"""CSV exports of results with their latest reviews (/history.csv and the API's ?format=csv).

Every export is audited with its filters. Text a user typed (case reference, note, names) that a
spreadsheet would read as a formula gets a leading apostrophe (CSV injection); numbers are ours.
"""

from __future__ import annotations

import csv
import io

from flask import Response
from sqlalchemy.orm import Session

from pneumoscan.web import audit
from pneumoscan.web.models import Result, Review, utc_now
from pneumoscan.web.results.queries import HistoryFilters, filtered
from pneumoscan.web.results.reviews import review_state

COLUMNS = (
    "id",
    "created_at",
    "case_reference",
    "label",
    "probability",
    "logit",
    "threshold",
    "model_version",
    "uploader",
    "review_finding",
    "review_note",
    "reviewed_by",
    "reviewed_at",
    "review_version",
    "review_state",
    "viral_probability",
    "subtype",
)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> object:
    """Text that a spreadsheet would run as a formula, made inert with a leading apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_row(row: Result, review: Review | None) -> list[object]:
    """One result as the CSV's cells, in COLUMNS order."""
    cells = [
        row.id,
        row.created_at.isoformat(),
        row.case_reference or "",
        row.label,
        row.probability,
        "" if row.logit is None else row.logit,
        row.threshold,
        row.model_version,
        row.uploaded_by.display_name if row.uploaded_by else "",
        review.finding if review else "",
        (review.note or "") if review else "",
        review.reviewer.display_name if review and review.reviewer else "",
        review.created_at.isoformat() if review else "",
        review.version if review else "",
        review_state(row.label, review),
        "" if row.viral_probability is None else row.viral_probability,
        row.subtype or "",
    ]
    return [safe_cell(cell) for cell in cells]


def export_csv(session: Session, filters: HistoryFilters, source: str) -> Response:
    """Every result matching `filters` as a CSV download, audited (`source` says which URL asked);
    the caller commits the audit event."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    count = 0
    for row, review in session.execute(filtered(filters)):
        writer.writerow(csv_row(row, review))
        count += 1
    audit.add(session, audit.EXPORT, detail=f"{count} result(s) as CSV from {source}; {filters.describe()}")
    session.flush()
    name = f"pneumoscan-results-{utc_now():%Y%m%d-%H%M%S}.csv"
    return Response(
        buffer.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
