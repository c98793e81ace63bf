"""Probes: /livez (the process answers) and /readyz, also served as /healthz, which checks that
the database takes a write and the upload folder takes a file.

A `SELECT 1` passes on a read-only database, where every upload then fails, so the check
writes: a row inserted inside a transaction that is rolled back, and a small file written
and removed where uploads are stored. With STORAGE=database the files are rows of
`stored_files`, so the database check also inserts one there (in the same rolled-back
transaction) and the storage state is the database's. With STORAGE=s3 the store puts and
deletes a small object in the bucket.
"""

from __future__ import annotations

import uuid

from flask import Blueprint, current_app, jsonify
from sqlalchemy import insert
from sqlalchemy.exc import SQLAlchemyError

from pneumoscan.web import db
from pneumoscan.web.accounts.demo import open_demo
from pneumoscan.web.modelcache import predictor
from pneumoscan.web.models import Result, utc_now
from pneumoscan.web.storage import upload_store

bp = Blueprint("health", __name__)

_PROBE_ROW = {
    "original_filename": "healthz",
    "sha256": "0" * 64,
    "width": 0,
    "height": 0,
    "source_format": "healthz",
    "probability": 0.0,
    "label": "healthz",
    "threshold": 0.0,
    "model_version": "healthz",
    "inference_ms": 0.0,
    "image_path": "healthz",
    "heatmap_path": "healthz",
}


def database_writable() -> str:
    """'ok' when a row can be inserted (then rolled back), else 'unavailable'."""
    try:
        with db.database().engine.connect() as connection, connection.begin() as transaction:
            row = {"id": str(uuid.uuid4()), "created_at": utc_now(), **_PROBE_ROW}
            connection.execute(insert(Result).values(**row))
            upload_store().add_probe_rows(connection, row["id"])
            transaction.rollback()
        return "ok"
    except SQLAlchemyError as exc:
        current_app.logger.warning("health check: database does not take a write: %s", type(exc).__name__)
        return "unavailable"


def _may_name_parts() -> bool:
    """Only in an open demo with no account. A database that takes no write may still answer
    whether an account exists; one that answers nothing leaves what the app last found."""
    try:
        return open_demo(ask_database=True)
    except SQLAlchemyError:
        db.session().rollback()
        return open_demo()


@bp.get("/livez")
def livez():
    """For liveness probes, which restart the process: no model, database or store, just an answer."""
    return jsonify(status="ok")


@bp.get("/readyz")
@bp.get("/healthz")
def healthz():
    """For load balancers: 200 only when the model loads, the database takes a write and the
    store takes a file; otherwise 503, naming the part that failed.

    Open to all, so outside an open demo with no account it says nothing but the status.
    """
    database = database_writable()
    parts = {"database": database, "storage": upload_store().files_writable(database)}
    healthy = all(state == "ok" for state in parts.values())
    status, code = ("ok", 200) if healthy else ("unavailable", 503)
    model_version = predictor().model_version
    if not _may_name_parts():
        return jsonify(status=status), code
    return jsonify(status=status, model_version=model_version, **parts), code
