"""Who is signed in: Flask-Login sessions kept server-side, or a bearer API token."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from flask import Flask, current_app, g, request, session
from flask_login import LoginManager, login_user, logout_user
from sqlalchemy import delete

from pneumoscan.web import db
from pneumoscan.web.accounts import tokens
from pneumoscan.web.models import User, UserSession, utc_now

SESSION_KEY = "sid"
# Where a bearer token is accepted: the API and what it links to (files, the CSV export); never
# the account or admin pages, so a leaked token cannot mint tokens or change an account.
TOKEN_ENDPOINTS = frozenset({"files.image", "files.heatmap", "pages.history_csv"})
# last_seen_at is written at most this often per session, not on every request.
SEEN_INTERVAL = timedelta(minutes=1)

login_manager = LoginManager()


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
    g.signed_in_by = "cookie"
    return user


@login_manager.request_loader
def _load_from_token(req) -> User | None:
    scheme, _, token = req.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip() or not token_accepted_here():
        return None
    user = tokens.user_for(db.session(), token.strip())
    db.session().commit()
    if user is not None:
        g.signed_in_by = "token"
    return user


def token_accepted_here() -> bool:
    """Whether this request's endpoint takes a bearer token (TOKEN_ENDPOINTS and the API)."""
    return request.blueprint == "api" or request.endpoint in TOKEN_ENDPOINTS


def signed_in_by_cookie() -> bool:
    """Whether this request's user came from the session cookie (not a token)."""
    return g.get("signed_in_by") == "cookie"


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
