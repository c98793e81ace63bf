"""The browser flow: upload form with CSRF, result page, stored images, history, health check."""

from __future__ import annotations

import io
import re
from dataclasses import replace

import numpy as np
from conftest import colour_png, inline_code
from PIL import Image

from pneumoscan.decode import decode_image
from pneumoscan.formats import ACCEPTED_LABELS, FILE_PICKER_ACCEPT, FORMATS
from pneumoscan.model_card import ModelCard
from pneumoscan.web.models import Result
from pneumoscan.web.server.security import CONTENT_SECURITY_POLICY

NOTICE = "Second-opinion aid, not a diagnosis."


def test_form_upload_with_csrf_token_shows_result_with_both_images(make_app, csrf_token, xray_paths):
    app = make_app(WTF_CSRF_ENABLED=True)
    client = app.test_client()
    xray = xray_paths[1]
    token = csrf_token(client)

    response = client.post("/", data={"csrf_token": token, "file": (xray.open("rb"), xray.name)})

    assert response.status_code == 303
    match = re.fullmatch(r"/predictions/([0-9a-f-]{36})", response.headers["Location"])
    assert match
    page = client.get(response.headers["Location"])
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    with app.app_context():
        from pneumoscan.web import db

        row = db.session().get(Result, match.group(1))
    assert row is not None and row.original_filename == ""
    assert xray.name not in html and f"JPEG, {row.width}×{row.height} px" in html
    assert NOTICE in html
    assert row.label in html and row.model_version in html
    assert f"{row.probability * 100:.1f} %" in html and f"{row.threshold * 100:.1f} %" in html
    assert f"{row.inference_ms:.0f} ms" in html
    for kind, content_type in (("image", "image/jpeg"), ("heatmap", "image/png")):
        url = f"/predictions/{row.id}/{kind}"
        assert f'src="{url}"' in html
        served = client.get(url)
        assert served.status_code == 200
        assert served.headers["Content-Type"] == content_type
        assert served.headers["X-Content-Type-Options"] == "nosniff"
        width, height = Image.open(io.BytesIO(served.data)).size
        assert abs(width / height - row.width / row.height) < 0.01
    kept = client.get(f"/predictions/{row.id}/image").data
    assert np.array_equal(decode_image(kept).gray, decode_image(xray.read_bytes()).gray)
    assert len(kept) <= len(xray.read_bytes())


def test_form_post_without_csrf_token_is_refused(make_app, xray_paths):
    client = make_app(WTF_CSRF_ENABLED=True).test_client()
    client.get("/")

    response = client.post("/", data={"file": (xray_paths[0].open("rb"), "x.jpeg")})

    assert response.status_code == 400
    assert "CSRF" in response.get_data(as_text=True)
    assert client.get("/api/v1/predictions").json["total"] == 0


def test_form_refusals_rerender_the_form_with_message_and_status(make_app, csrf_token):
    client = make_app(WTF_CSRF_ENABLED=True).test_client()
    cases = [
        ({}, 400, "choose a chest X-ray file"),
        ({"file": (io.BytesIO(b""), "empty.jpeg")}, 400, "empty"),
        ({"file": (io.BytesIO(b"just some notes\n" * 20), "notes.png")}, 415, "text"),
        ({"file": (io.BytesIO(colour_png()), "holiday.png")}, 422, "does not look like a chest X-ray"),
    ]
    for fields, status, message in cases:
        response = client.post("/", data={"csrf_token": csrf_token(client), **fields})
        html = response.get_data(as_text=True)
        assert response.status_code == status, fields
        assert message in html
        assert 'name="file"' in html and 'role="alert"' in html
    assert client.get("/api/v1/predictions").json["total"] == 0


def test_form_upload_over_the_size_limit_is_413_on_the_form(make_app, csrf_token):
    client = make_app(WTF_CSRF_ENABLED=True, MAX_CONTENT_LENGTH=1024).test_client()
    token = csrf_token(client)

    response = client.post("/", data={"csrf_token": token, "file": (io.BytesIO(b"\0" * 4096), "big.png")})

    assert response.status_code == 413
    assert 'name="file"' in response.get_data(as_text=True)


