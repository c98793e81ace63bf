"""Deleting results (admins only, row and files together), RETENTION_DAYS purges, file names kept or not."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from conftest import Accounts
from sqlalchemy import func, select

from pneumoscan.web import db
from pneumoscan.web.models import AuditEvent, Result


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def upload(client, path, headers=None, name: str = "john_smith_cxr.jpeg") -> dict:
    with open(path, "rb") as handle:
        answer = client.post("/api/v1/predictions", data={"file": (handle, name)}, headers=headers or {})
    assert answer.status_code == 201, answer.get_json()
    return answer.json


def stored_files(app) -> list[str]:
    folder = Path(app.config["UPLOAD_FOLDER"])
    return sorted(path.name for path in folder.iterdir() if not path.name.startswith("."))


def urls(result: dict) -> list[str]:
    return [
        f"/predictions/{result['id']}",
        result["image_url"],
        result["heatmap_url"],
        f"/api/v1/predictions/{result['id']}",
    ]


def test_admin_deletes_through_the_api_and_the_result_is_gone_everywhere(app, users, xray_paths):
    clinician, admin = bearer(users.token(users.clinician)), bearer(users.token(users.admin))
    client = app.test_client()
    kept, doomed = upload(client, xray_paths[0], clinician), upload(client, xray_paths[1], clinician)

    refused = client.delete(f"/api/v1/predictions/{doomed['id']}", headers=clinician)
    assert refused.status_code == 403 and refused.json == {"error": "only an admin may do this"}
    assert len(stored_files(app)) == 4

    deleted = client.delete(f"/api/v1/predictions/{doomed['id']}", headers=admin)

    assert deleted.status_code == 204 and deleted.data == b""
    assert stored_files(app) == sorted([f"{kept['id']}.jpg", f"{kept['id']}.heatmap.png"])
    for url in urls(doomed)[1:]:
        assert client.get(url, headers=admin).status_code == 404, url
    assert users.client(users.admin).get(urls(doomed)[0]).status_code == 404
    assert client.delete(f"/api/v1/predictions/{doomed['id']}", headers=admin).status_code == 404
    assert client.get("/api/v1/predictions", headers=admin).json["total"] == 1
    with app.app_context():
        events = db.session().scalars(select(AuditEvent).where(AuditEvent.target_id == doomed["id"])).all()
    assert [(event.action, event.user_id) for event in events] == [
        ("upload", users.clinician.id),
        ("delete", users.admin.id),
    ]


def test_admin_deletes_from_the_result_page(app, users, xray_paths, csrf_token):
    admin, clinician = users.client(users.admin), users.client(users.clinician)
    result = upload(admin, xray_paths[0])
    page = f"/predictions/{result['id']}"
    assert "Delete this result" not in clinician.get(page).get_data(as_text=True)
    assert "Delete this result" in admin.get(page).get_data(as_text=True)
    token = csrf_token(admin, "/account")

    assert (
        clinician.post(f"{page}/delete", data={"csrf_token": csrf_token(clinician, "/account")}).status_code
        == 403
    )
    assert admin.post(f"{page}/delete", data={}).status_code == 400
    deleted = admin.post(f"{page}/delete", data={"csrf_token": token})

    assert deleted.status_code == 303 and deleted.headers["Location"] == "/history"
    assert stored_files(app) == []
    assert "result deleted" in admin.get("/history").get_data(as_text=True)
    assert admin.get(page).status_code == 404


def test_purge_deletes_results_older_than_the_retention_period(make_app, xray_paths):
    app = make_app(RETENTION_DAYS=30)
    client = app.test_client()
    old, recent = upload(client, xray_paths[0]), upload(client, xray_paths[1])
    with app.app_context():
        row = db.session().get(Result, old["id"])
        row.created_at -= timedelta(days=31)
        db.session().commit()

    answer = app.test_cli_runner().invoke(args=["purge"])

    assert answer.exit_code == 0 and "deleted 1 result(s) older than 30 day(s)" in answer.output
    assert stored_files(app) == sorted([f"{recent['id']}.jpg", f"{recent['id']}.heatmap.png"])
    with app.app_context():
        assert db.session().scalar(select(func.count()).select_from(Result)) == 1
        purged = db.session().scalar(select(AuditEvent).where(AuditEvent.action == "purge"))
    assert purged.target_id == old["id"] and purged.user_id is None
    assert client.get(f"/predictions/{old['id']}").status_code == 404


def test_purge_without_retention_days_keeps_everything(app, xray_paths):
    result = upload(app.test_client(), xray_paths[0])

    answer = app.test_cli_runner().invoke(args=["purge"])

    assert answer.exit_code == 0 and "nothing deleted" in answer.output
    assert (
        len(stored_files(app)) == 2
        and app.test_client().get(f"/predictions/{result['id']}").status_code == 200
    )


@pytest.mark.parametrize("keep", [False, True])
def test_file_names_are_shown_only_when_kept(make_app, xray_paths, keep):
    app = make_app(KEEP_FILENAMES=keep)
    users = Accounts(app)
    client = users.client(users.clinician)
    result = upload(client, xray_paths[0])
    page = client.get(f"/predictions/{result['id']}").get_data(as_text=True)
    history = client.get("/history").get_data(as_text=True)

    assert result["original_filename"] == ("john_smith_cxr.jpeg" if keep else None)
    assert ("john_smith" in page, "john_smith" in history) == (keep, keep)
    assert f"JPEG, {result['width']}×{result['height']} px" in page
    assert "Dr Cy Clinician" in page and "Dr Cy Clinician" in history
    with app.app_context():
        stored = db.session().get(Result, result["id"]).original_filename
    assert stored == ("john_smith_cxr.jpeg" if keep else "")
