"""The upload flow through its seam: `record_upload` with the real model, a real store and a real
session, so a result is its row, its two files and its audit event, or nothing at all."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import numpy as np
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError

from pneumoscan.decode import decode_image
from pneumoscan.errors import ImageRejected
from pneumoscan.model_card import SUBTYPE_NAMES, ModelCard
from pneumoscan.web import audit, db
from pneumoscan.web.modelcache import predictor
from pneumoscan.web.models import AuditEvent, Result
from pneumoscan.web.results.map_grid import grid_of
from pneumoscan.web.results.upload_flow import record_upload
from pneumoscan.web.storage import DatabaseStore, UploadStore


def committed(app) -> tuple[int, int]:
    """Results and audit events a fresh session sees."""
    with app.app_context(), db.database().sessions() as fresh:
        return fresh.scalar(select(func.count(Result.id))), fresh.scalar(select(func.count(AuditEvent.id)))


def files_in(store: UploadStore) -> list[str]:
    return sorted(entry.name for entry in store.folder.iterdir()) if store.folder.is_dir() else []


def test_a_result_is_its_row_its_two_files_and_its_audit_event(app, xray_paths, tmp_path):
    store, data = UploadStore(tmp_path / "flow"), xray_paths[0].read_bytes()
    with app.app_context():
        row = record_upload(
            data, "C:\\scans\\chest.jpeg", predictor(), store, db.session(), case_reference="A-1"
        )

    with app.app_context(), db.database().sessions() as fresh:
        stored = fresh.get(Result, row.id)
        event = fresh.scalar(select(AuditEvent).where(AuditEvent.target_id == row.id))
        assert stored.original_filename == "chest.jpeg" and stored.case_reference == "A-1"
        assert stored.sha256 == hashlib.sha256(data).hexdigest() and stored.source_format == "jpeg"
        assert stored.label == ("PNEUMONIA" if stored.probability >= stored.threshold else "NORMAL")
        assert event.action == audit.UPLOAD
        assert store.read(stored.heatmap_path, fresh).startswith(b"\x89PNG\r\n\x1a\n")
        assert store.read(stored.image_path, fresh)[:2] == b"\xff\xd8"
    assert files_in(store) == sorted([row.image_path, row.heatmap_path])


def test_the_database_store_keeps_the_files_in_the_same_commit(app, xray_paths):
    store = DatabaseStore()
    with app.app_context():
        row = record_upload(xray_paths[0].read_bytes(), None, predictor(), store, db.session())
    with app.app_context(), db.database().sessions() as fresh:
        assert fresh.get(Result, row.id).original_filename == ""
        assert store.read(row.heatmap_path, fresh).startswith(b"\x89PNG")
    assert committed(app) == (1, 1)


def test_a_refused_upload_leaves_nothing(app, tmp_path):
    store = UploadStore(tmp_path / "flow")
    with app.app_context(), pytest.raises(ImageRejected) as refused:
        record_upload(b"%PDF-1.7 not an X-ray", "x.pdf", predictor(), store, db.session())
    assert refused.value.status == 415 and "PDF" in refused.value.message
    assert committed(app) == (0, 0) and files_in(store) == []


def test_a_store_that_takes_no_file_leaves_no_row(app, xray_paths, tmp_path):
    blocked = tmp_path / "not-a-folder"
    blocked.write_bytes(b"")
    with app.app_context(), pytest.raises(FileExistsError):
        record_upload(xray_paths[0].read_bytes(), None, predictor(), UploadStore(blocked), db.session())
    assert committed(app) == (0, 0)


def test_a_commit_the_database_refuses_takes_the_files_with_it(app, xray_paths, tmp_path):
    store = UploadStore(tmp_path / "flow")
    with app.app_context():
        session = db.session()
        session.execute(text("PRAGMA query_only = ON"))  # this connection now refuses every write
        with pytest.raises(OperationalError):
            record_upload(xray_paths[0].read_bytes(), None, predictor(), store, session)
        session.execute(text("PRAGMA query_only = OFF"))
    assert committed(app) == (0, 0) and files_in(store) == []


def _stored(app, data: bytes, tmp_path) -> tuple[Result, np.ndarray]:
    """One upload through the flow, as a fresh session reads it back, and the model's own map."""
    with app.app_context():
        row = record_upload(data, None, predictor(), UploadStore(tmp_path / "flow"), db.session())
        cam = predictor().predict(decode_image(data)).cam
    with app.app_context(), db.database().sessions() as fresh:
        return fresh.get(Result, row.id), cam


def test_the_subtype_and_the_map_grid_are_stored_with_the_result(
    make_app, subtype_model_dir, xray_paths, tmp_path
):
    app = make_app(MODEL_DIR=str(subtype_model_dir))
    card = ModelCard.load(subtype_model_dir)
    for path in xray_paths[:4]:
        stored, cam = _stored(app, path.read_bytes(), tmp_path)

        assert 0.0 <= stored.viral_probability <= 1.0
        assert stored.subtype_threshold == pytest.approx(card.subtype.threshold)
        if stored.label == "PNEUMONIA":
            assert stored.subtype == card.subtype.label(stored.viral_probability)
            assert stored.subtype in SUBTYPE_NAMES
        else:
            assert stored.subtype is None
        grid = np.array(grid_of(stored))
        assert grid.shape == cam.shape and grid.shape[0] >= 8 and grid.shape[1] >= 8
        np.testing.assert_array_equal(grid.astype(np.float32), cam)


def test_a_model_without_the_subtype_head_stores_its_map_and_no_subtype(
    make_app, model_copy, xray_paths, tmp_path
):
    replace(ModelCard.load(model_copy), subtype=None).write(model_copy)
    app = make_app(MODEL_DIR=str(model_copy))
    stored, cam = _stored(app, xray_paths[1].read_bytes(), tmp_path)

    assert (stored.viral_probability, stored.subtype, stored.subtype_threshold) == (None, None, None)
    np.testing.assert_array_equal(np.array(grid_of(stored), dtype=np.float32), cam)
