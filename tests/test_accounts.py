"""Accounts: when login applies, signing in and out, server-side sessions, lockout, first run."""

from __future__ import annotations

import io
import logging
import re
from datetime import timedelta

from conftest import PASSWORD, Accounts, inline_code, post_login
from sqlalchemy import func, select

from pneumoscan.web import db
from pneumoscan.web.accounts import first_run
from pneumoscan.web.models import AuditEvent, LoginThrottle, User, UserSession

UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"
GUARDED_PAGES = (
    "/",
    "/history",
    f"/predictions/{UNKNOWN_ID}",
    f"/predictions/{UNKNOWN_ID}/image",
    f"/predictions/{UNKNOWN_ID}/heatmap",
    "/account",
    "/admin/users",
    "/admin/audit",
    "/no-such-page",
)
GUARDED_API = ("/api/v1/predictions", f"/api/v1/predictions/{UNKNOWN_ID}", "/api/v1/elsewhere")


def events(app, action: str | None = None) -> list[AuditEvent]:
    with app.app_context():
        query = select(AuditEvent).order_by(AuditEvent.id)
        if action:
            query = query.where(AuditEvent.action == action)
        return list(db.session().scalars(query))


def test_every_route_but_login_healthz_and_static_needs_credentials(app, users):
    client = app.test_client()

    for path in GUARDED_PAGES:
        response = client.get(path)
        assert response.status_code == 302 and "/login?next=" in response.headers["Location"], path
    for path in GUARDED_API:
        response = client.get(path)
        assert response.status_code == 401, path
        assert response.json == {"error": "authentication required"}
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    upload = client.post("/api/v1/predictions", data={"file": (io.BytesIO(b"x"), "x.jpeg")})
    assert upload.status_code == 401
    assert client.delete(f"/api/v1/predictions/{UNKNOWN_ID}").status_code == 401
    assert client.get("/login").status_code == 200
    assert client.get("/static/style.css").status_code == 200
    health = client.get("/healthz")
    assert health.status_code == 200 and health.json == {"status": "ok"}


def test_without_accounts_or_open_demo_only_the_first_run_page_is_served(make_app, caplog):
    with caplog.at_level(logging.WARNING):
        app = make_app(OPEN_DEMO=False)
    code = first_run.setup_code(app.config["SECRET_KEY"])
    assert any(code in record.getMessage() for record in caplog.records)
    client = app.test_client()

    for path in GUARDED_PAGES:
        response = client.get(path)
        assert response.status_code == 302 and response.headers["Location"] == "/setup", path
    assert client.get("/login").headers["Location"] == "/setup"
    for path in GUARDED_API:
        assert client.get(path).status_code == 401, path
    assert client.get("/healthz").json == {"status": "ok"}
    assert "setup code" in client.get("/setup").get_data(as_text=True)


def test_first_run_page_needs_the_setup_code_then_makes_an_admin(make_app, csrf_token):
    app = make_app(OPEN_DEMO=False, WTF_CSRF_ENABLED=True)
    client = app.test_client()
    form = {"email": "first@clinic.example", "display_name": "First Admin", "password": PASSWORD}

    wrong = client.post(
        "/setup", data={**form, "code": "0000-0000-0000", "csrf_token": csrf_token(client, "/setup")}
    )
    assert wrong.status_code == 400 and "wrong setup code" in wrong.get_data(as_text=True)
    code = first_run.setup_code(app.config["SECRET_KEY"])
    right = client.post("/setup", data={**form, "code": code, "csrf_token": csrf_token(client, "/setup")})

    assert right.status_code == 303
    assert client.get("/history").status_code == 200
    with app.app_context():
        admin = db.session().scalar(select(User))
    assert (admin.email, admin.role, admin.active) == ("first@clinic.example", "admin", True)
    assert app.test_client().get("/setup").headers["Location"] == "/login"
    assert [event.action for event in events(app)] == ["account-create", "list"]


