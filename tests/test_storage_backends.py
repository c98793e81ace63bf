"""STORAGE=database keeps images and heatmaps in their own table; commands move results between the
stores and carry them to another host in a zip file."""

from __future__ import annotations

import json
import zipfile

import pytest
from conftest import PASSWORD, Accounts, run_flask
from sqlalchemy import func, select

from pneumoscan.web import db
from pneumoscan.web.models import AuditEvent, Result
from tests.stored_results import all_rows, fetched, fetched_as, stored_files, upload, upload_as


@pytest.fixture
def db_app(make_app):
    return make_app(STORAGE="database")


def test_database_storage_keeps_the_files_in_the_table_and_serves_them(db_app, tmp_path, xray_paths):
    client = db_app.test_client()
    item = upload(client, xray_paths[0])

    files = stored_files(db_app)
    assert set(files) == {f"{item['id']}.jpg", f"{item['id']}.heatmap.png"}
    assert not (tmp_path / "uploads").exists() or not any((tmp_path / "uploads").iterdir())
    image = client.get(item["image_url"])
    heatmap = client.get(item["heatmap_url"])
    assert image.status_code == 200 and image.data == files[f"{item['id']}.jpg"]
    assert image.headers["Content-Type"] == "image/jpeg" and heatmap.headers["Content-Type"] == "image/png"
    assert heatmap.data == files[f"{item['id']}.heatmap.png"] and heatmap.data.startswith(b"\x89PNG")
    assert image.cache_control.private and image.cache_control.max_age == 86400
    assert image.headers["X-Content-Type-Options"] == "nosniff" and image.headers["Last-Modified"]
    again = client.get(item["image_url"], headers={"If-None-Match": image.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""


def test_database_storage_failed_commit_leaves_neither_row_nor_bytes(db_app, xray_paths, monkeypatch):
    from sqlalchemy.exc import OperationalError
    from sqlalchemy.orm import Session

    def refuse(self):
        raise OperationalError("INSERT", {}, Exception("disk I/O error"))

    monkeypatch.setattr(Session, "commit", refuse)
    with open(xray_paths[0], "rb") as handle:
        reply = db_app.test_client().post("/api/v1/predictions", data={"file": (handle, "x.jpeg")})
    monkeypatch.undo()

    assert reply.status_code == 503
    assert all_rows(db_app) == [] and stored_files(db_app) == {}


def test_an_unknown_storage_stops_the_start(make_app):
    with pytest.raises(ValueError, match="STORAGE='tape': Input should be 'filesystem', 'database' or 's3'"):
        make_app(STORAGE="tape")


def test_storage_migrate_copies_every_result_and_can_be_run_again(make_app, tmp_path, xray_paths):
    folder_app = make_app()
    items = [upload(folder_app.test_client(), path) for path in xray_paths[:2]]
    before = {item["id"]: fetched(folder_app.test_client(), item) for item in items}

    first = folder_app.test_cli_runner().invoke(args=["storage", "migrate", "--to", "database"])
    again = folder_app.test_cli_runner().invoke(args=["storage", "migrate", "--to", "database"])

    assert first.exit_code == 0 and "copied 4 file(s), 0 already" in first.output
    assert again.exit_code == 0 and "copied 0 file(s), 4 already" in again.output
    db_app = make_app(STORAGE="database", UPLOAD_FOLDER=str(tmp_path / "gone"))
    assert {item["id"]: fetched(db_app.test_client(), item) for item in items} == before

    back = make_app(STORAGE="database", UPLOAD_FOLDER=str(tmp_path / "back"))
    result = back.test_cli_runner().invoke(args=["storage", "migrate", "--to", "filesystem"])
    assert result.exit_code == 0 and "copied 4 file(s), 0 already" in result.output
    served = make_app(UPLOAD_FOLDER=str(tmp_path / "back"))
    assert {item["id"]: fetched(served.test_client(), item) for item in items} == before


def test_an_interrupted_storage_migrate_finishes_when_run_again(make_app, xray_paths, monkeypatch):
    from pneumoscan.web.storage import DatabaseStore

    app = make_app()
    items = [upload(app.test_client(), path) for path in xray_paths[:2]]
    real_put, calls = DatabaseStore.put, []

    def fail_second(self, files, session):
        calls.append(files)
        if len(calls) == 2:
            raise OSError("connection lost")
        return real_put(self, files, session)

    monkeypatch.setattr(DatabaseStore, "put", fail_second)
    interrupted = app.test_cli_runner().invoke(args=["storage", "migrate", "--to", "database"])
    monkeypatch.undo()
    assert interrupted.exit_code != 0 and len(stored_files(app)) == 2

    resumed = app.test_cli_runner().invoke(args=["storage", "migrate", "--to", "database"])

    assert resumed.exit_code == 0 and "copied 2 file(s), 2 already" in resumed.output
    assert {name.split(".", 1)[0] for name in stored_files(app)} == {item["id"] for item in items}


def test_export_then_import_into_a_fresh_database_gives_the_same_rows_and_bytes(
    make_app, tmp_path, xray_paths, postgres
):
    source = make_app()
    items = [upload(source.test_client(), path) for path in xray_paths[:3]]
    archive = tmp_path / "backup.zip"
    exported = source.test_cli_runner().invoke(args=["export-data", str(archive)])
    assert exported.exit_code == 0 and "exported 3 result(s)" in exported.output
    with zipfile.ZipFile(archive) as bundle:
        assert len(bundle.namelist()) == 5 + 2 * len(items)

    for storage in ("filesystem", "database"):
        target = make_app(
            DATABASE_URL=postgres.new_database(), STORAGE=storage, UPLOAD_FOLDER=str(tmp_path / storage)
        )
        imported = target.test_cli_runner().invoke(args=["import-data", str(archive)])
        assert imported.exit_code == 0 and "imported 3 result(s)" in imported.output, imported.output
        assert all_rows(target) == all_rows(source)
        for item in items:
            assert fetched(target.test_client(), item) == fetched(source.test_client(), item)
            assert target.test_client().get(f"/api/v1/predictions/{item['id']}").json == item
        refused = target.test_cli_runner().invoke(args=["import-data", str(archive)])
        assert refused.exit_code != 0 and "needs an empty one" in refused.output
        with target.app_context():
            assert db.session().scalar(select(func.count()).select_from(Result)) == 3


def test_the_subtype_and_the_map_grid_travel_with_a_backup(make_app, subtype_model_dir, tmp_path, xray_paths):
    source = make_app(MODEL_DIR=str(subtype_model_dir))
    for path in xray_paths[:2]:
        upload(source.test_client(), path)
    archive = tmp_path / "backup.zip"
    assert run_flask(source, "export-data", str(archive)).exit_code == 0
    target = make_app(
        MODEL_DIR=str(subtype_model_dir),
        DATABASE_URL=f"sqlite:///{tmp_path / 'target.sqlite'}",
        UPLOAD_FOLDER=str(tmp_path / "t"),
    )

    assert run_flask(target, "import-data", str(archive)).exit_code == 0

    rows = all_rows(target)
    assert rows == all_rows(source)
    assert all(row["viral_probability"] is not None and row["subtype_threshold"] is not None for row in rows)
    assert all(json.loads(row["map_grid"]) for row in rows)


def test_an_archive_from_before_the_subtype_imports_with_those_columns_empty(make_app, tmp_path, xray_paths):
    added = ("viral_probability", "subtype", "subtype_threshold", "map_grid")
    source = make_app()
    item = upload(source.test_client(), xray_paths[0])
    archive, older = tmp_path / "backup.zip", tmp_path / "older.zip"
    assert run_flask(source, "export-data", str(archive)).exit_code == 0
    with zipfile.ZipFile(archive) as bundle, zipfile.ZipFile(older, "w") as rewritten:
        for name in bundle.namelist():
            data = bundle.read(name)
            if name == "predictions.json":
                records = [{k: v for k, v in record.items() if k not in added} for record in json.loads(data)]
                data = json.dumps(records).encode()
            rewritten.writestr(name, data)
    target = make_app(
        DATABASE_URL=f"sqlite:///{tmp_path / 'target.sqlite'}", UPLOAD_FOLDER=str(tmp_path / "t")
    )

    imported = run_flask(target, "import-data", str(older))

    assert imported.exit_code == 0, imported.output
    (row,) = all_rows(target)
    assert row["id"] == item["id"] and all(row[key] is None for key in added)
    assert fetched(target.test_client(), item) == fetched(source.test_client(), item)


def test_a_result_missing_its_file_stops_the_export(make_app, tmp_path, xray_paths):
    app = make_app()
    item = upload(app.test_client(), xray_paths[0])
    (tmp_path / "uploads" / f"{item['id']}.heatmap.png").unlink()

    result = app.test_cli_runner().invoke(args=["export-data", str(tmp_path / "out.zip")])

    assert result.exit_code != 0 and f"{item['id']}.heatmap.png is missing" in result.output


def test_database_storage_health_writes_a_stored_file_row_in_the_rolled_back_transaction(make_app, tmp_path):
    not_a_folder = tmp_path / "not-a-folder"
    not_a_folder.write_bytes(b"")
    app = make_app(STORAGE="database", UPLOAD_FOLDER=str(not_a_folder))
    client = app.test_client()
    for _ in range(3):
        response = client.get("/healthz")
        assert response.status_code == 200, response.json
        assert (response.json["database"], response.json["storage"]) == ("ok", "ok")
    assert all_rows(app) == [] and stored_files(app) == {}

    read_only = f"sqlite:///file:{tmp_path / 'pneumoscan.sqlite'}?mode=ro&uri=true"
    response = make_app(STORAGE="database", DATABASE_URL=read_only).test_client().get("/healthz")
    assert response.status_code == 503
    assert (response.json["database"], response.json["storage"]) == ("unavailable", "unavailable")


def test_the_sweep_is_for_the_folder_store_only(db_app):
    assert db_app.extensions.get("pneumoscan.sweeper") is None
    result = db_app.test_cli_runner().invoke(args=["sweep"])
    assert result.exit_code == 0 and "nothing to sweep" in result.output


def test_deleting_a_result_removes_its_rows_from_the_database_store(db_app, xray_paths):
    users = Accounts(db_app)
    admin = {"Authorization": f"Bearer {users.token(users.admin)}"}
    client = db_app.test_client()
    kept, doomed = (upload_as(client, path, admin) for path in xray_paths[:2])

    assert client.delete(f"/api/v1/predictions/{doomed['id']}", headers=admin).status_code == 204

    assert sorted(stored_files(db_app)) == sorted([f"{kept['id']}.jpg", f"{kept['id']}.heatmap.png"])
    assert client.get(doomed["image_url"], headers=admin).status_code == 404
    assert fetched_as(client, kept, admin)[1].startswith(b"\x89PNG")


def test_export_is_audited_and_import_keeps_each_uploader_by_email(make_app, tmp_path, xray_paths):
    source = make_app()
    users = Accounts(source)
    clinician = {"Authorization": f"Bearer {users.token(users.clinician)}"}
    item = upload_as(source.test_client(), xray_paths[0], clinician)
    archive = tmp_path / "backup.zip"

    assert run_flask(source, "export-data", str(archive)).exit_code == 0
    with source.app_context():
        exported = db.session().scalar(select(AuditEvent).where(AuditEvent.action == "export"))
    assert exported.detail == "1 result(s) to backup.zip" and exported.user_id is None

    target = make_app(
        DATABASE_URL=f"sqlite:///{tmp_path / 'target.sqlite'}", UPLOAD_FOLDER=str(tmp_path / "t")
    )
    run_flask(target, "users", "create", "first@clinic.example", "--name", "First", password=PASSWORD)
    moved = Accounts(target)
    assert moved.clinician.id != users.clinician.id
    assert run_flask(target, "import-data", str(archive)).exit_code == 0
    token = {"Authorization": f"Bearer {moved.token(moved.admin)}"}
    record = target.test_client().get(f"/api/v1/predictions/{item['id']}", headers=token).json
    assert record["uploaded_by"] == {"id": moved.clinician.id, "name": "Dr Cy Clinician"}
