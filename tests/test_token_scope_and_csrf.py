"""Bearer tokens reach the API and what it links to only; an admin's reset revokes them; API
writes carried by the session cookie need this site's Origin or a CSRF token; the last active
admin stays under concurrent demotions."""

from __future__ import annotations

import io
import threading

import pytest
from conftest import PASSWORD, Accounts, add_result, fetch_csrf_token
from sqlalchemy import func, select

from pneumoscan.web import db
from pneumoscan.web.accounts import rules
from pneumoscan.web.models import User


def test_a_token_is_accepted_on_the_api_files_and_csv_and_refused_elsewhere(app, tmp_path):
    users = Accounts(app)
    prediction_id = add_result(app)
    (tmp_path / "uploads").mkdir(exist_ok=True)
    (tmp_path / "uploads" / f"{prediction_id}.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    token = {"Authorization": f"Bearer {users.token(users.admin)}"}
    client = app.test_client()

    for path in ("/api/v1/predictions", f"/predictions/{prediction_id}/image", "/history.csv"):
        assert client.get(path, headers=token).status_code == 200, path
    for path in (
        "/account",
        "/admin/users",
        "/admin/audit",
        "/history",
        f"/predictions/{prediction_id}",
        "/",
    ):
        assert client.get(path, headers=token).status_code == 302, path
    minted = client.post("/account/tokens", data={"name": "more"}, headers=token)
    assert minted.status_code in (302, 400)
    with app.app_context():
        assert len(db.session().scalars(select(User)).all()) == 2


def test_an_admin_password_reset_revokes_the_users_tokens(app, csrf_token):
    users = Accounts(app)
    token = {"Authorization": f"Bearer {users.token(users.clinician)}"}
    client = app.test_client()
    assert client.get("/api/v1/predictions", headers=token).status_code == 200
    admin = users.client(users.admin)

    reset = admin.post(
        f"/admin/users/{users.clinician.id}/password",
        data={"csrf_token": csrf_token(admin, "/admin/users"), "password": "a new long passphrase here"},
    )

    assert reset.status_code in (302, 303)
    assert client.get("/api/v1/predictions", headers=token).status_code == 401


def _upload(client, headers: dict):
    return client.post("/api/v1/predictions", data={"file": (io.BytesIO(b""), "x.png")}, headers=headers)


def test_cookie_api_writes_need_this_sites_origin_or_a_csrf_token(make_app):
    app = make_app(WTF_CSRF_ENABLED=True)
    users = Accounts(app)
    browser = users.client(users.clinician)
    browser.environ_base.pop("HTTP_ORIGIN")

    assert _upload(browser, {"Origin": "http://evil.example"}).status_code == 403
    assert _upload(browser, {"Referer": "http://evil.example/page"}).status_code == 403
    assert _upload(browser, {}).status_code == 403
    assert (
        _upload(browser, {"Origin": "http://localhost"}).status_code == 400
    )  # past the check: an empty file
    assert _upload(browser, {"X-CSRFToken": fetch_csrf_token(browser, "/")}).status_code == 400
    assert browser.get("/api/v1/predictions", headers={"Origin": "http://evil.example"}).status_code == 200
    token = {"Authorization": f"Bearer {users.token(users.clinician)}", "Origin": "http://evil.example"}
    assert _upload(app.test_client(), token).status_code == 400


def test_the_open_demo_api_stays_open(app):
    assert _upload(app.test_client(), {"Origin": "http://evil.example"}).status_code == 400


def test_two_admins_demoting_each_other_at_once_leave_one_admin(make_app, postgres):
    app = make_app(DATABASE_URL=postgres.new_database())
    with app.app_context():
        session = db.session()
        first = rules.create(session, "a1@clinic.example", "A1", "admin", PASSWORD).id
        second = rules.create(session, "a2@clinic.example", "A2", "admin", PASSWORD).id
        session.commit()
    barrier, outcomes = threading.Barrier(2), []

    def demote(target: int) -> None:
        with app.app_context():
            session = db.database().sessions()
            try:
                user = session.get(User, target)
                barrier.wait(timeout=30)
                rules.set_role(session, user, "clinician")
                session.commit()
                outcomes.append("demoted")
            except rules.AccountError:
                session.rollback()
                outcomes.append("refused")
            finally:
                session.close()

    threads = [threading.Thread(target=demote, args=(target,)) for target in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(outcomes) == ["demoted", "refused"]
    with app.app_context():
        admins = db.session().scalar(select(func.count()).select_from(User).where(User.role == "admin"))
    assert admins == 1


@pytest.mark.parametrize("path", ["/account", "/admin/users"])
def test_a_signed_in_browser_still_reaches_its_pages(app, path):
    users = Accounts(app)
    assert users.client(users.admin).get(path).status_code == 200
