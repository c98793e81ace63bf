"""Roles, account management on /admin/users, and the audit trail on /admin/audit."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from conftest import PASSWORD, Accounts, inline_code, post_login
from sqlalchemy import select

from pneumoscan.web import audit, db
from pneumoscan.web.models import AuditEvent, User


def user_row(app, email: str) -> User:
    with app.app_context():
        return db.session().scalar(select(User).where(User.email == email))


@pytest.mark.parametrize("path", ["/admin/users", "/admin/audit"])
def test_clinicians_cannot_reach_admin_pages(users, path):
    assert users.client(users.clinician).get(path).status_code == 403
    assert users.client(users.admin).get(path).status_code == 200


def test_clinicians_cannot_manage_accounts(app, users, csrf_token):
    client = users.client(users.clinician)
    token = csrf_token(client, "/account")
    for path, data in (
        (
            "/admin/users",
            {"email": "x@clinic.example", "display_name": "X", "role": "admin", "password": PASSWORD},
        ),
        (f"/admin/users/{users.admin.id}/deactivate", {}),
        (f"/admin/users/{users.clinician.id}/role", {"role": "admin"}),
        (f"/admin/users/{users.admin.id}/password", {"password": "taken over!!"}),
    ):
        assert client.post(path, data={"csrf_token": token, **data}).status_code == 403, path
    assert user_row(app, users.clinician.email).role == "clinician"
    assert user_row(app, "x@clinic.example") is None
    assert users.client(users.admin).get("/history").status_code == 200


def test_admin_creates_changes_role_resets_and_deactivates(app, users, csrf_token):
    admin = users.client(users.admin)
    token = csrf_token(admin, "/admin/users")
    new = {"email": "Bo@Clinic.example", "display_name": "Dr Bo", "role": "clinician", "password": PASSWORD}

    assert admin.post("/admin/users", data={"csrf_token": token, **new}).status_code == 303
    duplicate = admin.post("/admin/users", data={"csrf_token": token, **new})
    assert duplicate.status_code == 400 and "already exists" in duplicate.get_data(as_text=True)
    bo = user_row(app, "bo@clinic.example")
    assert (bo.display_name, bo.role, bo.active) == ("Dr Bo", "clinician", True)
    bo_browser = users.client(bo)

    assert (
        admin.post(f"/admin/users/{bo.id}/role", data={"csrf_token": token, "role": "admin"}).status_code
        == 303
    )
    assert user_row(app, bo.email).role == "admin"
    reset = admin.post(
        f"/admin/users/{bo.id}/password", data={"csrf_token": token, "password": "a new password"}
    )
    assert reset.status_code == 303
    assert bo_browser.get("/history").status_code == 302, "a password reset ends the user's sessions"
    bo_browser = users.app.test_client()
    signed_in = post_login(bo_browser, bo.email, "a new password")
    assert signed_in.status_code == 303
    assert admin.post(f"/admin/users/{bo.id}/deactivate", data={"csrf_token": token}).status_code == 303
    assert bo_browser.get("/history").status_code == 302, "deactivation ends the user's sessions"
    refused = post_login(bo_browser, bo.email, "a new password")
    assert refused.status_code == 401
    assert admin.post(f"/admin/users/{bo.id}/activate", data={"csrf_token": token}).status_code == 303
    assert user_row(app, bo.email).active

    actions = [event.action for event in audit_rows(app) if event.target_id == str(bo.id)]
    assert actions == [
        "account-create",
        "sign-in",
        "account-role",
        "account-password",
        "sign-in",
        "account-active",
        "account-active",
    ]


def test_the_last_active_admin_cannot_be_demoted_or_deactivated(app, users, csrf_token):
    admin = users.client(users.admin)
    token = csrf_token(admin, "/admin/users")

    demoted = admin.post(
        f"/admin/users/{users.admin.id}/role", data={"csrf_token": token, "role": "clinician"}
    )
    deactivated = admin.post(f"/admin/users/{users.admin.id}/deactivate", data={"csrf_token": token})

    assert demoted.status_code == deactivated.status_code == 409
    assert "last active admin" in demoted.get_data(as_text=True)
    assert user_row(app, users.admin.email).role == "admin" and user_row(app, users.admin.email).active


def test_own_password_change_ends_other_sessions(users, csrf_token):
    here, elsewhere = users.client(users.clinician), users.client(users.clinician)
    data = {"csrf_token": csrf_token(here, "/account"), "current": PASSWORD, "password": "another long one"}

    wrong = here.post("/account/password", data={**data, "current": "not it"})
    changed = here.post("/account/password", data=data)

    assert wrong.status_code == 400 and changed.status_code == 303
    assert here.get("/history").status_code == 200
    assert elsewhere.get("/history").status_code == 302


def audit_rows(app) -> list[AuditEvent]:
    with app.app_context():
        return list(db.session().scalars(select(AuditEvent).order_by(AuditEvent.id)))


def audit_table(client, query: str = "") -> tuple[str, list[tuple[str, str]]]:
    """The audit page's text and its rows as (user, action)."""
    html = client.get(f"/admin/audit{query}").get_data(as_text=True)
    rows = re.findall(r'<td data-label="User">([^<]*)</td>\s*<td data-label="Action">([^<]*)</td>', html)
    return html, rows


