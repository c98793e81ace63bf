"""Liveness and readiness: /livez answers without I/O; /readyz and /healthz check model, database, store."""

from __future__ import annotations

import pytest

from pneumoscan.web.monitoring import health
from pneumoscan.web.results import sweeper


def test_livez_answers_without_touching_model_database_or_store(make_app, monkeypatch):
    client = make_app().test_client()

    def forbidden(*args, **kwargs):
        raise AssertionError("livez did I/O")

    monkeypatch.setattr(health, "database_writable", forbidden)
    monkeypatch.setattr(health, "predictor", forbidden)
    monkeypatch.setattr(sweeper, "sweep", forbidden)
    client.application.extensions[sweeper.EXTENSION].due = 0
    reply = client.get("/livez")
    assert reply.status_code == 200 and reply.get_json() == {"status": "ok"}


@pytest.mark.parametrize("path", ["/readyz", "/healthz"])
def test_readiness_checks_the_parts(make_app, path):
    reply = make_app().test_client().get(path)
    assert reply.status_code == 200
    assert reply.get_json()["database"] == reply.get_json()["storage"] == "ok"


def test_livez_is_open_once_an_account_exists(make_app):
    client = make_app(OPEN_DEMO=False).test_client()
    assert client.get("/livez").status_code == 200
    assert client.get("/readyz").get_json() == {"status": "ok"}
