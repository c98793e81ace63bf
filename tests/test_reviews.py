"""Clinicians' reviews: recorded through the API and the result page, versioned (never
overwritten), validated, signed by the reviewer, audited, and shown with each result."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from conftest import add_result
from sqlalchemy import select

from pneumoscan.web import db
from pneumoscan.web.models import AuditEvent, Review
from pneumoscan.web.results.reviews import MAX_NOTE_LENGTH
from tests.api_schema import REVIEW, mismatches
from tests.openapi_conformance import conforming

UNKNOWN = "00000000-0000-4000-8000-000000000000"


@pytest.fixture(autouse=True)
def responses_conform(monkeypatch):
    """Every API answer a test here receives fits the OpenAPI document."""
    yield from conforming(monkeypatch)


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def review_rows(app, prediction_id: str) -> list[Review]:
    with app.app_context():
        return list(
            db.session().scalars(
                select(Review).where(Review.prediction_id == prediction_id).order_by(Review.version)
            )
        )


def test_api_review_is_created_changed_as_new_versions_and_shown_with_the_result(app, users):
    prediction_id = add_result(app, label="PNEUMONIA")
    clinician, admin = bearer(users.token(users.clinician)), bearer(users.token(users.admin))
    client = app.test_client()

    first = client.post(
        f"/api/v1/predictions/{prediction_id}/review",
        json={"finding": "NORMAL", "note": "  clear lungs on my read  "},
        headers=clinician,
    )
    second = client.post(
        f"/api/v1/predictions/{prediction_id}/review", json={"finding": "PNEUMONIA"}, headers=admin
    )

    assert first.status_code == 201 and second.status_code == 201
    assert mismatches(first.json, REVIEW) == [] and mismatches(second.json, REVIEW) == []
    assert first.json["version"] == 1 and first.json["finding"] == "NORMAL"
    assert first.json["note"] == "clear lungs on my read"
    assert first.json["reviewer"] == {"id": users.clinician.id, "name": "Dr Cy Clinician"}
    assert datetime.fromisoformat(first.json["created_at"]).utcoffset().total_seconds() == 0
    assert second.json["version"] == 2 and second.json["note"] is None
    assert second.json["reviewer"]["name"] == "Dr Ada Admin"
    stored = review_rows(app, prediction_id)
    assert [(row.version, row.finding, row.reviewer_id) for row in stored] == [
        (1, "NORMAL", users.clinician.id),
        (2, "PNEUMONIA", users.admin.id),
    ]

    fetched = client.get(f"/api/v1/predictions/{prediction_id}", headers=clinician).json
    assert fetched["review"] == second.json
    listed = client.get("/api/v1/predictions", headers=clinician).json["items"]
    assert [item["review"] for item in listed] == [second.json]


def test_api_review_confirms_the_subtype_optionally(app, users):
    prediction_id = add_result(app, label="PNEUMONIA", viral_probability=0.7, subtype="VIRAL")
    token, client = bearer(users.token(users.clinician)), app.test_client()
    path = f"/api/v1/predictions/{prediction_id}/review"

    confirmed = client.post(
        path, json={"finding": "PNEUMONIA", "subtype_finding": "BACTERIAL"}, headers=token
    )
    not_assessed = client.post(path, json={"finding": "PNEUMONIA", "subtype_finding": None}, headers=token)

    assert confirmed.status_code == 201 and confirmed.json["subtype_finding"] == "BACTERIAL"
    assert not_assessed.status_code == 201 and not_assessed.json["subtype_finding"] is None
    assert mismatches(confirmed.json, REVIEW) == []
    assert [row.subtype_finding for row in review_rows(app, prediction_id)] == ["BACTERIAL", None]
    with app.app_context():
        details = db.session().scalars(select(AuditEvent.detail).where(AuditEvent.action == "review")).all()
    assert details == ["version 1: PNEUMONIA BACTERIAL", "version 2: PNEUMONIA"]


def test_an_unreviewed_result_has_review_null(app, users):
    prediction_id = add_result(app)
    client = app.test_client()
    token = bearer(users.token(users.clinician))

    assert client.get(f"/api/v1/predictions/{prediction_id}", headers=token).json["review"] is None


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"finding": "maybe"}, "'finding' must be one of PNEUMONIA, NORMAL, UNSURE"),
        ({"finding": "normal"}, "'finding' must be one of"),
        ({}, "'finding' must be one of"),
        ({"finding": ["NORMAL"]}, "'finding' must be one of"),
        ({"finding": "NORMAL", "note": 5}, "'note' must be text"),
        ({"finding": None}, "'finding' must be one of"),
        (
            {"finding": "NORMAL", "subtype_finding": "FUNGAL"},
            "'subtype_finding' must be one of BACTERIAL, VIRAL",
        ),
        ({"finding": "NORMAL", "findings": "NORMAL"}, "'findings' is not a field"),
        ({"finding": "NORMAL", "note": "x" * (MAX_NOTE_LENGTH + 1)}, f"limited to {MAX_NOTE_LENGTH}"),
        ({"finding": "PNEUMONIA", "subtype_finding": "viral"}, "'subtype_finding' must be one of"),
        ({"finding": "PNEUMONIA", "subtype_finding": ["VIRAL"]}, "'subtype_finding' must be one of"),
        ({"finding": "NORMAL", "subtype_finding": "VIRAL"}, "only with the finding PNEUMONIA, not NORMAL"),
        ({"finding": "UNSURE", "subtype_finding": "BACTERIAL"}, "only with the finding PNEUMONIA"),
        (["NORMAL"], "send a JSON object"),
        ("NORMAL", "send a JSON object"),
    ],
)
def test_bad_reviews_are_400_with_a_clear_message_and_nothing_stored(app, users, body, words):
    prediction_id = add_result(app)

    response = app.test_client().post(
        f"/api/v1/predictions/{prediction_id}/review", json=body, headers=bearer(users.token(users.clinician))
    )

    assert response.status_code == 400
    assert words in response.json["error"]
    assert review_rows(app, prediction_id) == []


def test_api_review_may_confirm_the_subtype(app, users):
    prediction_id = add_result(app, label="PNEUMONIA")
    token = bearer(users.token(users.clinician))
    client = app.test_client()

    with_subtype = client.post(
        f"/api/v1/predictions/{prediction_id}/review",
        json={"finding": "PNEUMONIA", "subtype_finding": "VIRAL"},
        headers=token,
    )
    without = client.post(
        f"/api/v1/predictions/{prediction_id}/review", json={"finding": "PNEUMONIA"}, headers=token
    )

    assert with_subtype.status_code == 201 and with_subtype.json["subtype_finding"] == "VIRAL"
    assert without.json["subtype_finding"] is None
    assert [row.subtype_finding for row in review_rows(app, prediction_id)] == ["VIRAL", None]


def test_a_body_that_is_not_json_is_400(app, users):
    prediction_id = add_result(app)

    response = app.test_client().post(
        f"/api/v1/predictions/{prediction_id}/review",
        data="finding=NORMAL",
        content_type="application/x-www-form-urlencoded",
        headers=bearer(users.token(users.clinician)),
    )

    assert response.status_code == 400 and "JSON object" in response.json["error"]


def test_a_note_at_the_limit_is_kept_whole(app, users):
    prediction_id = add_result(app)
    note = "n" * MAX_NOTE_LENGTH

    response = app.test_client().post(
        f"/api/v1/predictions/{prediction_id}/review",
        json={"finding": "UNSURE", "note": note},
        headers=bearer(users.token(users.clinician)),
    )

    assert response.status_code == 201 and response.json["note"] == note


def test_review_of_an_unknown_result_is_404(app, users):
    response = app.test_client().post(
        f"/api/v1/predictions/{UNKNOWN}/review",
        json={"finding": "NORMAL"},
        headers=bearer(users.token(users.clinician)),
    )

    assert response.status_code == 404 and response.json == {"error": "no such prediction"}


def test_review_without_a_token_is_401_and_without_any_account_too(app, make_app):
    prediction_id = add_result(app)
    open_demo = app.test_client()
    refused = open_demo.post(f"/api/v1/predictions/{prediction_id}/review", json={"finding": "NORMAL"})
    assert refused.status_code == 401 and "sign" in refused.json["error"]

    from conftest import Accounts

    Accounts(app)
    anonymous = app.test_client().post(
        f"/api/v1/predictions/{prediction_id}/review", json={"finding": "NORMAL"}
    )
    assert anonymous.status_code == 401 and anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    assert review_rows(app, prediction_id) == []


def test_each_review_is_audited(app, users):
    prediction_id = add_result(app)
    token = bearer(users.token(users.clinician))
    client = app.test_client()
    for finding in ("NORMAL", "UNSURE"):
        client.post(f"/api/v1/predictions/{prediction_id}/review", json={"finding": finding}, headers=token)

    with app.app_context():
        events = db.session().scalars(select(AuditEvent).where(AuditEvent.action == "review")).all()
        assert [(event.target_id, event.user_id, event.detail) for event in events] == [
            (prediction_id, users.clinician.id, "version 1: NORMAL"),
            (prediction_id, users.clinician.id, "version 2: UNSURE"),
        ]


def test_result_page_form_records_reviews_and_shows_latest_and_versions(app, users, csrf_token):
    prediction_id = add_result(app, label="PNEUMONIA")
    client = users.client(users.clinician)
    path = f"/predictions/{prediction_id}"
    assert "Not reviewed yet." in client.get(path).get_data(as_text=True)

    for finding, note in (("NORMAL", "first read"), ("PNEUMONIA", "on second look")):
        answer = client.post(
            f"{path}/review", data={"csrf_token": csrf_token(client, path), "finding": finding, "note": note}
        )
        assert answer.status_code == 303 and answer.headers["Location"] == path

    html = client.get(path).get_data(as_text=True)
    latest = html.split('class="latest-review"')[1].split("</p>")[0]
    assert "PNEUMONIA" in latest and "Dr Cy Clinician" in latest and "(version 2)" in latest
    assert "on second look" in latest
    history = html.split("Review versions, newest first")[1]
    assert history.index("on second look") < history.index("first read")
    assert re.search(
        r'<input checked id="finding-0" name="finding" required type="radio" value="PNEUMONIA">', html
    )
    assert "review saved: PNEUMONIA (version 2)" in html
    assert [row.finding for row in review_rows(app, prediction_id)] == ["NORMAL", "PNEUMONIA"]


def test_result_page_form_confirms_the_subtype_or_leaves_it_not_assessed(app, users, csrf_token):
    prediction_id = add_result(app, label="PNEUMONIA", viral_probability=0.2, subtype="BACTERIAL")
    client = users.client(users.clinician)
    path = f"/predictions/{prediction_id}"
    unreviewed = client.get(path).text
    assert re.search(
        r'<input checked id="subtype_finding-2" name="subtype_finding" type="radio" value="">', unreviewed
    )

    saved = client.post(
        f"{path}/review",
        data={"csrf_token": csrf_token(client, path), "finding": "PNEUMONIA", "subtype_finding": "VIRAL"},
        follow_redirects=True,
    ).text
    latest = saved.split('class="latest-review"')[1].split("</p>")[0]
    assert "review saved: PNEUMONIA, VIRAL (version 1)" in saved and "VIRAL" in latest
    assert re.search(
        r'<input checked id="subtype_finding-1" name="subtype_finding" type="radio" value="VIRAL">', saved
    )
    client.post(
        f"{path}/review",
        data={"csrf_token": csrf_token(client, path), "finding": "NORMAL", "subtype_finding": ""},
    )
    refused = client.post(
        f"{path}/review",
        data={"csrf_token": csrf_token(client, path), "finding": "NORMAL", "subtype_finding": "VIRAL"},
    )
    invalid = client.post(
        f"{path}/review",
        data={"csrf_token": csrf_token(client, path), "finding": "PNEUMONIA", "subtype_finding": "FUNGAL"},
    )

    assert refused.status_code == 400 and "only with the finding PNEUMONIA" in refused.text
    assert invalid.status_code == 400 and "Not a valid choice" in invalid.text
    assert [(row.finding, row.subtype_finding) for row in review_rows(app, prediction_id)] == [
        ("PNEUMONIA", "VIRAL"),
        ("NORMAL", None),
    ]


def test_result_page_refuses_bad_reviews_with_the_reason(app, users, csrf_token):
    prediction_id = add_result(app)
    client = users.client(users.clinician)
    path = f"/predictions/{prediction_id}"

    no_finding = client.post(f"{path}/review", data={"csrf_token": csrf_token(client, path), "note": "x"})
    too_long = client.post(
        f"{path}/review",
        data={
            "csrf_token": csrf_token(client, path),
            "finding": "NORMAL",
            "note": "x" * (MAX_NOTE_LENGTH + 1),
        },
    )
    no_token = client.post(f"{path}/review", data={"finding": "NORMAL"})

    assert no_finding.status_code == 400
    assert "choose PNEUMONIA, NORMAL or UNSURE" in no_finding.get_data(as_text=True)
    assert too_long.status_code == 400
    assert f"the note is limited to {MAX_NOTE_LENGTH} characters" in too_long.get_data(as_text=True)
    assert no_token.status_code == 400 and "CSRF" in no_token.get_data(as_text=True)
    assert review_rows(app, prediction_id) == []


def test_open_demo_shows_no_review_form_and_refuses_unsigned_reviews(app, csrf_token):
    prediction_id = add_result(app)
    client = app.test_client()
    path = f"/predictions/{prediction_id}"

    html = client.get(path).get_data(as_text=True)
    refused = client.post(f"{path}/review", data={"csrf_token": csrf_token(client), "finding": "NORMAL"})

    assert 'name="finding"' not in html and "sign in with an account to record one" in html
    assert refused.status_code == 403
    assert review_rows(app, prediction_id) == []


def test_deleting_a_result_deletes_its_reviews(app, users):
    kept, deleted = add_result(app), add_result(app)
    token = bearer(users.token(users.admin))
    client = app.test_client()
    for prediction_id in (kept, deleted):
        client.post(f"/api/v1/predictions/{prediction_id}/review", json={"finding": "NORMAL"}, headers=token)

    assert client.delete(f"/api/v1/predictions/{deleted}", headers=token).status_code == 204

    assert review_rows(app, deleted) == []
    assert [row.finding for row in review_rows(app, kept)] == ["NORMAL"]