def test_audit_page_is_newest_first_paginated_and_filtered(make_app):
    app = make_app(HISTORY_PER_PAGE=2)
    users = Accounts(app)
    admin = users.client(users.admin)
    users.client(users.clinician)
    users.client(users.clinician)
    cy, ada = users.clinician.email, users.admin.email

    html, rows = audit_table(admin)
    assert "3 events" in html and "Page 1 of 2" in html
    assert rows == [(cy, "sign-in"), (cy, "sign-in")]
    assert audit_table(admin, "?page=2")[1] == [(ada, "sign-in")]
    assert audit_table(admin, f"?user={users.admin.id}")[1] == [(ada, "sign-in")]
    assert len(audit_table(admin, f"?user={users.clinician.id}&action=sign-in")[1]) == 2
    assert audit_table(admin, "?action=delete")[1] == []
    assert "3 events" in audit_table(admin, "?action=not-an-action")[0]
    assert admin.get("/admin/audit").headers["Cache-Control"] == "no-store"


def test_audit_events_cannot_be_changed_or_deleted(app, users):
    users.client(users.admin)
    with app.app_context():
        session = db.session()
        event = session.scalar(select(AuditEvent))
        event.detail = "rewritten"
        with pytest.raises(PermissionError):
            session.commit()
        session.rollback()
        session.delete(session.scalar(select(AuditEvent)))
        with pytest.raises(PermissionError):
            session.commit()
        session.rollback()
        assert session.scalar(select(AuditEvent)).action == audit.SIGN_IN


def test_account_and_admin_pages_carry_csrf_tokens_headers_and_no_inline_code(users):
    from pneumoscan.web.server.security import CONTENT_SECURITY_POLICY

    admin = users.client(users.admin)
    for path in ("/account", "/admin/users", "/admin/audit", "/history"):
        answer = admin.get(path)
        html = answer.get_data(as_text=True)
        assert answer.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY, path
        assert answer.headers["X-Frame-Options"] == "DENY" and answer.headers["Cache-Control"] == "no-store"
        assert not inline_code(html), path
        posts = html.count('method="post"')
        assert posts and html.count('name="csrf_token"') == posts, path


def test_the_audit_trail_has_one_event_per_action(app, users, xray_paths, csrf_token):
    admin = users.client(users.admin)
    assert post_login(app.test_client(), users.clinician.email, "wrong password").status_code == 401
    with open(xray_paths[0], "rb") as handle:
        created = admin.post("/api/v1/predictions", data={"file": (handle, "x.jpeg")}).json
    admin.get(f"/predictions/{created['id']}")
    token = csrf_token(admin, "/account")
    admin.post(f"/admin/users/{users.clinician.id}/role", data={"csrf_token": token, "role": "admin"})
    admin.delete(f"/api/v1/predictions/{created['id']}")
    admin.post("/logout", data={"csrf_token": token})

    counted = Counter((event.action, event.user_id) for event in audit_rows(app))
    assert counted == {
        ("sign-in", users.admin.id): 1,
        ("sign-in-failed", None): 1,
        ("upload", users.admin.id): 1,
        ("view", users.admin.id): 1,
        ("account-role", users.admin.id): 1,
        ("delete", users.admin.id): 1,
        ("sign-out", users.admin.id): 1,
    }


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("page=99999999999999999999", 400),
        ("page=1000000001", 400),
        ("page=0", 400),
        ("page=abc", 400),
        ("user=99999999999999999999", 400),
        ("user=abc", 400),
        ("user=0", 400),
        ("user=", 200),
        ("user=1&page=1", 200),
    ],
)
def test_audit_query_numbers_out_of_range_are_a_400(app, users, query: str, status: int):
    response = users.client(users.admin).get(f"/admin/audit?{query}")
    assert response.status_code == status, response.get_data(as_text=True)[:300]
