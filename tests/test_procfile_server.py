"""The Procfile's own command serves the app, as a PaaS would start it.

gunicorn runs from the Procfile on a loopback port with a throw-away database and upload
folder (tests/procfile_harness.py does the starting); a few concurrent clients upload real X-rays
and every upload must be stored once with both of its files.
"""

from __future__ import annotations

import json

import pytest

from pneumoscan.model_card import ModelCard
from tests.procfile_harness import multipart, procfile_server, request, run_load, slow_clients, verify_stored


@pytest.fixture(scope="module")
def server(model_dir, xray_dir):
    with procfile_server() as started:
        yield started


def test_procfile_server_is_healthy_with_the_committed_model(server, model_dir):
    status, _, body = request(f"{server.base_url}/healthz")
    assert status == 200
    assert json.loads(body)["model_version"] == ModelCard.load(model_dir).model_version
    _, workers = server.gunicorn_pids()
    assert len(workers) == 2, "the Procfile's default is two workers"


def test_concurrent_uploads_are_all_stored(server, xray_paths):
    result = run_load(server.base_url, xray_paths[:8], clients=4, uploads_per_client=2, max_seconds=120)
    assert result.statuses == [201] * 8, result.errors
    assert verify_stored(server.base_url, result.created) == []


def test_form_post_without_csrf_token_is_refused(server, xray_paths):
    before = json.loads(request(f"{server.base_url}/api/v1/predictions")[2])["total"]
    body, content_type = multipart("file", xray_paths[0].name, xray_paths[0].read_bytes())
    status, _, _ = request(f"{server.base_url}/", "POST", body, {"Content-Type": content_type})
    assert status == 400
    assert json.loads(request(f"{server.base_url}/api/v1/predictions")[2])["total"] == before


def test_slow_and_idle_connections_do_not_starve_real_requests(server, xray_paths):
    """8 clients trickling a body and 50 sending nothing; a health check and an upload still get
    through (with 2 threads a worker they did not within 30 s). Timing is the benchmark's job."""
    timed = slow_clients(server.base_url, xray_paths[0])
    assert (timed.health_status, timed.upload_status) == (200, 201)
