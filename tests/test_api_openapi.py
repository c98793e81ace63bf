"""The OpenAPI document: valid OpenAPI 3, every API route in it, bearer authentication and the
error shape named, and the conformance check itself catching a body that does not fit."""

from __future__ import annotations

import pytest
from conftest import csp_violations, inline_code, sign_in_browser
from openapi_spec_validator import validate

from pneumoscan.web.api.openapi import openapi_path
from tests.openapi_conformance import conforming, problems


@pytest.fixture(autouse=True)
def responses_conform(monkeypatch):
    """Every API answer a test here receives fits the OpenAPI document."""
    yield from conforming(monkeypatch)


@pytest.fixture
def document(client) -> dict:
    answer = client.get("/api/v1/openapi.json")
    assert answer.status_code == 200 and answer.is_json
    return answer.json


def test_the_document_is_valid_openapi_3(document):
    validate(document)
    assert document["openapi"].startswith("3.")


def test_every_api_route_and_method_is_in_the_document(app, document):
    routes = {
        (openapi_path(rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("api.")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    documented = {(path, method) for path, operations in document["paths"].items() for method in operations}
    assert routes == documented
    assert {"/api/v1/predictions", "/api/v1/predictions/{prediction_id}"} <= document["paths"].keys()
    assert "/api/v1/predictions/{prediction_id}/fhir" in document["paths"]


def test_bearer_authentication_and_the_error_shape_are_named(document):
    assert document["components"]["securitySchemes"]["bearerAuth"] == {"type": "http", "scheme": "bearer"}
    assert document["security"] == [{"bearerAuth": []}]
    assert document["components"]["schemas"]["Error"] == {
        "type": "object",
        "properties": {"error": {"type": "string", "description": "what went wrong, in words"}},
        "required": ["error"],
        "additionalProperties": False,
    }
    for operations in document["paths"].values():
        for operation in operations.values():
            assert operation["responses"]["default"] == {"$ref": "#/components/responses/Error"}


def test_the_conformance_check_names_what_does_not_fit(document):
    path = "/api/v1/predictions/00000000-0000-4000-8000-000000000000/map"
    grid = b'{"shape": [1, 1], "values": [[0.5]], "range": [0, 1], "row_0": "top"}'
    assert problems(document, "GET", path, 200, "application/json", grid) == []
    assert problems(document, "GET", path, 404, "application/json", b'{"error": "no map"}') == []
    wrong = problems(document, "GET", path, 200, "application/json", b'{"shape": [1, 1], "extra": 1}')
    assert any("'values' is a required property" in problem for problem in wrong)
    assert any("extra" in problem for problem in wrong)
    assert problems(document, "GET", path, 200, "text/html", b"<p>") == [
        f"GET {path} 200: text/html not among ['application/json']"
    ]
    assert problems(document, "GET", "/api/v1/nowhere", 404, "application/json", b"{}") == []


def test_the_document_needs_a_token_once_accounts_exist(client, users):
    assert client.get("/api/v1/openapi.json").status_code == 401
    token = users.token(users.clinician)
    assert client.get("/api/v1/openapi.json", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_the_reference_page_renders_every_operation_and_schema_without_scripts(client):
    page = client.get("/api/docs")
    html = page.get_data(as_text=True)
    document = client.get("/api/v1/openapi.json").json

    assert page.status_code == 200 and page.mimetype == "text/html"
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    for path, operations in document["paths"].items():
        for method in operations:
            assert f"<code>{method.upper()} {path}</code>" in html
    for name in document["components"]["schemas"]:
        assert f'id="schema-{name}"' in html
    assert inline_code(html) == []
    assert "Review or null" in html and "array of Result" in html


def test_the_reference_page_shows_in_a_browser_without_csp_violations(page, console, live_url, users):
    sign_in_browser(page, live_url, users.clinician)
    page.goto(f"{live_url}/api/docs")

    assert page.get_by_role("heading", name="PneumoScan API v1").is_visible()
    assert page.locator("#schema-Result").is_visible()
    assert csp_violations(console) == []
