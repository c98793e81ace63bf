"""LOG_FORMAT=json: every line the Procfile server writes, from start to shutdown, is one JSON object."""

from __future__ import annotations

import json

from tests.procfile_harness import procfile_server, request, stop_server, upload


def test_every_server_line_is_json_and_carries_the_request_id(model_dir, xray_paths):
    with procfile_server({"LOG_FORMAT": "json", "WEB_CONCURRENCY": "1"}) as server:
        assert request(f"{server.base_url}/livez", headers={"X-Request-ID": "ops-probe-1"})[0] == 200
        assert request(f"{server.base_url}/readyz")[0] == 200
        status, _, _ = upload(server.base_url, xray_paths[0])
        assert status == 201
        stop_server(server.process)
        lines = server.log_path.read_text(encoding="utf-8").splitlines()

    records = [json.loads(line) for line in lines]
    messages = [record["message"] for record in records]
    assert all({"time", "level", "message", "request_id"} <= record.keys() for record in records)
    assert any(m.startswith("Starting gunicorn") for m in messages)
    assert "Shutting down: Master" in messages
    probe = next(r for r in records if r["request_id"] == "ops-probe-1")
    assert (probe["method"], probe["path"], probe["status"]) == ("GET", "/livez", 200)
    assert probe["duration_ms"] >= 0
    posted = next(r for r in records if r.get("method") == "POST")
    assert posted["status"] == 201 and len(posted["request_id"]) == 32
    assert xray_paths[0].name not in "\n".join(lines), "no client file name in the log"
