"""Who may reach what: Flask-Login sessions kept server-side, bearer tokens, and the guard.

Once one account exists, everything but the login and first-run pages, the health check and
static files needs a signed-in user or an API token. With no account yet the app is open only
when OPEN_DEMO is set (a laptop); otherwise it serves the first-run page alone, where the
first admin is made with the setup code printed to the log.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from datetime import timedelta
from functools import wraps

from flask import Flask, Response, abort, current_app, g, jsonify, redirect, request, session, url_for
from flask_login import LoginManager, current_user, login_user, logout_user
from sqlalchemy import delete

from pneumoscan.web import db
from pneumoscan.web.accounts import rules, tokens
from pneumoscan.web.models import User, UserSession, utc_now

OPEN_ENDPOINTS = {"auth.login", "auth.setup", "health.healthz", "static"}
SESSION_KEY = "sid"
EXTENSION = "pneumoscan.access"
# last_seen_at is written at most this often per session, not on every request.
SEEN_INTERVAL = timedelta(minutes=1)

login_manager = LoginManager()


class AccessState:
    """Whether an account exists; once true it stays true (accounts are deactivated, never deleted)."""

    def __init__(self) -> None:
        self.accounts_exist = False


def accounts_exist() -> bool:
    state: AccessState = current_app.extensions[EXTENSION]
    if not state.accounts_exist:
        state.accounts_exist = rules.any_accounts(db.session())
    return state.accounts_exist


def _known_accounts_exist() -> bool:
    """What the guard last found, without asking the database (safe in error pages and hooks)."""
    return current_app.extensions[EXTENSION].accounts_exist


def open_demo(ask_database: bool = False) -> bool:
    """True while the app runs without accounts because OPEN_DEMO asked for it.

    Without `ask_database` it trusts what the guard last found, so error pages can call it.
    """
    if not current_app.config["OPEN_DEMO"]:
        return False
    return not (accounts_exist() if ask_database else _known_accounts_exist())


def setup_code(secret_key: str) -> str:
    """The first-run code: derived from SECRET_KEY, so every worker prints and accepts the same one."""
    digest = hmac.new(secret_key.encode(), b"pneumoscan first-run setup", hashlib.sha256).hexdigest()
    return "-".join(digest[i : i + 4] for i in range(0, 12, 4))


def _session_hash(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


def sign_in(user: User) -> None:
    """Starts a server-side session for `user` in a fresh cookie; the caller commits."""
    session.clear()
    sid = secrets.token_urlsafe(32)
    db.session().add(UserSession(id_hash=_session_hash(sid), user_id=user.id))
    user.last_login_at = utc_now()
    login_user(user)
    session[SESSION_KEY] = sid


def sign_out() -> None:
    """Ends this browser's session server-side too, so a copied cookie stops working; the caller commits."""
    sid = session.get(SESSION_KEY)
    if sid:
        db.session().execute(delete(UserSession).where(UserSession.id_hash == _session_hash(sid)))
    logout_user()
    session.clear()


@login_manager.user_loader
def _load_from_session(user_id: str) -> User | None:
    """The cookie's user, if its server-side session is still there and not idle too long."""
    sid = session.get(SESSION_KEY)
    if not sid or not user_id.isdigit():
        return None
    database = db.session()
    row = database.get(UserSession, _session_hash(sid))
    if row is None or row.user_id != int(user_id):
        return None
    now = utc_now()
    if now - row.last_seen_at > timedelta(minutes=current_app.config["SESSION_IDLE_MINUTES"]):
        database.delete(row)
        database.commit()
        return None
    user = database.get(User, row.user_id)
    if user is None or not user.active:
        return None
    if now - row.last_seen_at > SEEN_INTERVAL:
        row.last_seen_at = now
        database.commit()
    return user


@login_manager.request_loader
def _load_from_token(req) -> User | None:
    scheme, _, token = req.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    user = tokens.user_for(db.session(), token.strip())
    db.session().commit()
    return user


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
        current_app.extensions[EXTENSION].accounts_exist = True
        return None
    if request.endpoint in OPEN_ENDPOINTS:
        return None
    if not accounts_exist() and current_app.config["OPEN_DEMO"]:
        return None
    return _refuse()


def _no_store(response: Response) -> Response:
    """Pages and images behind login must not be kept by browsers or shared caches."""
    if request.endpoint != "static" and (
        _known_accounts_exist() or getattr(g.get("_login_user"), "is_authenticated", False)
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


def announce_setup_code(app: Flask) -> None:
    """With no account yet and no OPEN_DEMO, log where and with what code to make the first admin."""
    with app.app_context():
        if app.config["OPEN_DEMO"] or accounts_exist():
            return
    app.logger.warning(
        "no account exists yet: open /setup and enter the setup code %s to create the first admin "
        "(or run `flask --app app users create EMAIL --name NAME --role admin`)",
        setup_code(app.config["SECRET_KEY"]),
    )


def init_app(app: Flask) -> None:
    app.extensions[EXTENSION] = AccessState()
    login_manager.init_app(app)
    app.before_request(_require_login)
    app.after_request(_no_store)

    @app.context_processor
    def _access_flags() -> dict:
        return {"open_demo": open_demo()}
