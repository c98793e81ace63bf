"""Rate limit, request ids, database outages and unexpected errors (accounts: test_accounts.py)."""

from __future__ import annotations

import io
import re

import pytest


def post(client, data: bytes = b"", name: str = "xray.jpeg", **kwargs):
    return client.post("/api/v1/predictions", data={"file": (io.BytesIO(data), name)}, **kwargs)


@pytest.mark.parametrize("bad", ["30", "x/minute", "30/fortnight"])
def test_a_malformed_rate_limit_stops_the_start(make_app, bad):
    with pytest.raises(ValueError, match="RATE_LIMIT must look like"):
        make_app(RATE_LIMIT=bad)


def test_an_empty_rate_limit_turns_it_off(make_app):
    client = make_app(RATE_LIMIT="").test_client()

    assert {post(client).status_code for _ in range(5)} == {400}


def test_uploads_over_the_rate_limit_get_429_with_retry_after(make_app):
    client = make_app(RATE_LIMIT="2/minute").test_client()

    answers = [post(client) for _ in range(3)]

    assert [answer.status_code for answer in answers] == [400, 400, 429]
    assert 0 < int(answers[2].headers["Retry-After"]) <= 60
    assert "too many" in answers[2].json["error"]
    assert client.get("/api/v1/predictions").status_code == 200
    other_client = post(client, environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert other_client.status_code == 400


def test_form_is_rate_limited_too(make_app):
    client = make_app(RATE_LIMIT="1/hour", WTF_CSRF_ENABLED=False).test_client()

    client.post("/", data={})
    refused = client.post("/", data={})

    assert refused.status_code == 429 and "Retry-After" in refused.headers
    assert 'name="file"' in refused.get_data(as_text=True)


def test_request_id_is_echoed_or_made(client):
    assert client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"] == "abc-123"
    made = client.get("/healthz", headers={"X-Request-ID": "bad id <script>"}).headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)


def test_unexpected_error_is_a_generic_500_with_the_request_id(client, xray_paths, monkeypatch, caplog):
    from pneumoscan.web.results import upload_flow

    def explode(*_args):
        raise RuntimeError("internal detail /srv/secret")

    monkeypatch.setattr(upload_flow, "overlay_heatmap", explode)
    response = post(client, xray_paths[0].read_bytes(), headers={"X-Request-ID": "trace-42"})

    assert response.status_code == 500
    assert "trace-42" in response.json["error"]
    text = response.get_data(as_text=True)
    assert "secret" not in text and "Traceback" not in text
    logged = [record for record in caplog.records if "trace-42" in record.getMessage()]
    assert logged and logged[0].exc_info


def test_database_outage_is_503_and_the_app_recovers(make_app, tmp_path):
    folder = tmp_path / "db"
    folder.mkdir()
    app = make_app(DATABASE_URL=f"sqlite:///{folder / 'pneumoscan.sqlite'}")
    client = app.test_client()
    assert client.get("/healthz").status_code == 200

    app.extensions["pneumoscan.db"].engine.dispose()
    folder.rename(tmp_path / "db-away")
    try:
        health = client.get("/healthz")
        listing = client.get("/api/v1/predictions")
        history = client.get("/history")
    finally:
        (tmp_path / "db-away").rename(folder)

    assert health.status_code == 503 and health.json["database"] == "unavailable"
    assert listing.status_code == 503 and "database" in listing.json["error"]
    assert history.status_code == 503 and "database is unavailable" in history.get_data(as_text=True)
    assert "Retry-After" in listing.headers
    assert client.get("/healthz").status_code == 200
    assert client.get("/api/v1/predictions").json["total"] == 0
