"""Several instances behind one router: two gunicorns from the Procfile on different ports share
one PostgreSQL database (STORAGE=database), one Redis for the rate limit, and SECRET_KEY.

Everything one instance writes must be readable through the other, and survive both being
restarted without their upload folders (each start gets a fresh one, removed when it stops).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest

from tests.procfile_harness import REPO, Server, procfile_server, request, run_load, verify_stored

psycopg = pytest.importorskip("psycopg", reason="psycopg (in requirements.txt) is not installed")

RESULTS = 20
PASSWORD = "shared by both instances"


@contextlib.contextmanager
def two_instances(env: dict[str, str]) -> Iterator[tuple[Server, Server]]:
    """Two Procfile servers (release step first) on the same settings."""
    with procfile_server(env) as first, procfile_server(env) as second:
        yield first, second


@pytest.fixture(scope="module")
def shared(model_dir, xray_dir, postgres, redis_url) -> dict[str, str]:
    """What a PaaS hands every instance: a fresh database (not yet migrated), Redis and a secret."""
    return {
        "DATABASE_URL": postgres.new_database().replace("postgresql+psycopg://", "postgres://"),
        "STORAGE": "database",
        "RATE_LIMIT_STORAGE_URI": redis_url,
        "SECRET_KEY": secrets.token_hex(16),
        "RATE_LIMIT": "",
        "MODEL_DIR": str(model_dir),
    }


def _incomplete_results(database_url: str) -> list[tuple]:
    """Rows that do not have exactly their two stored files (and files with no row)."""
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            """SELECT p.id, count(f.name) FROM predictions p
               LEFT JOIN stored_files f ON f.prediction_id = p.id GROUP BY p.id HAVING count(f.name) <> 2
               UNION ALL
               SELECT f.prediction_id, 0 FROM stored_files f
               LEFT JOIN predictions p ON p.id = f.prediction_id WHERE p.id IS NULL"""
        ).fetchall()


def _row_count(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT count(*) FROM predictions").fetchone()[0]


def _everything(server: Server, created: list[dict]) -> dict[str, tuple]:
    """Each result's page, API record, image and heatmap as one instance serves them."""
    served = {}
    for item in created:
        path = f"/predictions/{item['id']}"
        page = request(server.base_url + path)
        record = request(f"{server.base_url}/api/v1{path}")
        image, heatmap = (
            request(f"{server.base_url}{path}/image"),
            request(f"{server.base_url}{path}/heatmap"),
        )
        assert [page[0], record[0], image[0], heatmap[0]] == [200] * 4, item["id"]
        assert item["id"] in page[2].decode() and json.loads(record[2])["id"] == item["id"]
        served[item["id"]] = (json.loads(record[2])["probability"], image[2], heatmap[2])
    return served


def test_results_written_by_one_instance_are_served_by_the_other_and_survive_restarts(shared, xray_paths):
    with two_instances(shared) as (first, second):
        load = run_load(
            first.base_url, xray_paths[:RESULTS], clients=2, uploads_per_client=10, max_seconds=300
        )
        assert load.statuses == [201] * RESULTS, load.errors
        assert verify_stored(second.base_url, load.created) == []
        from_first, from_second = _everything(first, load.created), _everything(second, load.created)
        assert from_second == from_first
        history = request(f"{second.base_url}/history")[2].decode()
        assert re.search(rf"\b{RESULTS}\b", history)

    with two_instances(shared) as (first, second):
        assert _everything(second, load.created) == from_first
        assert _everything(first, load.created) == from_first
    assert _incomplete_results(shared["DATABASE_URL"]) == []


