"""JSON API for programs: the same flow as the upload form, answered in JSON, without CSRF."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, jsonify, request, url_for

from pneumoscan.errors import ImageRejected
from pneumoscan.web import db
from pneumoscan.web.models import PredictionRecord
from pneumoscan.web.queryargs import int_arg
from pneumoscan.web.ratelimit import rate_limited
from pneumoscan.web.service import record_from_request

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
        "model_version": row.model_version,
        "heatmap_url": public_url("files.heatmap", prediction_id=row.id),
        "image_url": public_url("files.image", prediction_id=row.id),
        "created_at": row.created_at.isoformat(),
        "original_filename": row.original_filename,
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
    row = db.session().get(PredictionRecord, str(prediction_id))
    if row is None:
        abort(404, "no such prediction")
    return jsonify(as_json(row))


@bp.get("/predictions")
def list_predictions():
    limit = int_arg("limit", 20, 1, MAX_LIMIT)
    offset = int_arg("offset", 0, 0)
    total, rows = db.newest_first(limit, offset)
    return jsonify(total=total, limit=limit, offset=offset, items=[as_json(row) for row in rows])