def test_open_demo_without_accounts_is_open_with_a_banner(client):
    page = client.get("/history")
    assert page.status_code == 200 and "Open demo" in page.get_data(as_text=True)
    assert "model_version" in client.get("/healthz").json
    assert client.get("/admin/users").status_code == 403


def test_sign_in_records_the_event_and_unlocks_pages_with_no_store(app, users):
    client = app.test_client()

    answer = post_login(client, "ADA@clinic.example ", PASSWORD, "/login?next=/history")

    assert answer.status_code == 303 and answer.headers["Location"] == "/history"
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    page = client.get("/history")
    assert page.status_code == 200 and "Dr Ada Admin" in page.get_data(as_text=True)
    assert page.headers["Cache-Control"] == "no-store"
    assert "Open demo" not in page.get_data(as_text=True)
    assert "no-store" not in client.get("/static/style.css").headers.get("Cache-Control", "")
    signed_in = events(app, "sign-in")
    assert len(signed_in) == 1 and signed_in[0].user_id == users.admin.id
    assert signed_in[0].client_address == "127.0.0.1"
    with app.app_context():
        assert db.session().get(User, users.admin.id).last_login_at is not None


def test_wrong_email_and_wrong_password_get_the_same_answer(app, users):
    wrong_password = post_login(app.test_client(), users.admin.email, "not the password")
    no_such_user = post_login(app.test_client(), "nobody@clinic.example", "not the password")

    assert wrong_password.status_code == no_such_user.status_code == 401
    for answer in (wrong_password, no_such_user):
        assert "wrong email or password" in answer.get_data(as_text=True)
    failed = events(app, "sign-in-failed")
    assert [event.detail for event in failed] == [users.admin.email, "nobody@clinic.example"]


def test_login_does_not_redirect_off_site(app, users):
    for target in ("//evil.example/", "/\\evil.example/", "https://evil.example/"):
        answer = post_login(app.test_client(), users.admin.email, PASSWORD, f"/login?next={target}")
        assert answer.headers["Location"] == "/", target


def test_sign_out_ends_the_session_server_side(app, users, csrf_token):
    client = users.client(users.clinician)
    copied = client.get_cookie("session").value
    assert client.get("/history").status_code == 200

    answer = client.post("/logout", data={"csrf_token": csrf_token(client, "/account")})

    assert answer.status_code == 303
    replay = app.test_client()
    replay.set_cookie("session", copied)
    assert replay.get("/history").status_code == 302
    with app.app_context():
        assert db.session().scalar(select(func.count()).select_from(UserSession)) == 0
    assert [event.action for event in events(app)][-1] == "sign-out"


def make_idle(app, idle: timedelta) -> None:
    """Moves every session's last activity back by `idle`."""
    with app.app_context():
        database = db.session()
        for row in database.scalars(select(UserSession)):
            row.last_seen_at -= idle
        database.commit()


def test_idle_sessions_expire(app, users):
    client = users.client(users.clinician)
    assert client.get("/history").status_code == 200
    make_idle(app, timedelta(minutes=app.config["SESSION_IDLE_MINUTES"] + 1))

    assert client.get("/history").status_code == 302
    with app.app_context():
        assert db.session().scalar(select(func.count()).select_from(UserSession)) == 0


def test_recent_activity_keeps_the_session(make_app):
    app = make_app(SESSION_IDLE_MINUTES=1)
    users = Accounts(app)
    client = users.client(users.clinician)
    make_idle(app, timedelta(seconds=50))
    assert client.get("/history").status_code == 200


