"""The guard: who may reach what, checked before every request.

Once one account exists, everything but the login and first-run pages, the health check and
static files needs a signed-in user or an API token. With no account yet the app is open only
when OPEN_DEMO is set (a laptop); otherwise it serves the first-run page alone, where the
first admin is made with the setup code printed to the log.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from urllib.parse import urlsplit

from flask import Flask, Response, abort, g, jsonify, redirect, request, url_for
from flask_login import current_user
from flask_wtf.csrf import validate_csrf
from wtforms import ValidationError

from pneumoscan.web.accounts import demo, sessions
from pneumoscan.web.accounts.demo import accounts_exist, known_accounts_exist

OPEN_ENDPOINTS = {"auth.login", "auth.setup", "health.healthz", "health.livez", "static"}
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def _refuse():
    if request.path.startswith("/api/"):
        response = jsonify(error="authentication required")
        response.status_code = 401
        response.headers["WWW-Authenticate"] = 'Bearer realm="PneumoScan API"'
        return response
    if not accounts_exist():
        return redirect(url_for("auth.setup"))
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def _require_login():
    if current_user.is_authenticated:
        demo.mark_accounts_exist()
        return None
    if request.endpoint in OPEN_ENDPOINTS:
        return None
    if demo.open_demo(ask_database=True):
        return None
    return _refuse()


def _origin(url: str | None) -> str | None:
    parts = urlsplit(url or "")
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


def _api_cookie_writes_need_csrf() -> None:
    """The API is exempt from the forms' CSRF check for token clients; a write carried by the
    session cookie must come from this site (Origin, else Referer) or carry X-CSRFToken."""
    if request.blueprint != "api" or request.method in SAFE_METHODS or not sessions.signed_in_by_cookie():
        return
    here = request.host_url.rstrip("/")
    if (_origin(request.headers.get("Origin")) or _origin(request.referrer)) == here:
        return
    try:
        validate_csrf(request.headers.get("X-CSRFToken"))
    except ValidationError:
        abort(403, "an API write with the session cookie needs a same-site Origin or an X-CSRFToken header")


def _no_store(response: Response) -> Response:
    """Pages and images behind login must not be kept by browsers or shared caches."""
    if request.endpoint != "static" and (
        known_accounts_exist() or getattr(g.get("_login_user"), "is_authenticated", False)
    ):
        response.headers["Cache-Control"] = "no-store"
    return response


def require_admin() -> None:
    """403 unless an admin is signed in (in an open demo nobody is)."""
    if not (current_user.is_authenticated and current_user.is_admin):
        abort(403, "only an admin may do this")


def admin_required(view: Callable) -> Callable:
    @wraps(view)
    def guarded(*args, **kwargs):
        require_admin()
        return view(*args, **kwargs)

    return guarded


def init_app(app: Flask) -> None:
    demo.init_app(app)
    sessions.init_app(app)
    app.before_request(_require_login)
    app.before_request(_api_cookie_writes_need_csrf)
    app.after_request(_no_store)