def test_a_worker_killed_during_uploads_leaves_no_row_without_its_bytes(shared, xray_paths):
    """SIGKILL every worker once uploads are flowing: in-flight uploads fail, none is half-stored."""
    with procfile_server(shared) as server:
        before = _row_count(shared["DATABASE_URL"])
        load = {}
        uploads = threading.Thread(
            target=lambda: load.setdefault(
                "result",
                run_load(server.base_url, xray_paths[:12], clients=4, uploads_per_client=3, max_seconds=300),
            )
        )
        uploads.start()
        deadline = time.monotonic() + 120
        while _row_count(shared["DATABASE_URL"]) == before and time.monotonic() < deadline:
            time.sleep(0.05)
        killed = server.gunicorn_pids()[1]
        for worker in killed:
            os.kill(worker, signal.SIGKILL)
        uploads.join(timeout=330)
        result = load["result"]

        # A killed worker lingers as a child until it has exited and the master has reaped it;
        # the uploads can finish before that, so give the master a moment to replace it.
        deadline = time.monotonic() + 30
        while set(killed) & set(server.gunicorn_pids()[1]) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not set(killed) & set(server.gunicorn_pids()[1])
        assert len(result.statuses) == 12 and 0 in result.statuses, result.statuses
        failed = len(result.statuses) - len(result.created)
        assert verify_stored(server.base_url, result.created, rows_before=before, unacknowledged=failed) == []
    assert _incomplete_results(shared["DATABASE_URL"]) == []


def flask_command(env: dict[str, str], *args: str, password: str | None = None) -> str:
    """`flask --app app ARGS` on the instances' database, as an operator runs it; its output."""
    done = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", *args],
        cwd=REPO,
        env={**os.environ, **env},
        input=f"{password}\n" if password else None,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout


def _csrf_token(page: bytes) -> str:
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.decode()).group(1)


def test_rate_limits_sessions_and_sign_out_are_shared_across_instances(shared):
    env = {**shared, "RATE_LIMIT": "4/minute"}
    with two_instances(env) as (first, second):
        flask_command(
            env,
            "users",
            "create",
            "ops@clinic.example",
            "--name",
            "Ops",
            "--role",
            "admin",
            password=PASSWORD,
        )
        bearer = {
            "Authorization": "Bearer " + flask_command(env, "users", "token", "ops@clinic.example").strip()
        }
        status, headers, body = request(f"{first.base_url}/login")
        cookie = headers["set-cookie"].split(";", 1)[0]
        form = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie}
        fields = {"csrf_token": _csrf_token(body), "email": "ops@clinic.example"}
        wrong = request(
            f"{first.base_url}/login", "POST", urlencode({**fields, "password": "guess"}).encode(), form
        )
        right = request(
            f"{first.base_url}/login", "POST", urlencode({**fields, "password": PASSWORD}).encode(), form
        )
        assert (wrong[0], right[0]) == (401, 303)
        signed_in = {"Cookie": right[1]["set-cookie"].split(";", 1)[0]}

        assert request(f"{second.base_url}/history", headers=signed_in)[0] == 200
        assert request(f"{second.base_url}/history", headers={"Cookie": cookie})[0] == 302

        empty = {**bearer, "Content-Type": "multipart/form-data; boundary=x"}
        uploads = [
            request(f"{s.base_url}/api/v1/predictions", "POST", b"--x--\r\n", empty)
            for s in (second, first, second, first, second, first)
        ]
        assert [u[0] for u in uploads] == [400, 400, 400, 400, 429, 429], "two sign-in posts do not count"
        assert all(0 < int(u[1]["retry-after"]) <= 60 for u in uploads[4:])

        _, account_headers, account = request(f"{second.base_url}/account", headers=signed_in)
        # The page put a fresh CSRF token in the session, so the cookie it sent back goes with it.
        with_token = {"Cookie": account_headers["set-cookie"].split(";", 1)[0]}
        token = urlencode({"csrf_token": _csrf_token(account)}).encode()
        signed_out = request(f"{second.base_url}/logout", "POST", token, {**form, **with_token})
        assert signed_out[0] == 303
        assert request(f"{first.base_url}/history", headers=signed_in)[0] == 302
