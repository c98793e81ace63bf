"""JSON API for programs: the same flow as the upload form, answered in JSON, without CSRF."""

from __future__ import annotations

from flask import Blueprint, abort, jsonify, request
from flask_login import current_user

from pneumoscan.web import db
from pneumoscan.web.accounts.guard import admin_required
from pneumoscan.web.api.serialise import as_json, public_url
from pneumoscan.web.monitoring.figures import current_metrics
from pneumoscan.web.queryargs import int_arg
from pneumoscan.web.results import queries, retention, reviews
from pneumoscan.web.results.case_reference import clean_case_reference
from pneumoscan.web.results.exports import export_csv
from pneumoscan.web.results.lookup import find_result, listed, viewed
from pneumoscan.web.results.upload_flow import record_from_request
from pneumoscan.web.server.rate_limits import rate_limited
from pneumoscan.web.storage import upload_store

bp = Blueprint("api", __name__, url_prefix="/api/v1")
MAX_LIMIT = 100


@bp.post("/predictions")
@rate_limited
def create_prediction():
    upload = request.files.get("file")
    if upload is None:
        abort(400, "missing multipart form field 'file'")
    row = record_from_request(upload, clean_case_reference(request.form.get("case_reference")))
    location = public_url("api.get_prediction", prediction_id=row.id)
    return jsonify(as_json(row, None)), 201, {"Location": location}


@bp.get("/predictions/<uuid:prediction_id>")
def get_prediction(prediction_id):
    row = viewed(prediction_id)
    return jsonify(as_json(row, reviews.latest_of(db.session(), row.id)))


@bp.post("/predictions/<uuid:prediction_id>/review")
def review_prediction(prediction_id):
    """JSON {"finding": ..., "note": ...} becomes a new review version, signed by the token's user."""
    if not current_user.is_authenticated:
        abort(401, "reviews are signed: send the API token of an account")
    row = find_result(prediction_id)
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        abort(400, 'send a JSON object such as {"finding": "NORMAL", "note": "..."}')
    review = reviews.add_review(
        db.session(), row, body.get("finding"), body.get("note"), current_user._get_current_object()
    )
    db.session().commit()
    return jsonify(reviews.review_json(review)), 201


@bp.delete("/predictions/<uuid:prediction_id>")
@admin_required
def delete_prediction(prediction_id):
    """Admins only: the row and both files go; the audit event stays."""
    store = upload_store()
    files = retention.delete_result(db.session(), store, find_result(prediction_id))
    db.session().commit()
    store.remove(files)
    return "", 204


@bp.get("/predictions")
def list_predictions():
    """The history's filters apply; `format=csv` exports every matching result (no paging)."""
    answer_format = request.args.get("format", "json")
    if answer_format not in ("json", "csv"):
        abort(400, "'format' must be json or csv")
    filters = queries.parse_filters()
    if answer_format == "csv":
        response = export_csv(db.session(), filters, "/api/v1/predictions")
        db.session().commit()
        return response
    limit = int_arg("limit", 20, 1, MAX_LIMIT)
    offset = int_arg("offset", 0, 0)
    total, rows = queries.page(db.session(), filters, limit, offset)
    listed("/api/v1/predictions", filters, offset, rows)
    return jsonify(
        total=total, limit=limit, offset=offset, items=[as_json(row, review) for row, review in rows]
    )


@bp.get("/metrics")
def metrics():
    """The dashboard's figures as JSON (pneumoscan.web.monitoring.site_metrics)."""
    return jsonify(current_metrics())
