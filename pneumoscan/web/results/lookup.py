"""Finding a result for a request: 404 when it is gone, and the audit trail's record of every read:
a result, a list of results, an image or a heatmap (one event per request, committed with it)."""

from __future__ import annotations

from flask import abort

from pneumoscan.web import audit, db
from pneumoscan.web.models import Result
from pneumoscan.web.results.queries import HistoryFilters


def find_result(prediction_id) -> Result:
    """The result with this id, or 404 (also for one that was deleted)."""
    row = db.session().get(Result, str(prediction_id))
    if row is None:
        abort(404, "no such prediction")
    return row


def viewed(prediction_id) -> Result:
    """find_result, recording the view in the audit trail."""
    row = find_result(prediction_id)
    audit.add(db.session(), audit.VIEW, target_id=row.id)
    db.session().commit()
    return row


def listed(source: str, filters: HistoryFilters, offset: int, rows: list) -> None:
    """Records one page of a list (history page or API), with what selects it again, and commits."""
    detail = f"{len(rows)} result(s) from {source} offset={offset}; {filters.describe()}"
    audit.add(db.session(), audit.LIST, detail=detail)
    db.session().commit()


def file_read(row: Result, kind: str) -> None:
    """Records a fetch of a result's image or heatmap, and commits."""
    audit.add(db.session(), audit.READ_FILE, target_id=row.id, detail=kind)
    db.session().commit()
