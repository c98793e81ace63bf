"""Uploads of several files and the case reference: each file becomes its own result through
the usual flow, a refused file says why without stopping the others, and the case reference
typed once is kept, shown and searchable for every result of the upload."""

from __future__ import annotations

import io
import re

import pytest
from conftest import colour_png

from pneumoscan.web import db
from pneumoscan.web.models import Result
from pneumoscan.web.results.case_reference import HELP

ID = r"[0-9a-f-]{36}"


def stored(app) -> list[Result]:
    with app.app_context():
        return list(db.session().query(Result).order_by(Result.created_at))


def test_form_with_two_xrays_and_a_photo_makes_two_results_and_says_why_the_photo_was_refused(
    make_app, csrf_token, xray_paths
):
    app = make_app()
    client = app.test_client()
    first, second = xray_paths[0], xray_paths[1]
    files = [
        (io.BytesIO(first.read_bytes()), "first.jpeg"),
        (io.BytesIO(colour_png()), "holiday.png"),
        (io.BytesIO(second.read_bytes()), "second.jpeg"),
    ]

    posted = client.post(
        "/", data={"csrf_token": csrf_token(client), "file": files, "case_reference": " STUDY-42 "}
    )
    assert posted.status_code == 303 and posted.headers["Location"].startswith("/uploads/")
    response = client.get(posted.headers["Location"])
    assert client.get(posted.headers["Location"]).get_data() == response.get_data(), "a reload shows it again"
    assert app.test_client().get(posted.headers["Location"]).status_code == 404, "kept in that browser only"

    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "2 of 3 X-rays analysed" in html and "STUDY-42" in html
    rows = re.findall(r'<tr class="(made|refused)">(.*?)</tr>', html, re.S)
    assert [kind for kind, _ in rows] == ["made", "refused", "made"]
    assert "first.jpeg" in rows[0][1] and "second.jpeg" in rows[2][1]
    assert "holiday.png" in rows[1][1] and "does not look like a chest X-ray" in rows[1][1]
    results = stored(app)
    assert len(results) == 2
    assert all(row.case_reference == "STUDY-42" and row.original_filename == "" for row in results)
    linked = [
        re.search(rf'href="/predictions/({ID})"', cells).group(1) for kind, cells in rows if kind == "made"
    ]
    assert linked == [row.id for row in results]
    for row, (_kind, cells) in zip(results, [rows[0], rows[2]], strict=True):
        shown = "&lt; 0.1 %" if row.probability < 0.0005 else f"{row.probability * 100:.1f} %"
        assert row.label in cells and shown in cells
        assert client.get(f"/predictions/{row.id}").status_code == 200
    single = client.post(
        "/", data={"csrf_token": csrf_token(client), "file": (io.BytesIO(first.read_bytes()), "a.jpeg")}
    )
    assert single.status_code == 303 and re.fullmatch(rf"/predictions/{ID}", single.headers["Location"])


def test_several_files_all_refused_answer_with_the_refusal_status(make_app, csrf_token):
    app = make_app()
    client = app.test_client()
    files = [(io.BytesIO(colour_png()), "a.png"), (io.BytesIO(b"some notes\n" * 20), "b.png")]

    response = client.post("/", data={"csrf_token": csrf_token(client), "file": files})

    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "0 of 2 X-rays analysed" in html and html.count("Refused:") == 2
    assert stored(app) == []


def test_more_files_than_allowed_are_refused_before_any_is_analysed(make_app, csrf_token, xray_paths):
    app = make_app(MAX_FILES_PER_UPLOAD=2)
    client = app.test_client()
    files = [(io.BytesIO(path.read_bytes()), path.name) for path in xray_paths[:3]]

    response = client.post("/", data={"csrf_token": csrf_token(client), "file": files})

    assert response.status_code == 400
    assert "choose at most 2 files at once (3 chosen)" in response.get_data(as_text=True)
    assert stored(app) == []


def test_upload_form_takes_several_files_and_asks_for_no_names(client):
    html = client.get("/").get_data(as_text=True)

    assert re.search(r'<input[^>]*\bmultiple\b[^>]*name="file"', html)
    assert HELP in html and "do not enter names" in html
    assert '<label for="case_reference">Case reference (optional)</label>' in html
    assert 'maxlength="64"' in html


def test_case_reference_from_the_api_is_stored_shown_and_searchable(make_app, xray_paths):
    app = make_app()
    client = app.test_client()
    path = xray_paths[0]

    created = client.post(
        "/api/v1/predictions",
        data={"file": (io.BytesIO(path.read_bytes()), path.name), "case_reference": "Ward3-0017"},
    )
    other = client.post("/api/v1/predictions", data={"file": (io.BytesIO(path.read_bytes()), path.name)})

    assert created.status_code == 201 and created.json["case_reference"] == "Ward3-0017"
    assert other.json["case_reference"] is None
    prediction_id = created.json["id"]
    assert client.get(f"/api/v1/predictions/{prediction_id}").json["case_reference"] == "Ward3-0017"
    assert "Ward3-0017" in client.get(f"/predictions/{prediction_id}").get_data(as_text=True)
    assert "Ward3-0017" in client.get("/history").get_data(as_text=True)
    found = client.get("/api/v1/predictions?case=ward3").json
    assert [item["id"] for item in found["items"]] == [prediction_id]
    assert re.findall(
        rf'href="/predictions/({ID})"', client.get("/history?case=0017").get_data(as_text=True)
    ) == [prediction_id]


@pytest.mark.parametrize(
    ("reference", "words"),
    [
        ("x" * 65, "the case reference is limited to 64 characters"),
        ("line one\nline two", "the case reference must be printable text on one line"),
        ("bell\x07", "must be printable"),
    ],
)
def test_bad_case_references_are_refused_on_form_and_api(make_app, csrf_token, xray_paths, reference, words):
    app = make_app()
    client = app.test_client()
    path = xray_paths[0]

    api = client.post(
        "/api/v1/predictions",
        data={"file": (io.BytesIO(path.read_bytes()), path.name), "case_reference": reference},
    )
    form = client.post(
        "/",
        data={
            "csrf_token": csrf_token(client),
            "file": (io.BytesIO(path.read_bytes()), path.name),
            "case_reference": reference,
        },
    )

    assert api.status_code == 400 and words in api.json["error"]
    assert form.status_code == 400 and words in form.get_data(as_text=True)
    assert 'id="case-errors"' in form.get_data(as_text=True)
    assert stored(app) == []
