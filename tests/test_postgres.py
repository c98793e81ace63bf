"""The app against a real PostgreSQL server through DATABASE_URL.

A throw-away cluster is made in a temporary folder and served on a loopback port for this
module only. `make test` installs Debian's postgresql; without its binaries the test skips.
PostgreSQL refuses to run as root, so as root the server runs as the `postgres` user.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest

psycopg = pytest.importorskip("psycopg", reason="psycopg (in requirements.txt) is not installed")


def _pg_bin() -> Path | None:
    found = shutil.which("initdb") or next(
        iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))[-1:]), None
    )
    return Path(found).parent if found else None


def _as_server_user(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url():
    """URL of an empty database on a fresh PostgreSQL cluster; the server stops afterwards."""
    bin_dir = _pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found; `make test` installs them")
    if os.geteuid() == 0:
        try:
            server_user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no `postgres` user to run the server as")
    workdir = Path(tempfile.mkdtemp(prefix="pneumoscan-pg-"))
    if os.geteuid() == 0:
        os.chown(workdir, server_user.pw_uid, server_user.pw_gid)
    data, port = workdir / "data", _free_port()
    subprocess.run(
        _as_server_user(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-U",
                "pneumoscan",
                "-A",
                "trust",
                "--no-sync",
                "-E",
                "UTF8",
            ]
        ),
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        _as_server_user(
            [
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data),
                "-o",
                options,
                "-l",
                str(workdir / "log"),
                "-w",
                "-t",
                "60",
                "start",
            ]
        ),
        check=True,
        capture_output=True,
    )
    try:
        with psycopg.connect(
            f"host=127.0.0.1 port={port} user=pneumoscan dbname=postgres", autocommit=True
        ) as conn:
            conn.execute("CREATE DATABASE pneumoscan_test")
        yield f"postgresql+psycopg://pneumoscan@127.0.0.1:{port}/pneumoscan_test"
    finally:
        subprocess.run(
            _as_server_user([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def pg_app(model_dir, postgres_url, tmp_path, monkeypatch, buffered_client_class):
    """The app configured only through the environment, as on a PaaS."""
    monkeypatch.setenv("DATABASE_URL", postgres_url)
    monkeypatch.setenv("UPLOAD_FOLDER", str(tmp_path / "uploads"))
    monkeypatch.setenv("SECRET_KEY", "test-postgres")
    monkeypatch.setenv("MODEL_DIR", str(model_dir))
    monkeypatch.setenv("ORT_THREADS", "1")
    monkeypatch.setenv("RATE_LIMIT", "")
    monkeypatch.delenv("ADMIN_PASSWORD_HASH", raising=False)
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
