"""STORAGE=s3 against moto's standalone S3 server: the same guarantees as the folder and table stores.

No row without its objects (a failed commit removes them), no object without its row (the sweep),
files served only through the app, `storage migrate` in and out, and backups that carry them.
"""

from __future__ import annotations

import uuid
import zipfile

import boto3
import pytest
from sqlalchemy.orm import Session

from pneumoscan.web import store_names
from pneumoscan.web.results.sweeper import sweep_orphans
from pneumoscan.web.s3_storage import S3Store
from tests.procfile_harness import procfile_server, verify_stored
from tests.procfile_harness import upload as upload_to
from tests.servers import moto_s3_server
from tests.stored_results import all_rows, fetched, upload


@pytest.fixture(scope="module")
def s3_endpoint() -> str:
    with moto_s3_server() as url:
        yield url


@pytest.fixture
def bucket(s3_endpoint, monkeypatch) -> str:
    """A new empty bucket on the moto server, with the AWS_* variables boto3 reads set for it."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    name = f"pneumoscan-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=name)
    return name


@pytest.fixture
def s3_app(make_app, s3_endpoint, bucket):
    def build(**overrides):
        s3 = {"S3_BUCKET": bucket, "S3_ENDPOINT_URL": s3_endpoint, "S3_PREFIX": "scans"}
        return make_app(**{"STORAGE": "s3", **s3, **overrides})

    return build


def keys(endpoint: str, bucket: str) -> list[str]:
    listed = boto3.client("s3", endpoint_url=endpoint).list_objects_v2(Bucket=bucket)
    return sorted(item["Key"] for item in listed.get("Contents", []))


def test_uploads_are_objects_served_again_after_a_restart_without_the_upload_folder(
    s3_app, s3_endpoint, bucket, tmp_path, xray_paths
):
    first = s3_app()
    items = [upload(first.test_client(), path) for path in xray_paths[:5]]
    before = {item["id"]: fetched(first.test_client(), item) for item in items}

    stored = keys(s3_endpoint, bucket)
    assert len(stored) >= 10 and all(key.startswith("scans/") for key in stored)
    assert not (tmp_path / "uploads").exists() or not any((tmp_path / "uploads").iterdir())
    restarted = s3_app(UPLOAD_FOLDER=str(tmp_path / "gone"))
    assert {item["id"]: fetched(restarted.test_client(), item) for item in items} == before
    assert all(image and heatmap for image, heatmap in before.values())


def test_served_files_carry_the_app_caching_headers_not_a_bucket_url(s3_app, xray_paths):
    client = s3_app().test_client()
    item = upload(client, xray_paths[0])

    reply = client.get(item["image_url"])
    assert reply.status_code == 200 and "private" in reply.headers["Cache-Control"]
    assert "s3" not in item["image_url"] and "scans/" not in item["image_url"]


def test_a_failed_commit_leaves_no_object(s3_app, s3_endpoint, bucket, xray_paths, monkeypatch):
    app = s3_app()

    def refuse(self):
        raise OSError("database went away")

    monkeypatch.setattr(Session, "commit", refuse)
    with open(xray_paths[0], "rb") as handle:
        reply = app.test_client().post("/api/v1/predictions", data={"file": (handle, "x.jpeg")})
    monkeypatch.undo()

    assert reply.status_code >= 500
    assert all_rows(app) == [] and keys(s3_endpoint, bucket) == []


def test_a_put_that_fails_halfway_removes_what_it_placed(s3_endpoint, bucket, monkeypatch):
    store = S3Store(bucket, "p", s3_endpoint)
    real_put, calls = store.client.put_object, []

    def fail_second(**kwargs):
        calls.append(kwargs["Key"])
        if len(calls) == 2:
            raise OSError("connection lost")
        return real_put(**kwargs)

    monkeypatch.setattr(store.client, "put_object", fail_second)
    with pytest.raises(OSError, match="connection lost"):
        store.put({"a.jpg": b"1", "a.heatmap.png": b"2"})
    assert keys(s3_endpoint, bucket) == []


def test_the_sweep_removes_objects_without_a_row_and_keeps_the_others(
    s3_app, s3_endpoint, bucket, xray_paths, monkeypatch
):
    app = s3_app()
    item = upload(app.test_client(), xray_paths[0])
    store = app.extensions["pneumoscan.store"]
    orphan = str(uuid.uuid4())
    store.put({f"{orphan}.jpg": b"pixels", f"{orphan}.heatmap.png": b"map"})
    monkeypatch.setattr(store_names, "ORPHAN_SECONDS", -60)

    from pneumoscan.web import db

    with app.app_context():
        removed = sweep_orphans(store, db.session(), window=None)

    assert removed == 2
    assert {key.split("/")[1].split(".")[0] for key in keys(s3_endpoint, bucket)} == {item["id"]}


def test_names_that_are_not_ours_are_never_read(s3_endpoint, bucket):
    store = S3Store(bucket, "", s3_endpoint)
    store.client.put_object(Bucket=bucket, Key="../x.png", Body=b"no")
    assert store.read("../x.png", None) is None and store.read(f"{uuid.uuid4()}.png", None) is None


def test_health_names_a_missing_bucket_unavailable(s3_app):
    reply = s3_app(S3_BUCKET="no-such-bucket").test_client().get("/readyz")
    assert reply.status_code == 503 and reply.get_json()["storage"] == "unavailable"
    assert s3_app().test_client().get("/readyz").status_code == 200


def test_storage_migrate_to_s3_and_back(make_app, s3_app, s3_endpoint, bucket, tmp_path, xray_paths):
    s3 = {"S3_BUCKET": bucket, "S3_ENDPOINT_URL": s3_endpoint, "S3_PREFIX": "scans"}
    folder_app = make_app(**s3)
    items = [upload(folder_app.test_client(), path) for path in xray_paths[:2]]
    before = {item["id"]: fetched(folder_app.test_client(), item) for item in items}

    to_s3 = folder_app.test_cli_runner().invoke(args=["storage", "migrate", "--to", "s3"])
    assert to_s3.exit_code == 0 and "copied 4 file(s), 0 already" in to_s3.output, to_s3.output
    served = s3_app(UPLOAD_FOLDER=str(tmp_path / "gone"))
    assert {item["id"]: fetched(served.test_client(), item) for item in items} == before

    back = s3_app(UPLOAD_FOLDER=str(tmp_path / "back"))
    to_folder = back.test_cli_runner().invoke(args=["storage", "migrate", "--to", "filesystem"])
    assert to_folder.exit_code == 0 and "copied 4 file(s), 0 already" in to_folder.output
    again = make_app(UPLOAD_FOLDER=str(tmp_path / "back"))
    assert {item["id"]: fetched(again.test_client(), item) for item in items} == before


def test_a_backup_carries_the_objects(s3_app, tmp_path, xray_paths):
    app = s3_app()
    item = upload(app.test_client(), xray_paths[0])
    archive = tmp_path / "backup.zip"

    exported = app.test_cli_runner().invoke(args=["export-data", str(archive)])

    assert exported.exit_code == 0, exported.output
    with zipfile.ZipFile(archive) as bundle:
        names = set(bundle.namelist())
    assert {f"files/{item['id']}.jpg", f"files/{item['id']}.heatmap.png"} <= names


def test_procfile_servers_keep_every_file_in_the_bucket_across_a_restart(
    s3_endpoint, bucket, tmp_path, model_dir, xray_paths
):
    """The Bar as a PaaS sees it: 5 uploads to the Procfile's server, at least 10 objects, then a
    new server (a new upload folder: the old one is gone with its temporary folder) serves them all."""
    env = {
        "STORAGE": "s3",
        "S3_BUCKET": bucket,
        "S3_ENDPOINT_URL": s3_endpoint,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'shared.sqlite'}",
        "WEB_CONCURRENCY": "1",
        "ORT_THREADS": "1",
    }
    with procfile_server(env) as first:
        created = [upload_to(first.base_url, path) for path in xray_paths[:5]]
        assert [status for status, _, _ in created] == [201] * 5
        first_folder = first.workdir / "uploads"
    assert len(keys(s3_endpoint, bucket)) >= 10
    assert not first_folder.exists()
    with procfile_server(env) as restarted:
        assert verify_stored(restarted.base_url, [reply for _, reply, _ in created]) == []
