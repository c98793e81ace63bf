"""The API's OpenAPI 3 document, from the marshmallow schemas that load and dump its bodies
(apispec's marshmallow plugin) and from the app's own routes: a route of the `api` blueprint
without an entry in OPERATIONS stops the document, so none goes undescribed."""

from __future__ import annotations

import re

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import current_app

from pneumoscan.web.api import schemas
from pneumoscan.web.api.fhir import MEDIA_TYPE as FHIR_MEDIA_TYPE
from pneumoscan.web.queryargs import MAX_QUERY_INT
from pneumoscan.web.results.case_reference import MAX_LENGTH as MAX_CASE_REFERENCE
from pneumoscan.web.results.queries import ESTIMATES, MAX_CASE_SEARCH, SORTS, SUBTYPES
from pneumoscan.web.results.reviews import REVIEW_STATES

OPENAPI_VERSION = "3.1.0"
DESCRIPTION = (
    "Chest X-ray pneumonia screening. Once an account exists every call needs an API token "
    "(`Authorization: Bearer …`; without one the answer is 401 with `WWW-Authenticate: Bearer`); "
    'an open demo without accounts needs none. Every error is JSON `{"error": "…"}`.'
)


def _json(schema: str | dict) -> dict:
    return {"application/json": {"schema": schema}}


def _ok(description: str, schema: str | dict) -> dict:
    return {"description": description, "content": _json(schema)}


def _errors(*statuses: int) -> dict:
    """The refusals an operation names; any other failure is the `default` Error too."""
    error = {"$ref": "#/components/responses/Error"}
    return {**{str(status): error for status in statuses}, "default": error}


def _query(name: str, schema: dict, description: str) -> dict:
    return {"in": "query", "name": name, "schema": schema, "required": False, "description": description}


PREDICTION_ID = {
    "in": "path",
    "name": "prediction_id",
    "required": True,
    "schema": {"type": "string", "format": "uuid"},
}
LIST_PARAMETERS = [
    _query(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": schemas.MAX_LIMIT, "default": schemas.DEFAULT_LIMIT},
        "page size",
    ),
    _query(
        "offset", {"type": "integer", "minimum": 0, "maximum": MAX_QUERY_INT, "default": 0}, "results skipped"
    ),
    _query(
        "format",
        {"type": "string", "enum": ["json", "csv"], "default": "json"},
        "csv: every match, no paging",
    ),
    _query("estimate", {"type": "string", "enum": list(ESTIMATES)}, "the model's label"),
    _query("subtype", {"type": "string", "enum": list(SUBTYPES)}, "the model's subtype (PNEUMONIA results)"),
    _query(
        "sort",
        {"type": "string", "enum": list(SORTS), "default": "newest"},
        "; ".join(f"{key}: {text.lower()}" for key, text in SORTS.items()),
    ),
    _query("review", {"type": "string", "enum": list(REVIEW_STATES)}, "the review state"),
    _query(
        "uploader", {"type": "integer", "minimum": 1, "maximum": MAX_QUERY_INT}, "the uploading user's id"
    ),
    _query("from", {"type": "string", "format": "date"}, "first day (UTC)"),
    _query("to", {"type": "string", "format": "date"}, "last day (UTC), included"),
    _query("case", {"type": "string", "maxLength": MAX_CASE_SEARCH}, "case reference contains"),
]
UPLOAD = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {
                    "file": {"type": "string", "format": "binary", "description": "JPEG, PNG or DICOM"},
                    "case_reference": {
                        "type": "string",
                        "maxLength": MAX_CASE_REFERENCE,
                        "description": "pseudonymous",
                    },
                },
            }
        }
    },
}
# Per endpoint of the `api` blueprint (one method each): its operation.
OPERATIONS = {
    "api.create_prediction": {
        "summary": "Score an X-ray",
        "requestBody": UPLOAD,
        "responses": {
            "201": {
                **_ok("the stored result", "Result"),
                "headers": {"Location": {"schema": {"type": "string"}, "description": "the result's URL"}},
            },
            **_errors(400, 401, 413, 415, 422, 429),
        },
    },
    "api.list_predictions": {
        "summary": "Results, newest first, with the history's filters",
        "parameters": LIST_PARAMETERS,
        "responses": {
            "200": {
                "description": "a page of results, or with format=csv every match",
                "content": {**_json("Page"), "text/csv": {"schema": {"type": "string"}}},
            },
            **_errors(400, 401),
        },
    },
    "api.get_prediction": {
        "summary": "One result with its latest review",
        "parameters": [PREDICTION_ID],
        "responses": {"200": _ok("the result", "Result"), **_errors(401, 404)},
    },
    "api.delete_prediction": {
        "summary": "Delete a result, its image and heatmap (admins)",
        "parameters": [PREDICTION_ID],
        "responses": {"204": {"description": "deleted"}, **_errors(401, 403, 404)},
    },
    "api.get_prediction_fhir": {
        "summary": "The result as a FHIR R4 DiagnosticReport",
        "parameters": [PREDICTION_ID],
        "responses": {
            "200": {
                "description": "a DiagnosticReport with contained Observations, Device and Media",
                "content": {FHIR_MEDIA_TYPE: {"schema": {"type": "object", "additionalProperties": True}}},
            },
            **_errors(401, 404),
        },
    },
    "api.get_prediction_map": {
        "summary": "The Grad-CAM grid at its native size",
        "parameters": [PREDICTION_ID],
        "responses": {"200": _ok("the grid", "Map"), **_errors(401, 404)},
    },
    "api.review_prediction": {
        "summary": "Add a review version (signed by the token's account)",
        "parameters": [PREDICTION_ID],
        "requestBody": {"required": True, "content": _json("ReviewBody")},
        "responses": {"201": _ok("the new review version", "Review"), **_errors(400, 401, 404, 409)},
    },
    "api.metrics": {
        "summary": "The dashboard's figures for the served model",
        "responses": {
            "200": _ok("figures keyed as on the dashboard", {"type": "object", "additionalProperties": True}),
            **_errors(401),
        },
    },
    "api.openapi_document": {
        "summary": "This document",
        "responses": {
            "200": _ok("OpenAPI 3", {"type": "object", "additionalProperties": True}),
            **_errors(401),
        },
    },
}
SCHEMAS = (
    schemas.Error,
    schemas.Person,
    schemas.Review,
    schemas.ReviewBody,
    schemas.Subtype,
    schemas.Result,
    schemas.Page,
    schemas.Map,
)


def openapi_path(rule: str) -> str:
    """A Flask rule as an OpenAPI path: /a/<uuid:b> becomes /a/{b}."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def document() -> dict:
    """The OpenAPI document for the running app's API routes."""
    spec = APISpec(
        title="PneumoScan API",
        version="v1",
        openapi_version=OPENAPI_VERSION,
        plugins=[MarshmallowPlugin()],
        info={"description": DESCRIPTION},
    )
    for schema in SCHEMAS:
        spec.components.schema(schema.__name__, schema=schema)
    spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
    spec.components.response("Error", _ok("a refusal or failure, in words", "Error"))
    paths: dict[str, dict] = {}
    for rule in current_app.url_map.iter_rules():
        if rule.endpoint.startswith("api."):
            operations = paths.setdefault(openapi_path(rule.rule), {})
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                operations[method.lower()] = OPERATIONS[rule.endpoint]
    for path in sorted(paths):
        spec.path(path=path, operations=paths[path])
    answer = spec.to_dict()
    answer["security"] = [{"bearerAuth": []}]
    return answer
