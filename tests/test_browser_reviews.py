"""Real-browser tests (Debian's chromium, driven by Playwright) of what the review loop adds to the pages:
recording a review on the result page, uploading several files through the form, and printing a
result on one A4 page. Every page is checked for Content-Security-Policy violations."""

from __future__ import annotations

import re

from conftest import colour_png, csp_violations, loaded_images, sign_in_browser, tall_xray, upload_through_api

RESULT_URL = re.compile(r"/predictions/[0-9a-f-]{36}$")


def pdf_page_count(pdf: bytes) -> int:
    """Page objects in a PDF (Chromium writes them uncompressed): `/Type /Page`, not `/Pages`."""
    return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", pdf))


def test_review_recorded_on_the_result_page_is_there_after_reload(users, live_url, page, console, xray_paths):
    sign_in_browser(page, live_url, users.clinician)
    prediction_id = upload_through_api(page, live_url, xray_paths[0].read_bytes())
    page.goto(f"{live_url}/predictions/{prediction_id}")
    assert page.inner_text(".latest-review") == "Not reviewed yet."

    page.get_by_label("UNSURE", exact=True).check()
    page.get_by_label("Note (optional)").fill("faint opacity, ask for a lateral view")
    page.get_by_role("button", name="Save review").click()
    page.wait_for_url(RESULT_URL)
    page.reload()

    latest = page.inner_text(".latest-review")
    assert "UNSURE" in latest and "Dr Cy Clinician" in latest and "(version 1)" in latest
    assert "faint opacity, ask for a lateral view" in latest
    assert page.get_by_label("UNSURE", exact=True).is_checked()
    page.get_by_label("NORMAL", exact=True).check()
    page.get_by_role("button", name="Save a new version").click()
    page.wait_for_url(RESULT_URL)
    page.reload()
    assert "NORMAL" in page.inner_text(".latest-review") and "(version 2)" in page.inner_text(
        ".latest-review"
    )
    versions = page.locator(".review-history tbody tr")
    assert versions.count() == 2
    assert "UNSURE" in versions.nth(1).inner_text() and "Dr Cy Clinician" in versions.nth(1).inner_text()
    stored = page.request.get(f"{live_url}/api/v1/predictions/{prediction_id}").json()
    assert stored["review"]["finding"] == "NORMAL" and stored["review"]["version"] == 2
    assert not csp_violations(console), console


def test_several_files_through_the_form_each_get_a_result_or_a_reason(
    users, live_url, page, console, xray_paths, tmp_path
):
    photo = tmp_path / "holiday.png"
    photo.write_bytes(colour_png())
    sign_in_browser(page, live_url, users.clinician)
    page.goto(live_url)

    page.get_by_label(re.compile("chest x-ray", re.I)).set_input_files(
        [str(xray_paths[0]), str(photo), str(xray_paths[1])]
    )
    page.get_by_label("Case reference (optional)").fill("STUDY-9")
    page.get_by_role("button", name=re.compile("analyse", re.I)).click()
    page.wait_for_load_state("load")

    assert re.search(r"/uploads/[\w-]+$", page.url), "the answer has its own URL"
    assert page.inner_text("h1") == "2 of 3 X-rays analysed"
    rows = page.locator("table.uploads tbody tr")
    assert rows.count() == 3
    assert "does not look like a chest X-ray" in rows.nth(1).inner_text()
    links = page.get_by_role("link", name="Open result")
    assert links.count() == 2
    made = [
        (row.locator(".label").inner_text(), row.get_by_role("link").get_attribute("href"))
        for row in (rows.nth(0), rows.nth(2))
    ]
    for estimate, href in made:
        page.goto(live_url + href)
        assert page.locator(".summary .label").inner_text() == estimate
        assert page.inner_text(".case-reference") == "STUDY-9"
        assert all(image["complete"] and image["width"] > 0 for image in loaded_images(page))
    page.goto(f"{live_url}/history?case=STUDY-9")
    assert page.locator("tbody tr").count() == 2
    assert not csp_violations(console), console


def test_result_prints_on_one_a4_page_with_what_matters_and_no_navigation_or_forms(
    users, live_url, page, console, xray_paths
):
    sign_in_browser(page, live_url, users.admin)
    prediction_id = upload_through_api(page, live_url, tall_xray(xray_paths[1]), "STUDY-2026-0042")
    note = "Agree: right lower lobe consolidation, compare with the lateral view. " * 9
    review = page.request.post(
        f"{live_url}/api/v1/predictions/{prediction_id}/review",
        data={"finding": "PNEUMONIA", "note": note},
        headers={"Origin": live_url},
    )
    assert review.status == 201
    page.goto(f"{live_url}/predictions/{prediction_id}")
    page.wait_for_load_state("load")
    button = page.get_by_role("button", name="Print / save as PDF")
    assert button.is_visible(), "the print button is shown once print.js runs"
    page.evaluate("() => { window.print = () => { window.printed = true; }; }")
    button.click()
    assert page.evaluate("() => window.printed === true")

    page.emulate_media(media="print")

    for hidden in (
        "header.site",
        "nav",
        "form.review-form",
        ".danger",
        ".print-button",
        ".review-history",
    ):
        assert page.locator(hidden).count() >= 1 and not page.locator(hidden).first.is_visible(), hidden
    for shown in (".summary", ".notice", ".latest-review", "img", ".legend-bar"):
        assert page.locator(shown).first.is_visible(), shown
    assert all(page.locator("img").nth(index).is_visible() for index in range(2))
    summary = page.inner_text(".summary")
    stored = page.request.get(f"{live_url}/api/v1/predictions/{prediction_id}").json()
    assert stored["label"] in summary and stored["model_version"] in summary
    assert f"{stored['threshold'] * 100:.1f} %" in summary
    assert "PNEUMONIA" in page.inner_text(".latest-review") and "Dr Ada Admin" in page.inner_text(
        ".latest-review"
    )
    assert "not a diagnosis" in page.inner_text(".notice")
    assert page.inner_text(".case-reference") == "STUDY-2026-0042"
    assert all(image["complete"] and image["width"] > 0 for image in loaded_images(page))

    pdf = page.pdf(format="A4", print_background=True)
    assert pdf.startswith(b"%PDF")
    assert pdf_page_count(pdf) == 1
    assert not csp_violations(console), console
