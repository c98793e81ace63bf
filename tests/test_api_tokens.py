"""Personal API tokens: made on the account page or by the CLI, shown once, stored hashed, revocable."""

from __future__ import annotations

import hashlib
import re

from conftest import fetch_csrf_token
from sqlalchemy import select

from pneumoscan.web import db
from pneumoscan.web.models import ApiToken, AuditEvent


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def revoke_first_token(app, client):
    """Posts the revoke form of the oldest token, as its page would; returns the answer and the id."""
    with app.app_context():
        token_id = db.session().scalar(select(ApiToken.id).order_by(ApiToken.id))
    token = fetch_csrf_token(client, "/account")
    return client.post(f"/account/tokens/{token_id}/revoke", data={"csrf_token": token}), token_id


def test_valid_token_reads_and_uploads_as_its_owner(app, users, xray_paths):
    token = users.token(users.clinician)
    client = app.test_client()

    listing = client.get("/api/v1/predictions", headers=bearer(token))
    with open(xray_paths[0], "rb") as handle:
        created = client.post("/api/v1/predictions", data={"file": (handle, "x.jpeg")}, headers=bearer(token))

    assert listing.status_code == 200 and listing.json["total"] == 0
    assert listing.headers["Cache-Control"] == "no-store"
    assert created.status_code == 201
    assert created.json["uploaded_by"] == {"id": users.clinician.id, "name": "Dr Cy Clinician"}
    assert client.get(created.json["heatmap_url"], headers=bearer(token)).status_code == 200
    assert client.get(created.json["heatmap_url"]).status_code == 302
    assert "session" not in {cookie.key for cookie in client._cookies.values()}


def test_missing_malformed_unknown_and_revoked_tokens_get_401(app, users):
    token = users.token(users.clinician)
    client = app.test_client()
    for headers in ({}, {"Authorization": "Bearer"}, {"Authorization": "Basic eDp5"}, bearer("psk_nope")):
        answer = client.get("/api/v1/predictions", headers=headers)
        assert answer.status_code == 401, headers
        assert answer.headers["WWW-Authenticate"] == 'Bearer realm="PneumoScan API"'

    owner = users.client(users.clinician)
    revoked, _ = revoke_first_token(app, owner)

    assert revoked.status_code == 303
    assert client.get("/api/v1/predictions", headers=bearer(token)).status_code == 401
    assert "revoked" in owner.get("/account").get_data(as_text=True)


def test_someone_elses_token_cannot_be_revoked(app, users):
    users.token(users.admin)
    clinician = users.client(users.clinician)

    answer, token_id = revoke_first_token(app, clinician)

    assert answer.status_code == 404
    with app.app_context():
        assert db.session().get(ApiToken, token_id).revoked_at is None


def test_account_page_shows_a_new_token_once_and_stores_only_its_hash(app, users, csrf_token):
    client = users.client(users.admin)

    made = client.post(
        "/account/tokens", data={"csrf_token": csrf_token(client, "/account"), "name": "scanner"}
    )

    assert made.status_code == 201
    token = re.search(r'<code class="token">(psk_[A-Za-z0-9_-]+)</code>', made.get_data(as_text=True)).group(
        1
    )
    with app.app_context():
        row = db.session().scalar(select(ApiToken))
        event = db.session().scalar(select(AuditEvent).where(AuditEvent.action == "token-create"))
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest() and row.name == "scanner"
    assert event.user_id == users.admin.id and event.target_id == str(row.id)
    later = client.get("/account").get_data(as_text=True)
    assert token not in later and row.prefix in later
    assert app.test_client().get("/api/v1/predictions", headers=bearer(token)).status_code == 200


def test_deactivated_users_tokens_stop_working(app, users):
    token = users.token(users.clinician)
    admin = users.client(users.admin)
    assert app.test_client().get("/api/v1/predictions", headers=bearer(token)).status_code == 200

    with app.app_context():
        from pneumoscan.web.accounts import rules
        from pneumoscan.web.models import User

        rules.set_active(db.session(), db.session().get(User, users.clinician.id), False)
        db.session().commit()

    assert app.test_client().get("/api/v1/predictions", headers=bearer(token)).status_code == 401
    assert admin.get("/history").status_code == 200
