"""Stored images, served only from the upload store, by prediction id, with fixed types."""

from __future__ import annotations

from flask import Blueprint, abort, send_file

from pneumoscan.web import db
from pneumoscan.web.models import PredictionRecord
from pneumoscan.web.service import upload_store
from pneumoscan.web.storage import CONTENT_TYPES

bp = Blueprint("files", __name__)


def _serve(prediction_id, column: str):
    row = db.session().get(PredictionRecord, str(prediction_id))
    path = upload_store().path(getattr(row, column)) if row is not None else None
    if path is None:
        abort(404, "no such image")
    response = send_file(path, mimetype=CONTENT_TYPES[path.suffix], max_age=86400, conditional=True)
    response.cache_control.public = False
    response.cache_control.private = True
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.get("/predictions/<uuid:prediction_id>/image")
def image(prediction_id):
    return _serve(prediction_id, "image_path")


@bp.get("/predictions/<uuid:prediction_id>/heatmap")
def heatmap(prediction_id):
    return _serve(prediction_id, "heatmap_path")
