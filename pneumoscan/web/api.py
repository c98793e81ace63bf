"""JSON API for programs: the same flow as the upload form, answered in JSON, without CSRF."""

from __future__ import annotations

from flask import Blueprint, abort, jsonify, request, url_for

from pneumoscan.errors import ImageRejected
from pneumoscan.web import db
from pneumoscan.web.models import PredictionRecord
from pneumoscan.web.ratelimit import rate_limited
from pneumoscan.web.service import record_from_request

bp = Blueprint("api", __name__, url_prefix="/api/v1")
MAX_LIMIT = 100


def as_json(row: PredictionRecord) -> dict:
    return {
        "id": row.id,
        "label": row.label,
        "probability": row.probability,
        "threshold": row.threshold,
        "model_version": row.model_version,
        "heatmap_url": url_for("files.heatmap", prediction_id=row.id, _external=True),
        "image_url": url_for("files.image", prediction_id=row.id, _external=True),
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
    location = url_for("api.get_prediction", prediction_id=row.id)
    return jsonify(as_json(row)), 201, {"Location": location}


@bp.get("/predictions/<uuid:prediction_id>")
def get_prediction(prediction_id):
    row = db.session().get(PredictionRecord, str(prediction_id))
    if row is None:
        abort(404, "no such prediction")
    return jsonify(as_json(row))


def _int_arg(name: str, default: int, low: int, high: int | None = None) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        abort(400, f"'{name}' must be an integer")
    if value < low:
        abort(400, f"'{name}' must be at least {low}")
    if high is not None and value > high:
        abort(400, f"'{name}' must be at most {high}")
    return value


@bp.get("/predictions")
def list_predictions():
    limit = _int_arg("limit", 20, 1, MAX_LIMIT)
    offset = _int_arg("offset", 0, 0)
    total, rows = db.newest_first(limit, offset)
    return jsonify(total=total, limit=limit, offset=offset, items=[as_json(row) for row in rows])
