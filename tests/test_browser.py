"""A real browser (Debian's chromium, driven by Playwright) signs in and uploads an X-ray.

It checks what a clinician sees: the result page with the label, probability, uploader and
both images actually loaded, no Content-Security-Policy violation, a layout that fits a phone,
the history page linking back, and that signing out locks the result away again. The result
page's screenshot goes to a temporary folder; `make screenshot` passes `--screenshot-to
docs/screenshot-result.png` to refresh the README's picture.
"""

from __future__ import annotations

import re
import shutil

from conftest import PASSWORD, csp_violations, loaded_images


def test_sign_in_upload_see_result_and_history_then_sign_out(
    xray_paths, users, live_url, page, console, tmp_path, request
):
    xray = xray_paths[1]

    page.goto(f"{live_url}/history")
    page.wait_for_url(re.compile(r"/login\?next="))
    page.get_by_label("Email").fill(users.clinician.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/history$"))
    page.get_by_role("link", name="Upload", exact=True).click()
    page.get_by_label(re.compile("x-ray", re.I)).set_input_files(str(xray))
    page.get_by_role("button", name=re.compile("analyse", re.I)).click()
    page.wait_for_url(re.compile(r"/predictions/[0-9a-f-]{36}$"))
    page.wait_for_load_state("load")

    prediction_id = page.url.rsplit("/", 1)[1]
    stored = page.request.get(f"{live_url}/api/v1/predictions/{prediction_id}").json()
    body = page.inner_text("main")
    assert stored["label"] in ("PNEUMONIA", "NORMAL")
    assert stored["label"] in page.inner_text(".summary")
    assert f"{stored['probability'] * 100:.1f} %" in body
    assert "not a diagnosis" in body
    assert xray.name not in body and "JPEG" in page.inner_text(".summary")
    assert page.inner_text(".uploader") == "Dr Cy Clinician"
    assert stored["uploaded_by"]["name"] == "Dr Cy Clinician"

    images = loaded_images(page)
    assert len(images) == 4, images  # the two figures (shown without JavaScript) and the viewer's layers
    assert all(image["complete"] and image["width"] > 0 for image in images), images
    expected = {live_url + stored["image_url"], live_url + stored["heatmap_url"]}
    assert {image["src"].split("?")[0] for image in images} == expected
    assert not csp_violations(console), console

    screenshot = tmp_path / "screenshot-result.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    if request.config.getoption("screenshot_to"):
        shutil.copyfile(screenshot, request.config.getoption("screenshot_to"))

    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390, (
        "result page scrolls sideways on a phone"
    )
    page.set_viewport_size({"width": 1200, "height": 900})

    page.get_by_role("link", name="History").first.click()
    page.wait_for_url(re.compile(r"/history"))
    row_link = page.locator(f"a[href$='/predictions/{prediction_id}']")
    assert row_link.count() == 1
    row_link.click()
    page.wait_for_url(re.compile(f"/predictions/{prediction_id}$"))
    assert all(image["width"] > 0 for image in loaded_images(page))
    assert "Dr Cy Clinician" in page.inner_text("main")

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/login$"))
    assert "signed out" in page.inner_text("main")
    page.goto(f"{live_url}/predictions/{prediction_id}")
    assert re.search(r"/login\?next=", page.url)
    refused = page.request.get(f"{live_url}/api/v1/predictions/{prediction_id}")
    assert refused.status == 401
    image = page.request.get(live_url + stored["image_url"], max_redirects=0)
    assert image.status == 302
    assert not csp_violations(console), console
