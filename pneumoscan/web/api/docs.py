"""The API's reference page at /api/docs: the OpenAPI document rendered on the server, so the page
needs no script and only the app's own stylesheet (the strict Content-Security-Policy holds)."""

from __future__ import annotations

from flask import Blueprint, render_template

from pneumoscan.web.api import openapi

bp = Blueprint("api_docs", __name__, url_prefix="/api")
METHOD_ORDER = ("get", "post", "delete")


def type_words(schema: dict) -> str:
    """A JSON Schema fragment of the document as a reader says it: "Review or null", "array of number"."""
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "anyOf" in schema:
        return " or ".join(type_words(choice) for choice in schema["anyOf"])
    kinds = schema.get("type", "any")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    words = " or ".join(
        "array of " + type_words(schema.get("items", {})) if kind == "array" else kind for kind in kinds
    )
    if "enum" in schema:
        words += ": one of " + ", ".join(str(value) for value in schema["enum"] if value is not None)
    if "format" in schema:
        words += f" ({schema['format']})"
    return words


def _content(content: dict) -> list[dict]:
    return [
        {"media_type": media_type, "type": type_words(body["schema"])} for media_type, body in content.items()
    ]


def operations(document: dict) -> list[dict]:
    """Every operation, in path order, with its parameters, body and answers in words."""
    found = []
    for path, by_method in document["paths"].items():
        for method in sorted(by_method, key=METHOD_ORDER.index):
            operation = by_method[method]
            found.append(
                {
                    "method": method.upper(),
                    "path": path,
                    "summary": operation["summary"],
                    "parameters": [
                        {**parameter, "type": type_words(parameter["schema"])}
                        for parameter in operation.get("parameters", [])
                    ],
                    "body": _content(operation["requestBody"]["content"])
                    if "requestBody" in operation
                    else [],
                    "responses": [
                        {
                            "status": status,
                            "description": answer.get("description", "an error: Error"),
                            "content": _content(answer.get("content", {})),
                        }
                        for status, answer in operation["responses"].items()
                        if "$ref" not in answer
                    ],
                    "errors": [
                        status for status, answer in operation["responses"].items() if "$ref" in answer
                    ],
                }
            )
    return found


def schema_fields(document: dict) -> dict[str, list[dict]]:
    """Each named schema's fields: name, type in words, whether required, description."""
    return {
        name: [
            {
                "name": field,
                "type": type_words(spec),
                "required": field in schema.get("required", []),
                "description": spec.get("description", ""),
            }
            for field, spec in schema.get("properties", {}).items()
        ]
        for name, schema in document["components"]["schemas"].items()
    }


@bp.get("/docs")
def reference():
    document = openapi.document()
    return render_template(
        "api_docs.html",
        document=document,
        operations=operations(document),
        schemas=schema_fields(document),
    )
