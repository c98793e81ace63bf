"""CSV exports (/history.csv and /api/v1/predictions?format=csv): every matching result with its
latest review, the history's filters applied, each export audited, formulas made inert."""

from __future__ import annotations

import csv
import io

import pytest
from conftest import add_result
from sqlalchemy import select

from pneumoscan.web import db
from pneumoscan.web.models import AuditEvent, Result, User
from pneumoscan.web.results import reviews
from pneumoscan.web.results.exports import COLUMNS, safe_cell


def parse(response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="pneumoscan-results-')
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert tuple(rows[0]) == COLUMNS
    return [dict(zip(COLUMNS, row, strict=True)) for row in rows[1:]]


def review(app, prediction_id: str, finding: str, note: str | None, reviewer) -> None:
    with app.app_context():
        session = db.session()
        reviews.add_review(
            session,
            session.get(Result, prediction_id),
            finding,
            note,
            session.get(User, reviewer.id),
        )
        session.commit()


def exports(app) -> list[AuditEvent]:
    with app.app_context():
        return list(db.session().scalars(select(AuditEvent).where(AuditEvent.action == "export")))


@pytest.fixture
def two_results(app, users) -> tuple[str, str]:
    reviewed = add_result(
        app,
        label="PNEUMONIA",
        logit=2.2,
        uploaded_by=users.clinician,
        case_reference='=HYPERLINK("http://x")',
    )
    review(app, reviewed, "NORMAL", "first", users.clinician)
    review(app, reviewed, "PNEUMONIA", "@SUM(A1:A9) looks consolidated", users.admin)
    unreviewed = add_result(app, label="NORMAL", logit=-2.2, case_reference="C-77")
    return reviewed, unreviewed


def test_history_csv_has_each_result_with_its_latest_review(app, users, two_results):
    reviewed, unreviewed = two_results

    rows = parse(users.client(users.clinician).get("/history.csv"))

    assert [row["id"] for row in rows] == [unreviewed, reviewed]
    latest, plain = rows[1], rows[0]
    assert latest["label"] == "PNEUMONIA" and float(latest["probability"]) == 0.9
    assert float(latest["logit"]) == 2.2 and float(latest["threshold"]) == 0.5
    assert latest["model_version"] == "test-model" and latest["uploader"] == "Dr Cy Clinician"
    assert latest["review_finding"] == "PNEUMONIA" and latest["reviewed_by"] == "Dr Ada Admin"
    assert latest["review_version"] == "2" and latest["review_state"] == "agreed"
    assert latest["reviewed_at"] and latest["created_at"].endswith("+00:00")
    assert plain["review_state"] == "unreviewed" and plain["review_finding"] == "" and plain["uploader"] == ""
    assert float(plain["logit"]) == -2.2


def test_the_subtype_columns_come_last_at_full_precision_and_blank_where_none(app, users):
    viral = add_result(app, label="PNEUMONIA", viral_probability=0.123456789012345678, subtype="VIRAL")
    normal = add_result(app, label="NORMAL", viral_probability=0.987654321098765)
    before_the_head = add_result(app, label="PNEUMONIA")

    rows = {row["id"]: row for row in parse(users.client(users.clinician).get("/history.csv"))}

    assert COLUMNS[-2:] == ("viral_probability", "subtype")
    assert float(rows[viral]["viral_probability"]) == 0.123456789012345678
    assert rows[viral]["subtype"] == "VIRAL"
    assert float(rows[normal]["viral_probability"]) == 0.987654321098765 and rows[normal]["subtype"] == ""
    assert rows[before_the_head]["viral_probability"] == rows[before_the_head]["subtype"] == ""


def test_text_that_a_spreadsheet_would_run_is_made_inert(app, users, two_results):
    rows = parse(users.client(users.clinician).get("/history.csv"))

    assert rows[1]["case_reference"] == '\'=HYPERLINK("http://x")'
    assert rows[1]["review_note"] == "'@SUM(A1:A9) looks consolidated"
    assert rows[0]["case_reference"] == "C-77"
    for start in ("=", "+", "-", "@", "\t", "\r"):
        assert safe_cell(f"{start}1+1") == f"'{start}1+1"
    assert safe_cell("plain -text") == "plain -text" and safe_cell(-2.5) == -2.5


def test_filters_apply_to_both_exports_and_each_export_is_audited(app, users, two_results):
    reviewed, unreviewed = two_results
    token = {"Authorization": f"Bearer {users.token(users.admin)}"}

    page_csv = parse(users.client(users.clinician).get("/history.csv?review=agreed"))
    api_csv = parse(
        app.test_client().get("/api/v1/predictions?format=csv&case=c-7&estimate=NORMAL", headers=token)
    )
    everything = parse(app.test_client().get("/api/v1/predictions?format=csv&limit=1", headers=token))

    assert [row["id"] for row in page_csv] == [reviewed]
    assert [row["id"] for row in api_csv] == [unreviewed]
    assert [row["id"] for row in everything] == [unreviewed, reviewed]
    events = exports(app)
    assert [(event.user_id, event.detail) for event in events] == [
        (users.clinician.id, "1 result(s) as CSV from /history.csv; review=agreed"),
        (users.admin.id, "1 result(s) as CSV from /api/v1/predictions; estimate=NORMAL case=c-7"),
        (users.admin.id, "2 result(s) as CSV from /api/v1/predictions; all results"),
    ]


def test_exports_need_an_account_once_one_exists(app, users, two_results):
    anonymous = app.test_client()

    assert anonymous.get("/history.csv").status_code == 302
    assert anonymous.get("/api/v1/predictions?format=csv").status_code == 401
    assert exports(app) == []
