"""Checking the API's answers against its own OpenAPI document: each response a test's client
receives from a documented operation must fit the schema the document gives its status and type."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient
from openapi_schema_validator import OAS31Validator

from pneumoscan.web.api.openapi import document as build_document


def _matches(template: str, path: str) -> bool:
    pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
    return re.fullmatch(pattern, path) is not None


def _resolved(document: dict, item: dict) -> dict:
    """`item`, or what its local $ref points at."""
    while "$ref" in item:
        target = document
        for part in item["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        item = target
    return item


def problems(document: dict, method: str, path: str, status: int, mimetype: str, body: bytes) -> list[str]:
    """How one response differs from the document; [] when it fits or no documented operation answers it."""
    operation = next(
        (ops.get(method.lower()) for template, ops in document["paths"].items() if _matches(template, path)),
        None,
    )
    if operation is None:
        return []
    where = f"{method} {path} {status}"
    responses = operation["responses"]
    described = responses.get(str(status)) or responses.get("default")
    if described is None:
        return [f"{where}: status not in the document"]
    content = _resolved(document, described).get("content")
    if not content:
        return [] if not body else [f"{where}: a body where the document has none"]
    if mimetype not in content:
        return [f"{where}: {mimetype} not among {sorted(content)}"]
    schema = content[mimetype]["schema"]
    value = json.loads(body) if mimetype.endswith("json") else body.decode()
    validator = OAS31Validator({"allOf": [schema], "components": document["components"]})
    return [f"{where}: {error.json_path}: {error.message}" for error in validator.iter_errors(value)]


def conforming(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """For an autouse fixture: records every /api/v1/ response of the test's clients, and fails the
    test's teardown naming each that does not fit the document."""
    received = []
    original = FlaskClient.open

    def recording_open(client, *args, **kwargs):
        response = original(client, *args, **kwargs)
        request = response.request
        if request.path.startswith("/api/v1/") and request.method != "HEAD":
            received.append((client.application, request.method, request.path, response))
        return response

    monkeypatch.setattr(FlaskClient, "open", recording_open)
    yield
    documents = {}
    found = []
    for app, method, path, response in received:
        if app not in documents:
            with app.test_request_context():
                documents[app] = build_document()
        found += problems(
            documents[app], method, path, response.status_code, response.mimetype, response.get_data()
        )
    assert found == [], "\n".join(found)
