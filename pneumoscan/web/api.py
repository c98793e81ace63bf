"""JSON API for programs: the same flow as the upload form, answered in JSON, without CSRF."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, jsonify, request, url_for

from pneumoscan.errors import ImageRejected
from pneumoscan.web import db, retention
from pneumoscan.web.access import admin_required
from pneumoscan.web.dashboard import current_metrics
from pneumoscan.web.models import PredictionRecord
from pneumoscan.web.pages import find_result, viewed
from pneumoscan.web.queryargs import int_arg
from pneumoscan.web.ratelimit import rate_limited
from pneumoscan.web.service import record_from_request, upload_store

bp = Blueprint("api", __name__, url_prefix="/api/v1")
MAX_LIMIT = 100


def public_url(endpoint: str, **values) -> str:
    """Absolute under PUBLIC_URL when it is set, else relative: never built from the Host header."""
    path = url_for(endpoint, **values)
    base = current_app.config.get("PUBLIC_URL", "")
    return f"{base.rstrip('/')}{path}" if base else path


def as_json(row: PredictionRecord) -> dict:
    return {
        "id": row.id,
        "label": row.label,
        "probability": row.probability,
        "threshold": row.threshold,
        "threshold_source": "site" if row.site_threshold_id is not None else "model card",
        "model_version": row.model_version,
        "heatmap_url": public_url("files.heatmap", prediction_id=row.id),
        "image_url": public_url("files.image", prediction_id=row.id),
        "created_at": row.created_at.isoformat(),
        "original_filename": row.original_filename or None,
        "uploaded_by": {"id": row.uploaded_by.id, "name": row.uploaded_by.display_name}
        if row.uploaded_by
        else None,
        "source_format": row.source_format,
        "width": row.width,
        "height": row.height,
        "sha256": row.sha256,
        "inference_ms": row.inference_ms,
    }


@bp.errorhandler(ImageRejected)
def refused(refusal: ImageRejected):
    return jsonify(error=refusal.message), refusal.status


@bp.post("/predictions")
@rate_limited
def create_prediction():
    upload = request.files.get("file")
    if upload is None:
        abort(400, "missing multipart form field 'file'")
    row = record_from_request(upload)
    location = public_url("api.get_prediction", prediction_id=row.id)
    return jsonify(as_json(row)), 201, {"Location": location}


@bp.get("/predictions/<uuid:prediction_id>")
def get_prediction(prediction_id):
    return jsonify(as_json(viewed(prediction_id)))


@bp.delete("/predictions/<uuid:prediction_id>")
@admin_required
def delete_prediction(prediction_id):
    """Admins only: the row and both files go; the audit event stays."""
    retention.delete_result(db.session(), upload_store(), find_result(prediction_id))
    return "", 204


@bp.get("/predictions")
def list_predictions():
    limit = int_arg("limit", 20, 1, MAX_LIMIT)
    offset = int_arg("offset", 0, 0)
    total, rows = db.newest_first(limit, offset)
    return jsonify(total=total, limit=limit, offset=offset, items=[as_json(row) for row in rows])


@bp.get("/metrics")
def metrics():
    """The dashboard's figures as JSON (pneumoscan.web.site_metrics)."""
    return jsonify(current_metrics())
