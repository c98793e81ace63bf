"""Per-client limits on posts by Flask-Limiter: uploads (each costs a model run), and sign-in posts.

RATE_LIMIT ('30/minute', empty for none) is counted in RATE_LIMIT_STORAGE_URI: `memory://`
counts per worker process; `redis://host:port` counts once across every worker and instance.
Uploads have one budget per client and sign-in posts another, so a clinic behind one address
cannot lock its users out by uploading; failed sign-ins are also slowed per account and address
by pneumoscan.web.accounts.throttle. If the counter store is unreachable,
requests go through (and Flask-Limiter logs it) rather than failing.
"""

from __future__ import annotations

from flask import Flask, current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

limiter = Limiter(key_func=get_remote_address)


def _rate() -> str:
    return current_app.config["RATE_LIMIT"]


rate_limited = limiter.shared_limit(
    _rate,
    scope="posts",
    methods=["POST"],
    error_message="too many requests; try again after the time in Retry-After",
)
sign_in_limited = limiter.shared_limit(
    _rate,
    scope="sign-in",
    methods=["POST"],
    error_message="too many sign-in attempts; try again after the time in Retry-After",
)


def init_app(app: Flask) -> None:
    """RATE_LIMIT's form was checked with the other settings (pneumoscan.web.config)."""
    rate = app.config.get("RATE_LIMIT") or ""
    app.config.update(
        RATELIMIT_ENABLED=bool(rate),
        RATELIMIT_STORAGE_URI=app.config["RATE_LIMIT_STORAGE_URI"],
        RATELIMIT_STRATEGY="moving-window",
        RATELIMIT_HEADERS_ENABLED=True,
        RATELIMIT_SWALLOW_ERRORS=True,
    )
    limiter.init_app(app)
