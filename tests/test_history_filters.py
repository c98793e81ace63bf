"""The history's filters (estimate, subtype, review state, uploader, dates, case reference): the same on
the page and the API, kept in the page's links, and a 400 for any value that is not allowed."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from conftest import add_result

from pneumoscan.web import db
from pneumoscan.web.models import Result, User
from pneumoscan.web.results import reviews

ID = r"[0-9a-f-]{36}"


@pytest.fixture
def results(app, users) -> dict[str, str]:
    """Seven results covering every filter value: name -> id."""
    clinician, admin = users.clinician, users.admin
    rows = {  # name: (estimate, uploaded at, uploaded by, case reference)
        "agreed": ("PNEUMONIA", datetime(2026, 3, 1, 9, tzinfo=UTC), clinician, "STUDY-7/a"),
        "disagreed": ("NORMAL", datetime(2026, 3, 2, 23, 59, tzinfo=UTC), clinician, "study-7/b"),
        "unsure": ("PNEUMONIA", datetime(2026, 3, 3, tzinfo=UTC), admin, "C100_x"),
        "unreviewed_n": ("NORMAL", datetime(2026, 3, 4, tzinfo=UTC), admin, "C1000"),
        "unreviewed_p": ("PNEUMONIA", datetime(2026, 3, 5, tzinfo=UTC), clinician, None),
        "changed_mind": ("NORMAL", datetime(2026, 3, 6, tzinfo=UTC), admin, "50%"),
        "demo": ("NORMAL", datetime(2026, 3, 7, tzinfo=UTC), None, None),
    }
    made = {
        name: add_result(app, label=label, created_at=created, uploaded_by=uploader, case_reference=case)
        for name, (label, created, uploader, case) in rows.items()
    }
    with app.app_context():
        session = db.session()
        reviewer = session.get(User, clinician.id)
        for name, findings in {
            "agreed": ["PNEUMONIA"],
            "disagreed": ["PNEUMONIA"],
            "unsure": ["UNSURE"],
            "changed_mind": ["PNEUMONIA", "NORMAL"],
        }.items():
            row = session.get(Result, made[name])
            for finding in findings:
                reviews.add_review(session, row, finding, None, reviewer)
                session.commit()
    return made


def api_ids(client, token: str, query: str) -> list[str]:
    answer = client.get(f"/api/v1/predictions?{query}", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.json
    return [item["id"] for item in answer.json["items"]]


def page_ids(client, query: str) -> list[str]:
    html = client.get(f"/history?{query}").get_data(as_text=True)
    return re.findall(rf'href="/predictions/({ID})"', html)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["demo", "changed_mind", "unreviewed_p", "unreviewed_n", "unsure", "disagreed", "agreed"]),
        ("estimate=PNEUMONIA", ["unreviewed_p", "unsure", "agreed"]),
        ("estimate=NORMAL", ["demo", "changed_mind", "unreviewed_n", "disagreed"]),
        ("review=agreed", ["changed_mind", "agreed"]),
        ("review=disagreed", ["disagreed"]),
        ("review=unsure", ["unsure"]),
        ("review=unreviewed", ["demo", "unreviewed_p", "unreviewed_n"]),
        ("uploader={admin}", ["changed_mind", "unreviewed_n", "unsure"]),
        ("from=2026-03-02&to=2026-03-03", ["unsure", "disagreed"]),
        ("to=2026-03-02", ["disagreed", "agreed"]),
        ("from=2026-03-06", ["demo", "changed_mind"]),
        ("case=study-7", ["disagreed", "agreed"]),
        ("case=C100_", ["unsure"]),
        ("case=50%25", ["changed_mind"]),
        (
            "estimate=NORMAL&review=unreviewed&uploader={admin}&from=2026-03-01&to=2026-03-31&case=c1",
            ["unreviewed_n"],
        ),
        (
            "sort=newest",
            ["demo", "changed_mind", "unreviewed_p", "unreviewed_n", "unsure", "disagreed", "agreed"],
        ),
        (
            "sort=probability",
            ["unreviewed_p", "unsure", "agreed", "demo", "changed_mind", "unreviewed_n", "disagreed"],
        ),
        (
            "sort=unreviewed",
            ["demo", "unreviewed_p", "unreviewed_n", "changed_mind", "unsure", "disagreed", "agreed"],
        ),
        ("sort=probability&estimate=NORMAL", ["demo", "changed_mind", "unreviewed_n", "disagreed"]),
        (
            "estimate=&review=&uploader=&from=&to=&case=",
            ["demo", "changed_mind", "unreviewed_p", "unreviewed_n", "unsure", "disagreed", "agreed"],
        ),
    ],
)
def test_each_filter_and_a_combination_select_the_same_results_on_page_and_api(
    app, users, results, query, expected
):
    query = query.format(admin=users.admin.id)
    wanted = [results[name] for name in expected]

    assert page_ids(users.client(users.clinician), query) == wanted
    assert api_ids(app.test_client(), users.token(users.clinician), query) == wanted


def test_history_shows_case_reference_and_review_state(app, users, results):
    html = users.client(users.clinician).get("/history").get_data(as_text=True)
    rows = dict(re.findall(rf'href="/predictions/({ID})".*?class="review-state">([^<]+)</td>', html, re.S))

    assert rows[results["agreed"]] == "agreed (PNEUMONIA)"
    assert rows[results["disagreed"]] == "disagreed (PNEUMONIA)"
    assert rows[results["unsure"]] == "unsure (UNSURE)"
    assert rows[results["unreviewed_n"]] == "unreviewed"
    assert rows[results["changed_mind"]] == "agreed (NORMAL)"
    assert "STUDY-7/a" in html and "C1000" in html


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("estimate=maybe", "'estimate' must be one of NORMAL, PNEUMONIA"),
        ("estimate=normal", "'estimate' must be one of"),
        ("review=yes", "'review' must be one of agreed, disagreed, unsure, unreviewed"),
        ("subtype=viral", "'subtype' must be one of BACTERIAL, VIRAL"),
        ("uploader=abc", "'uploader' must be an integer"),
        ("uploader=0", "'uploader' must be at least 1"),
        ("from=2026-13-01", "'from' must be a date written YYYY-MM-DD"),
        ("to=yesterday", "'to' must be a date"),
        ("from=20260301", "'from' must be a date"),
        ("from=2026-03-05&to=2026-03-01", "'from' must not be after 'to'"),
        (f"case={'x' * 65}", "'case' must be printable text of at most 64"),
        ("case=a%0Ab", "'case' must be printable"),
        ("format=xml", "'format' must be json or csv"),
    ],
)
def test_invalid_filters_are_400_naming_the_argument(app, users, query, words):
    api = app.test_client().get(
        f"/api/v1/predictions?{query}", headers={"Authorization": f"Bearer {users.token(users.clinician)}"}
    )
    assert api.status_code == 400 and words in api.json["error"]
    if not query.startswith("format"):
        client = users.client(users.clinician)
        for path in ("/history", "/history.csv"):
            page = client.get(f"{path}?{query}")
            assert page.status_code == 400 and words in page.get_data(as_text=True).replace("&#39;", "'")


def test_the_subtype_filter_selects_the_same_results_on_page_csv_and_api(app, users):
    made = {
        "bacterial": add_result(app, label="PNEUMONIA", viral_probability=0.2, subtype="BACTERIAL"),
        "viral": add_result(app, label="PNEUMONIA", viral_probability=0.8, subtype="VIRAL"),
        "normal": add_result(app, label="NORMAL", viral_probability=0.9),
        "before_the_head": add_result(app, label="PNEUMONIA"),
    }
    client, token = users.client(users.clinician), users.token(users.clinician)
    for query, expected in (("subtype=BACTERIAL", ["bacterial"]), ("subtype=VIRAL", ["viral"])):
        wanted = [made[name] for name in expected]
        csv_ids = [line.split(",")[0] for line in client.get(f"/history.csv?{query}").text.splitlines()[1:]]

        assert page_ids(client, query) == api_ids(app.test_client(), token, query) == csv_ids == wanted
    combined = "subtype=VIRAL&estimate=PNEUMONIA&review=unreviewed"
    assert page_ids(client, combined) == [made["viral"]]
    page = client.get(f"/history?{combined}").text
    assert "<option selected>VIRAL</option>" in page and '<span class="subtype">VIRAL</span>' in page


def test_pagination_links_keep_the_filters(make_app):
    from conftest import Accounts

    app = make_app(HISTORY_PER_PAGE=2)
    users = Accounts(app)
    made = [add_result(app, label="NORMAL", case_reference="CASE-9") for _ in range(5)]
    add_result(app, label="PNEUMONIA", case_reference="CASE-9")
    client = users.client(users.clinician)
    query = "estimate=NORMAL&case=CASE-9&from=2020-01-01"

    first = client.get(f"/history?{query}").get_data(as_text=True)
    older = re.search(r'rel="next" href="([^"]+)"', first).group(1).replace("&amp;", "&")
    second = client.get(older).get_data(as_text=True)
    newer = re.search(r'rel="prev" href="([^"]+)"', second).group(1).replace("&amp;", "&")

    assert "Page 1 of 3" in first and "Page 2 of 3" in second
    for link, page in ((older, 2), (newer, 1)):
        assert f"page={page}" in link
        assert all(part in link for part in ("estimate=NORMAL", "case=CASE-9", "from=2020-01-01"))
    shown = re.findall(rf'href="/predictions/({ID})"', first + second)
    assert shown == list(reversed(made))[:4]
    csv_link = re.search(r'href="(/history\.csv[^"]*)"', first).group(1).replace("&amp;", "&")
    assert all(part in csv_link for part in ("estimate=NORMAL", "case=CASE-9", "from=2020-01-01"))
    assert 'value="CASE-9"' in first and "<option selected>NORMAL</option>" in first


def test_an_unknown_sort_is_a_400_naming_the_choices(users):
    answer = users.client(users.clinician).get("/history?sort=oldest")
    assert answer.status_code == 400
    assert "sort&#39; must be one of newest, probability, unreviewed" in answer.get_data(as_text=True)
