"""JSON API for programs: the same flow as the upload form, answered in JSON, without CSRF.

Bodies are loaded and dumped by api/schemas.py; api/openapi.py describes these routes from the
same schemas, served at /api/v1/openapi.json.
"""

from __future__ import annotations

import json

from flask import Blueprint, abort, current_app, jsonify, request
from flask_login import current_user

from pneumoscan.errors import Refused
from pneumoscan.web import db
from pneumoscan.web.accounts.guard import admin_required
from pneumoscan.web.api import fhir, openapi, schemas
from pneumoscan.web.api.serialise import as_json, public_url, review_as_json
from pneumoscan.web.monitoring.figures import current_metrics
from pneumoscan.web.queryargs import int_arg
from pneumoscan.web.results import queries, retention, reviews
from pneumoscan.web.results.case_reference import clean_case_reference
from pneumoscan.web.results.exports import export_csv
from pneumoscan.web.results.lookup import find_result, listed, viewed
from pneumoscan.web.results.map_grid import grid_of
from pneumoscan.web.results.upload_flow import record_from_request
from pneumoscan.web.server.rate_limits import rate_limited
from pneumoscan.web.storage import upload_store

bp = Blueprint("api", __name__, url_prefix="/api/v1")
REVIEW_BODY = schemas.ReviewBody()
MAP = schemas.Map()


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


@bp.get("/predictions/<uuid:prediction_id>/fhir")
def get_prediction_fhir(prediction_id):
    """The result as a FHIR R4 DiagnosticReport (api/fhir.py)."""
    row = viewed(prediction_id)
    report = fhir.diagnostic_report(
        row,
        reviews.latest_of(db.session(), row.id),
        image_url=public_url("files.image", prediction_id=row.id),
        heatmap_url=public_url("files.heatmap", prediction_id=row.id),
    )
    return current_app.response_class(json.dumps(report), mimetype=fhir.MEDIA_TYPE)


@bp.get("/predictions/<uuid:prediction_id>/map")
def get_prediction_map(prediction_id):
    """The Grad-CAM grid as stored with the result; 404 for a result stored without one."""
    values = grid_of(viewed(prediction_id))
    if values is None:
        raise Refused("no map is stored for this prediction", 404)
    shape = [len(values), len(values[0]) if values else 0]
    return jsonify(MAP.dump({"shape": shape, "values": values, "range": [0.0, 1.0], "row_0": "top"}))


@bp.post("/predictions/<uuid:prediction_id>/review")
def review_prediction(prediction_id):
    """A JSON ReviewBody becomes a new review version, signed by the token's user."""
    if not current_user.is_authenticated:
        abort(401, "reviews are signed: send the API token of an account")
    row = find_result(prediction_id)
    body = schemas.load_body(REVIEW_BODY, request.get_json(silent=True))
    review = reviews.add_review(
        db.session(),
        row,
        body["finding"],
        body["note"],
        current_user._get_current_object(),
        subtype_finding=body["subtype_finding"],
    )
    db.session().commit()
    return jsonify(review_as_json(review)), 201


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
    limit = int_arg("limit", schemas.DEFAULT_LIMIT, 1, schemas.MAX_LIMIT)
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


@bp.get("/openapi.json")
def openapi_document():
    """This API's OpenAPI 3 description, built from its schemas and routes."""
    return jsonify(openapi.document())
