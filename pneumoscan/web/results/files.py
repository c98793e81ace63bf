"""Stored images, served only from the store (folder or table), by prediction id, with fixed types."""

from __future__ import annotations

import io
from pathlib import Path

from flask import Blueprint, abort, send_file

from pneumoscan.web import db
from pneumoscan.web.models import Result
from pneumoscan.web.results.lookup import file_read
from pneumoscan.web.storage import upload_store
from pneumoscan.web.store_names import CONTENT_TYPES

bp = Blueprint("files", __name__)


def _serve(prediction_id, column: str):
    """Stored names are unique and their bytes never change, so the name is the ETag."""
    row = db.session().get(Result, str(prediction_id))
    name = getattr(row, column) if row is not None else None
    source = upload_store().read(name, db.session()) if name is not None else None
    if source is None:
        abort(404, "no such image")
    file_read(row, column.removesuffix("_path"))
    response = send_file(
        io.BytesIO(source),
        mimetype=CONTENT_TYPES[Path(name).suffix],
        max_age=86400,
        conditional=True,
        etag=name,
        last_modified=row.created_at,
    )
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
