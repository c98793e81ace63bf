"""Finding a result for a request: 404 when it is gone, and the audit trail's record of a view."""

from __future__ import annotations

from flask import abort

from pneumoscan.web import audit, db
from pneumoscan.web.models import Result


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
