"""Integer query parameters, bounded on both sides so no value can overflow a database integer."""

from __future__ import annotations

import re

from flask import abort, request

MAX_QUERY_INT = 1_000_000_000
_INTEGER = re.compile(r"[+-]?[0-9]{1,12}")


def int_arg(name: str, default: int, low: int, high: int = MAX_QUERY_INT) -> int:
    """`?name=` as an int in low..high, `default` when absent; anything else is a 400."""
    raw = request.args.get(name)
    if raw is None:
        return default
    if not _INTEGER.fullmatch(raw.strip()):
        abort(400, f"'{name}' must be an integer from {low} to {high}")
    value = int(raw)
    if value < low:
        abort(400, f"'{name}' must be at least {low}")
    if value > high:
        abort(400, f"'{name}' must be at most {high}")
    return value


def optional_int_arg(name: str, low: int, high: int = MAX_QUERY_INT) -> int | None:
    """`?name=` as an int in low..high, None when absent or empty (a form's "any" choice);
    anything else is a 400."""
    if not request.args.get(name, "").strip():
        return None
    return int_arg(name, low, low, high)
