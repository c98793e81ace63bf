"""Text input with a NUL byte is refused with a 400 before any view sees it: PostgreSQL cannot
store one in a text column, and no form field or JSON string of this app has a use for it."""

from __future__ import annotations

from flask import Flask, request

from pneumoscan.errors import Refused


def _strings(value: object):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def refuse_nul_bytes() -> None:
    """Query string, form fields (not uploaded files) and JSON bodies."""
    values = [*request.args.values(), *request.args.keys()]
    if request.method in ("POST", "PUT", "PATCH", "DELETE"):
        values += [*request.form.values(), *request.form.keys()]
        if request.is_json:
            values += _strings(request.get_json(silent=True))
    if any("\x00" in value for value in values):
        raise Refused("text may not contain NUL bytes", 400)


def init_app(app: Flask) -> None:
    app.before_request(refuse_nul_bytes)
