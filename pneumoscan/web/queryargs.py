"""Query parameters read with a clear 400 for a bad value: integers (bounded on both sides so no
value can overflow a database integer), choices from a fixed list, and dates."""

from __future__ import annotations

import re
from datetime import date

from flask import abort, request

MAX_QUERY_INT = 1_000_000_000
_INTEGER = re.compile(r"[+-]?[0-9]{1,12}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


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


def choice_arg(name: str, choices: tuple[str, ...]) -> str | None:
    """`?name=` as one of `choices` (exactly), None when absent or empty; anything else is a 400."""
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    if raw not in choices:
        abort(400, f"'{name}' must be one of {', '.join(choices)}")
    return raw


def date_arg(name: str) -> date | None:
    """`?name=YYYY-MM-DD` as a date, None when absent or empty; anything else is a 400."""
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    try:
        if not _DATE.fullmatch(raw):
            raise ValueError(raw)
        return date.fromisoformat(raw)
    except ValueError:
        abort(400, f"'{name}' must be a date written YYYY-MM-DD")


def page_count(total: int, per_page: int) -> int:
    """Pages needed for `total` rows; an empty list still has its one (empty) page."""
    return max((total + per_page - 1) // per_page, 1)