def test_history_is_newest_first_paginated_and_links_to_results(make_app, xray_paths):
    client = make_app(HISTORY_PER_PAGE=2).test_client()
    ids = []
    for path in xray_paths[:3]:
        ids.append(client.post("/api/v1/predictions", data={"file": (path.open("rb"), path.name)}).json["id"])

    first = client.get("/history").get_data(as_text=True)
    second = client.get("/history?page=2").get_data(as_text=True)

    linked = lambda html: re.findall(r'href="/predictions/([0-9a-f-]{36})"', html)  # noqa: E731
    assert linked(first) == [ids[2], ids[1]]
    assert linked(second) == [ids[0]]
    assert "Page 1 of 2" in first and 'href="/history?page=2"' in first
    assert "Page 2 of 2" in second and 'href="/history?page=1"' in second
    assert client.get(f"/predictions/{ids[0]}").status_code == 200


def test_unknown_or_malformed_ids_are_404(client):
    for path in (
        "/predictions/00000000-0000-4000-8000-000000000000",
        "/predictions/00000000-0000-4000-8000-000000000000/image",
        "/predictions/00000000-0000-4000-8000-000000000000/heatmap",
        "/predictions/not-a-uuid",
        "/predictions/..%2F..%2Fsecret_key/image",
    ):
        assert client.get(path).status_code == 404, path


def test_security_headers_on_pages_errors_and_files(client):
    for path in ("/", "/history", "/healthz", "/static/style.css", "/no-such-page", "/api/v1/nothing"):
        response = client.get(path)
        assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY, path
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"] == "same-origin"


def test_pages_have_no_inline_script_or_style_and_fit_a_phone(client):
    html = client.get("/").get_data(as_text=True)
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert not inline_code(html)
    assert '<label for="file">' in html


def test_upload_form_offers_and_names_the_listed_formats(client):
    html = client.get("/").get_data(as_text=True)
    assert f'accept="{FILE_PICKER_ACCEPT}"' in html
    assert f"Chest X-ray ({ACCEPTED_LABELS})" in html
    assert all(fmt.label in html and fmt.suffixes[0] in FILE_PICKER_ACCEPT for fmt in FORMATS)
    assert "DICOM files are not kept" in html


def test_healthz_reports_the_loaded_models_version_and_the_database(make_app, model_copy):
    card = ModelCard.load(model_copy)
    replace(card, model_version="renamed-for-this-test").write(model_copy)
    client = make_app(MODEL_DIR=str(model_copy)).test_client()

    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json == {
        "status": "ok",
        "model_version": "renamed-for-this-test",
        "database": "ok",
        "storage": "ok",
    }


def test_not_found_and_wrong_method_are_answered_in_our_words_with_the_next_step(client):
    missing = client.get("/no/such/page")
    assert missing.status_code == 404
    assert "look for it in the history" in missing.get_data(as_text=True)
    assert "requested URL was not found" not in missing.get_data(as_text=True)
    wrong = client.put("/history")
    assert wrong.status_code == 405
    assert "use the page&#39;s own buttons and links" in wrong.get_data(as_text=True)
    assert "not allowed for the requested URL" not in wrong.get_data(as_text=True)


def test_result_page_shows_small_probabilities_and_the_subtype_with_its_caveat(app, client):
    from conftest import add_result

    normal = add_result(app, probability=0.0002)
    html = client.get(f"/predictions/{normal}").get_data(as_text=True)
    assert "&lt; 0.1 %" in html and not re.search(r"[^\d.]0\.0 %", html)
    assert "Subtype" not in html, "no subtype where the result has none"
    assert "blue: where the model looked least" in html and "red: where it looked most" in html

    viral = add_result(app, probability=0.9, label="PNEUMONIA", viral_probability=0.71, subtype="VIRAL")
    html = client.get(f"/predictions/{viral}").get_data(as_text=True)
    assert "Subtype estimate (secondary): <strong>VIRAL</strong>" in html and "71.0 %" in html
    assert html.count("the dataset's curation and noisier than the main label") == 2