def test_five_failures_lock_the_account_for_a_growing_time_whatever_the_address(app, users):
    def attempt(password: str, address: str):
        client = app.test_client()
        client.environ_base["REMOTE_ADDR"] = address
        return post_login(client, users.clinician.email, password)

    statuses = [attempt("wrong", f"198.51.100.{n}").status_code for n in range(5)]
    locked = attempt(PASSWORD, "203.0.113.9")

    assert statuses == [401] * 5
    assert locked.status_code == 429 and 0 < int(locked.headers["Retry-After"]) <= 30
    assert "too many failed sign-ins" in locked.get_data(as_text=True)
    with app.app_context():
        row = db.session().get(LoginThrottle, f"account:{users.clinician.email}")
        row.locked_until = row.last_failure_at  # the lock has run out
        db.session().commit()
    assert attempt("wrong", "203.0.113.9").status_code == 401
    relocked = attempt(PASSWORD, "203.0.113.9")
    assert relocked.status_code == 429 and 30 < int(relocked.headers["Retry-After"]) <= 60
    assert post_login(app.test_client(), users.admin.email, PASSWORD).status_code == 303


def test_unknown_email_locks_like_a_real_one(app, users):
    answers = [post_login(app.test_client(), "ghost@clinic.example", "x").status_code for _ in range(6)]
    assert answers == [401] * 5 + [429]


def test_one_address_is_locked_only_after_many_failures_across_accounts(app, users):
    client_ip = {"REMOTE_ADDR": "192.0.2.50"}

    def attempt(email: str, password: str) -> int:
        client = app.test_client()
        client.environ_base.update(client_ip)
        return post_login(client, email, password).status_code

    for n in range(19):
        assert attempt(f"typo{n}@clinic.example", "x") == 401
    assert attempt(users.clinician.email, PASSWORD) == 303
    assert attempt("typo-last@clinic.example", "x") == 401
    assert attempt(users.admin.email, PASSWORD) == 429
    assert post_login(app.test_client(), users.admin.email, PASSWORD).status_code == 303


def test_uploads_do_not_spend_the_sign_in_budget(make_app):
    app = make_app(RATE_LIMIT="2/hour")
    users = Accounts(app)
    client = users.client(users.clinician)
    uploads = [
        client.post("/api/v1/predictions", data={"file": (io.BytesIO(b""), "x.jpeg")}) for _ in range(3)
    ]

    assert [answer.status_code for answer in uploads] == [400, 400, 429]
    assert post_login(app.test_client(), users.admin.email, PASSWORD).status_code == 303


def test_login_form_has_csrf_and_no_inline_code(app, users):
    page = app.test_client().get("/login").get_data(as_text=True)
    assert re.search(r'name="csrf_token" type="hidden"', page)
    assert not inline_code(page)


def test_first_run_shows_every_error_at_once_in_our_words(make_app, csrf_token):
    app = make_app(OPEN_DEMO=False, WTF_CSRF_ENABLED=True)
    client = app.test_client()
    form = {"email": "a@clinic.example", "display_name": "", "password": "short", "code": "0000-0000-0000"}
    answer = client.post("/setup", data={**form, "csrf_token": csrf_token(client, "/setup")})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 400
    for words in ("wrong setup code", "enter a name", "use at least 10 characters"):
        assert words in html, words
    assert "Field must" not in html and "At least 10 characters." in html


def test_first_run_page_in_open_demo_says_what_to_do(make_app):
    html = make_app(OPEN_DEMO=True).test_client().get("/setup").get_data(as_text=True)
    assert "printed no setup code" in html and ".venv/bin/flask --app app users create" in html


def test_sign_in_and_first_run_refuse_posts_without_csrf(make_app):
    empty = make_app(OPEN_DEMO=False)
    refused = empty.test_client().post("/setup", data={"email": "a@b.example", "password": PASSWORD})
    assert refused.status_code == 400
    with empty.app_context():
        assert db.session().scalar(select(func.count()).select_from(User)) == 0

    users = Accounts(make_app())
    client = users.app.test_client()
    answer = client.post("/login", data={"email": users.admin.email, "password": PASSWORD})
    assert answer.status_code == 400 and client.get("/history").status_code == 302
