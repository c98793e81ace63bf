"""NUL bytes refused at input, refusal reasons counted by a fixed code, a full disk answered 507
and a failing health probe leaving no temporary file."""

from __future__ import annotations

import errno
import io

import pytest
from conftest import Accounts, add_result, fetch_csrf_token
from PIL import Image
from sqlalchemy import select

from pneumoscan.web import db
from pneumoscan.web import storage as stores
from pneumoscan.web.models import RefusalCount


@pytest.fixture(params=["sqlite", "postgresql"])
def any_app(request, make_app, tmp_path):
    if request.param == "sqlite":
        return make_app(WTF_CSRF_ENABLED=True)
    return make_app(DATABASE_URL=request.getfixturevalue("postgres").new_database(), WTF_CSRF_ENABLED=True)


def test_nul_bytes_in_sign_in_review_note_and_token_name_are_refused_with_400(any_app):
    users = Accounts(any_app)
    anonymous = any_app.test_client()
    form = {
        "csrf_token": fetch_csrf_token(anonymous, "/login"),
        "email": "a\x00@clinic.example",
        "password": "x",
    }
    assert anonymous.post("/login", data=form).status_code == 400

    token = {"Authorization": f"Bearer {users.token(users.clinician)}"}
    client = any_app.test_client()
    prediction_id = add_result(any_app)
    note = client.post(
        f"/api/v1/predictions/{prediction_id}/review",
        json={"finding": "NORMAL", "note": "a\x00b"},
        headers=token,
    )
    assert note.status_code == 400 and "NUL" in note.json["error"]

    signed_in = users.client(users.clinician)
    minted = signed_in.post(
        "/account/tokens", data={"csrf_token": fetch_csrf_token(signed_in, "/account"), "name": "x\x00y"}
    )
    assert minted.status_code == 400
    assert signed_in.get("/history?q=%00").status_code == 400


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (width, height)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_refusals_of_many_sizes_count_as_one_reason(app):
    client = app.test_client()
    for side in range(8, 28):
        answer = client.post(
            "/api/v1/predictions", data={"file": (io.BytesIO(_png(side, side + 1)), "x.png")}
        )
        assert answer.status_code in (400, 422), answer.json

    with app.app_context():
        reasons = db.session().scalars(select(RefusalCount.reason)).all()
    assert len(reasons) == 1 and "NxN" in reasons[0], reasons


def test_a_full_disk_answers_507_and_leaves_nothing(app, tmp_path, monkeypatch, xray_paths):
    def full(self, files, session=None):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(stores.UploadStore, "put", full)
    with open(xray_paths[0], "rb") as handle:
        answer = app.test_client().post("/api/v1/predictions", data={"file": (handle, "x.jpeg")})

    assert answer.status_code == 507 and "storage is full" in answer.json["error"]
    folder = tmp_path / "uploads"
    assert not folder.exists() or list(folder.iterdir()) == []


class _FullFile(io.BytesIO):
    def write(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")


def test_a_failing_health_probe_leaves_no_temporary_file(app, tmp_path, monkeypatch):
    real_open = open

    def open_then_fill(path, mode="r", *args, **kwargs):
        handle = real_open(path, mode, *args, **kwargs)
        if "w" in mode:
            handle.close()
            return _FullFile()
        return handle

    (tmp_path / "uploads").mkdir(exist_ok=True)
    monkeypatch.setattr(stores, "open", open_then_fill, raising=False)
    for _ in range(3):
        assert app.test_client().get("/healthz").status_code == 503
    assert list((tmp_path / "uploads").iterdir()) == []
