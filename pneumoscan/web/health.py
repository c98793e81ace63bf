"""What /healthz checks: the database takes a write and the upload folder takes a file.

A `SELECT 1` passes on a read-only database, where every upload then fails, so the check
writes: a row inserted inside a transaction that is rolled back, and a small file written
and removed where uploads are stored. With STORAGE=database the files are rows of
`stored_files`, so the database check also inserts one there (in the same rolled-back
transaction) and the storage state is the database's.
"""

from __future__ import annotations

import os
import uuid

from flask import current_app
from sqlalchemy import insert
from sqlalchemy.exc import SQLAlchemyError

from pneumoscan.web import db
from pneumoscan.web.models import PredictionRecord, StoredFile, utc_now
from pneumoscan.web.service import upload_store
from pneumoscan.web.storage import TEMP_PREFIX, UploadStore

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
            connection.execute(insert(PredictionRecord).values(**row))
            if not isinstance(upload_store(), UploadStore):
                probe = {"name": f"{row['id']}.healthz.png", "prediction_id": row["id"], "data": b"ok"}
                connection.execute(insert(StoredFile).values(**probe))
            transaction.rollback()
        return "ok"
    except SQLAlchemyError as exc:
        current_app.logger.warning("health check: database does not take a write: %s", type(exc).__name__)
        return "unavailable"


def storage_writable(database_state: str) -> str:
    """'ok' when a file can be written in the upload folder and removed again; for the database
    store, what the database check found (it wrote a stored_files row)."""
    store = upload_store()
    if not isinstance(store, UploadStore):
        return database_state
    probe = store.folder / f"{TEMP_PREFIX}{os.getpid()}-healthz-{uuid.uuid4().hex}"
    try:
        with open(probe, "wb") as handle:
            handle.write(b"ok")
        probe.unlink()
        return "ok"
    except OSError as exc:
        current_app.logger.warning("health check: upload folder not writable: %s", type(exc).__name__)
        return "unavailable"
