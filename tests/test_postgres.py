"""The app against a real PostgreSQL server through DATABASE_URL (tests/servers.py starts it)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from conftest import PASSWORD, post_login, run_flask

psycopg = pytest.importorskip("psycopg", reason="psycopg (in requirements.txt) is not installed")


@pytest.fixture(scope="module")
def postgres_url(postgres, upgrade_database) -> str:
    """An empty database on the session's PostgreSQL server, brought to the code's schema."""
    url = postgres.new_database()
    upgrade_database(url)
    return url


@pytest.fixture
def pg_app(model_dir, postgres_url, tmp_path, monkeypatch, buffered_client_class):
    """The app configured only through the environment, as on a PaaS."""
    monkeypatch.setenv("DATABASE_URL", postgres_url)
    monkeypatch.setenv("UPLOAD_FOLDER", str(tmp_path / "uploads"))
    monkeypatch.setenv("SECRET_KEY", "test-postgres")
    monkeypatch.setenv("MODEL_DIR", str(model_dir))
    monkeypatch.setenv("ORT_THREADS", "1")
    monkeypatch.setenv("RATE_LIMIT", "")
    monkeypatch.setenv("OPEN_DEMO", "true")
    from pneumoscan.web import create_app, db

    app = create_app()
    app.test_client_class = buffered_client_class
    yield app
    app.extensions[db.EXTENSION].engine.dispose()


def _rows(postgres_url: str) -> list[tuple]:
    plain = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain) as conn:
        return conn.execute(
            "SELECT id, label, probability, image_path, heatmap_path FROM predictions"
        ).fetchall()


def test_api_upload_and_list_on_postgresql(xray_paths, pg_app, postgres_url):
    client = pg_app.test_client()
    assert client.get("/healthz").status_code == 200

    created = []
    for path in xray_paths[:2]:
        with open(path, "rb") as handle:
            reply = client.post(
                "/api/v1/predictions", data={"file": (handle, path.name)}, content_type="multipart/form-data"
            )
        assert reply.status_code == 201, reply.get_json()
        created.append(reply.get_json())

    listing = client.get("/api/v1/predictions?limit=10").get_json()
    assert listing["total"] == 2
    assert [item["id"] for item in listing["items"]] == [created[1]["id"], created[0]["id"]]

    rows = {row[0]: row for row in _rows(postgres_url)}
    assert set(rows) == {item["id"] for item in created}
    for item in created:
        assert rows[item["id"]][1] == item["label"]
        assert rows[item["id"]][2] == pytest.approx(item["probability"])
        fetched = client.get(f"/api/v1/predictions/{item['id']}")
        assert fetched.status_code == 200 and fetched.get_json()["id"] == item["id"]
        assert client.get(item["heatmap_url"]).data.startswith(b"\x89PNG")
        assert client.get(item["image_url"]).status_code == 200


def test_concurrent_writers_on_postgresql(xray_paths, pg_app, postgres_url):
    """Four clients at once: every upload is stored exactly once."""
    before = len(_rows(postgres_url))
    statuses: list[int] = []

    def upload(path: Path) -> None:
        with open(path, "rb") as handle:
            reply = pg_app.test_client().post(
                "/api/v1/predictions", data={"file": (handle, path.name)}, content_type="multipart/form-data"
            )
        statuses.append(reply.status_code)

    threads = [threading.Thread(target=upload, args=(path,)) for path in xray_paths[2:6]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [201] * len(threads)
    assert len(_rows(postgres_url)) == before + len(threads)
    assert pg_app.test_client().get("/api/v1/predictions").get_json()["total"] == before + len(threads)


def _scalar(postgres_url: str, sql: str) -> object:
    plain = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain) as conn:
        return conn.execute(sql).fetchone()[0]


def test_accounts_tokens_audit_and_deletion_on_postgresql(xray_paths, pg_app, postgres_url):
    """Runs last: once it has made accounts, the app needs credentials."""
    for email, role in (("ada@clinic.example", "admin"), ("cy@clinic.example", "clinician")):
        made = run_flask(
            pg_app, "users", "create", email, "--name", email[:2], "--role", role, password=PASSWORD
        )
        assert made.exit_code == 0, made.output
    token = run_flask(pg_app, "users", "token", "cy@clinic.example").output.strip()

    with open(xray_paths[0], "rb") as handle:
        created = pg_app.test_client().post(
            "/api/v1/predictions",
            data={"file": (handle, "x.jpeg")},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert created.status_code == 201 and created.json["uploaded_by"]["name"] == "cy"
    prediction_id = created.json["id"]
    admin = pg_app.test_client()
    wrong = post_login(admin, "ada@clinic.example", "no")
    right = post_login(admin, "ada@clinic.example")
    assert (wrong.status_code, right.status_code) == (401, 303)
    assert _scalar(postgres_url, "SELECT count(*) FROM user_sessions") == 1
    assert (
        _scalar(postgres_url, "SELECT failures FROM login_throttles WHERE bucket = 'address:127.0.0.1'") == 1
    )
    assert _scalar(postgres_url, "SELECT count(*) FROM api_tokens WHERE revoked_at IS NULL") == 1
    uploader = "SELECT u.email FROM predictions p JOIN users u ON u.id = p.uploaded_by_id WHERE p.id = '{}'"
    assert _scalar(postgres_url, uploader.format(prediction_id)) == "cy@clinic.example"

    same_site = {"Origin": "http://localhost"}  # a cookie-carried API write, as a browser sends it
    assert admin.delete(f"/api/v1/predictions/{prediction_id}", headers=same_site).status_code == 204
    assert admin.get(f"/api/v1/predictions/{prediction_id}").status_code == 404
    assert _scalar(postgres_url, f"SELECT count(*) FROM predictions WHERE id = '{prediction_id}'") == 0
    actions = "SELECT string_agg(action, ',' ORDER BY id) FROM audit_events WHERE target_id = '{}'"
    assert _scalar(postgres_url, actions.format(prediction_id)) == "upload,delete"
    assert _scalar(postgres_url, "SELECT count(*) FROM audit_events WHERE action = 'sign-in-failed'") == 1
    assert pg_app.test_client().get("/api/v1/predictions").status_code == 401
