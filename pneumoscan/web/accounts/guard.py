"""The guard: who may reach what, checked before every request.

Once one account exists, everything but the login and first-run pages, the health check and
static files needs a signed-in user or an API token. With no account yet the app is open only
when OPEN_DEMO is set (a laptop); otherwise it serves the first-run page alone, where the
first admin is made with the setup code printed to the log.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from flask import Flask, Response, abort, g, jsonify, redirect, request, url_for
from flask_login import current_user

from pneumoscan.web.accounts import demo, sessions
from pneumoscan.web.accounts.demo import accounts_exist, known_accounts_exist

OPEN_ENDPOINTS = {"auth.login", "auth.setup", "health.healthz", "health.livez", "static"}


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
    app.after_request(_no_store)
