"""Optional login: when ADMIN_PASSWORD_HASH is set, everything but the health check needs it.

Browsers sign in through /login (a session cookie); programs calling the API may instead send
HTTP Basic credentials with any user name and the same password. Password posts share the
upload rate limit, which slows guessing.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, jsonify, redirect, render_template, request, session, url_for
from werkzeug.security import check_password_hash

from pneumoscan.web.forms import LoginForm
from pneumoscan.web.ratelimit import rate_limited

bp = Blueprint("auth", __name__)
OPEN_ENDPOINTS = {"auth.login", "pages.healthz", "static"}


def login_enabled() -> bool:
    return bool(current_app.config.get("ADMIN_PASSWORD_HASH"))


def password_ok(password: str) -> bool:
    """check_password_hash compares the derived keys in constant time."""
    return check_password_hash(current_app.config["ADMIN_PASSWORD_HASH"], password)


def _safe_next(target: str | None) -> str:
    """Only same-site paths, so the login page cannot be used as an open redirect."""
    same_site = target and target.startswith("/") and not target.startswith(("//", "/\\"))
    if same_site and not urlsplit(target).netloc:
        return target
    return url_for("pages.index")


@bp.before_app_request
def require_login():
    if not login_enabled() or request.endpoint in OPEN_ENDPOINTS or session.get("admin"):
        return None
    if request.path.startswith("/api/"):
        credentials = request.authorization
        if credentials and credentials.password and password_ok(credentials.password):
            return None
        response = jsonify(error="authentication required")
        response.status_code = 401
        response.headers["WWW-Authenticate"] = 'Basic realm="PneumoScan API"'
        return response
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


@bp.route("/login", methods=["GET", "POST"])
@rate_limited
def login():
    if not login_enabled():
        return redirect(url_for("pages.index"))
    form = LoginForm()
    if form.validate_on_submit():
        if password_ok(form.password.data):
            session.clear()
            session["admin"] = True
            return redirect(_safe_next(request.args.get("next")), code=303)
        form.password.errors.append("wrong password")
    return render_template("login.html", form=form), 401 if request.method == "POST" else 200


@bp.post("/logout")
def logout():
    session.clear()
    flash("signed out")
    return redirect(url_for("auth.login" if login_enabled() else "pages.index"), code=303)
