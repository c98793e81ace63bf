"""The adversarial review's findings found: overflowing numbers, HEAD, Host header, health,
orphans on a clock, slow request bodies."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import pytest
from werkzeug.exceptions import RequestTimeout

from pneumoscan.web.server.body_deadline import DeadlineInput

ORPHAN_ID = "22222222-2222-4222-8222-222222222222"


def post(client, data: bytes, **kwargs):
    return client.post("/api/v1/predictions", data={"file": (io.BytesIO(data), "xray.jpeg")}, **kwargs)


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/predictions?offset=9223372036854775808",
        "/api/v1/predictions?limit=99999999999999999999999",
        "/api/v1/predictions?offset=1000000001",
        "/history?page=99999999999999999999999",
        "/history?page=9223372036854775807",
        "/history?page=0",
        "/history?page=x",
    ],
)
def test_overflowing_or_bad_query_numbers_are_400(client, path):
    response = client.get(path)
    assert response.status_code == 400
    assert response.is_json == path.startswith("/api/")


def test_largest_accepted_numbers_give_empty_pages(client):
    assert client.get("/api/v1/predictions?offset=1000000000").json["items"] == []
    assert "No results on this page" in client.get("/history?page=50000000").get_data(as_text=True)


def test_head_works_wherever_get_does(client, xray_paths):
    created = post(client, xray_paths[0].read_bytes()).json
    paths = [
        "/",
        "/history",
        "/healthz",
        "/api/v1/predictions",
        f"/api/v1/predictions/{created['id']}",
        f"/predictions/{created['id']}",
        created["image_url"],
        created["heatmap_url"],
        "/static/style.css",
    ]
    for path in paths:
        with client.get(path) as get, client.head(path) as head:
            assert head.status_code == get.status_code == 200, path
            assert head.data == b"" and head.headers["Content-Type"] == get.headers["Content-Type"], path


def test_urls_never_come_from_the_host_header(client, xray_paths):
    evil = {"Host": "evil.example", "X-Forwarded-Host": "evil.example"}
    created = post(client, xray_paths[0].read_bytes(), headers=evil)
    listing = client.get("/api/v1/predictions", headers=evil)

    for response in (created, listing, client.get(f"/api/v1/predictions/{created.json['id']}", headers=evil)):
        assert b"evil.example" not in response.data
        assert "evil.example" not in str(response.headers)
    assert created.json["image_url"] == f"/predictions/{created.json['id']}/image"


def test_public_url_makes_absolute_urls(make_app, xray_paths):
    client = make_app(PUBLIC_URL="https://scan.example.org/").test_client()
    created = post(client, xray_paths[0].read_bytes(), headers={"Host": "evil.example"}).json
    assert created["heatmap_url"] == f"https://scan.example.org/predictions/{created['id']}/heatmap"


def test_health_is_503_naming_a_read_only_database(make_app, tmp_path):
    make_app().test_client().get("/healthz")
    read_only = f"sqlite:///file:{tmp_path / 'pneumoscan.sqlite'}?mode=ro&uri=true"
    response = make_app(DATABASE_URL=read_only).test_client().get("/healthz")

    assert response.status_code == 503
    assert response.json["database"] == "unavailable" and response.json["storage"] == "ok"


def test_health_is_503_naming_storage_that_is_gone(app, client, tmp_path):
    assert client.get("/healthz").status_code == 200
    folder = Path(app.config["UPLOAD_FOLDER"])
    folder.rename(tmp_path / "away")
    folder.write_bytes(b"not a folder")

    response = client.get("/healthz")

    assert response.status_code == 503
    assert (response.json["status"], response.json["database"], response.json["storage"]) == (
        "unavailable",
        "ok",
        "unavailable",
    )


def test_health_leaves_no_row_and_no_file(app, client):
    for _ in range(3):
        assert client.get("/healthz").status_code == 200
    assert client.get("/api/v1/predictions").json["total"] == 0
    assert os.listdir(app.config["UPLOAD_FOLDER"]) == []


def _plant_orphan(folder: Path, age: float) -> list[Path]:
    files = [folder / f"{ORPHAN_ID}.jpg", folder / f"{ORPHAN_ID}.heatmap.png"]
    for path in files:
        path.write_bytes(b"patient pixels")
        os.utime(path, (time.time() - age, time.time() - age))
    return files


def test_orphans_are_swept_on_the_clock_by_a_running_worker(make_app, xray_paths):
    app = make_app(SWEEP_SECONDS=900)
    client = app.test_client()
    kept = post(client, xray_paths[0].read_bytes()).json["id"]
    orphans = _plant_orphan(Path(app.config["UPLOAD_FOLDER"]), 3600)

    client.get("/healthz")
    assert all(path.exists() for path in orphans), "not due yet"
    app.extensions["pneumoscan.sweeper"].due = time.monotonic()
    client.get("/healthz")

    assert not any(path.exists() for path in orphans)
    assert client.get(f"/api/v1/predictions/{kept}").status_code == 200
    with client.get(f"/predictions/{kept}/image") as image:
        assert image.status_code == 200


def test_sweep_command_removes_orphans_of_any_age(app):
    orphans = _plant_orphan(Path(app.config["UPLOAD_FOLDER"]), 3 * 86400)

    result = app.test_cli_runner().invoke(args=["sweep"])

    assert result.exit_code == 0 and "removed 2 file(s)" in result.output
    assert not any(path.exists() for path in orphans)


class _Trickle(io.RawIOBase):
    """A request body that arrives one byte per read, each read taking `pause` seconds."""

    def __init__(self, data: bytes, pause: float) -> None:
        self.data, self.pause = data, pause

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        time.sleep(self.pause)
        if not self.data:
            return 0
        buffer[0], self.data = self.data[0], self.data[1:]
        return 1


def test_body_read_after_the_deadline_is_refused():
    stream = DeadlineInput(io.BytesIO(b"abc"), time.monotonic() + 60, None)
    assert stream.read(2) == b"ab"
    stream.deadline = time.monotonic() - 1
    with pytest.raises(RequestTimeout):
        stream.read(1)


def test_trickled_upload_gets_408(make_app):
    client = make_app(BODY_TIMEOUT=1).test_client()
    body = b'--b\r\nContent-Disposition: form-data; name="file"; filename="x.jpeg"\r\n\r\n' + b"x" * 200
    started = time.monotonic()
    response = client.post(
        "/api/v1/predictions",
        environ_overrides={
            "wsgi.input": _Trickle(body, 0.02),
            "CONTENT_LENGTH": str(len(body) + 10),
            "CONTENT_TYPE": "multipart/form-data; boundary=b",
        },
    )
    assert response.status_code == 408 and response.is_json
    assert time.monotonic() - started < 3


def test_scoring_slots_bound_how_many_uploads_are_decoded_at_once(make_app, xray_paths, monkeypatch):
    import threading

    from pneumoscan.web.results import upload_flow

    app = make_app(SCORING_SLOTS=1)
    busy, peak, lock = [0], [0], threading.Lock()
    real = upload_flow.record_upload

    def counted(*args):
        with lock:
            busy[0] += 1
            peak[0] = max(peak[0], busy[0])
        time.sleep(0.05)
        try:
            return real(*args)
        finally:
            with lock:
                busy[0] -= 1

    monkeypatch.setattr(upload_flow, "record_upload", counted)
    data = xray_paths[0].read_bytes()
    statuses: list[int] = []
    threads = [
        threading.Thread(target=lambda: statuses.append(post(app.test_client(), data).status_code))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert statuses == [201] * 4
    assert peak[0] == 1


def test_once_an_account_exists_health_names_no_part_but_still_checks_them(app, users, tmp_path):
    client = app.test_client()
    assert client.get("/healthz").json == {"status": "ok"}
    folder = Path(app.config["UPLOAD_FOLDER"])
    folder.rename(tmp_path / "away")
    folder.write_bytes(b"not a folder")

    response = client.get("/healthz")

    assert response.status_code == 503 and response.json == {"status": "unavailable"}


def test_once_an_account_exists_a_read_only_database_is_a_bare_503(make_app, tmp_path):
    from conftest import Accounts

    Accounts(make_app())
    read_only = f"sqlite:///file:{tmp_path / 'pneumoscan.sqlite'}?mode=ro&uri=true"
    response = make_app(DATABASE_URL=read_only).test_client().get("/healthz")

    assert response.status_code == 503 and response.json == {"status": "unavailable"}
