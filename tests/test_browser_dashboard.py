"""A real browser (Debian's chromium, via Playwright) reads the dashboard's charts and uses the
site-threshold page: every chart is drawn with a size and its styles, no CSP violation."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from conftest import PASSWORD
from test_browser import live_url, page  # noqa: F401  (the fixtures, shared)

from tests.site_rows import add_result

CHARTS = ("chart-uploads", "chart-probabilities", "chart-refusals", "chart-roc", "chart-drift")


@pytest.fixture
def site_data(app):
    """Reviewed cases of both classes, gate readings near the reference and two refusals."""
    from pneumoscan.drift import READINGS, load_reference
    from pneumoscan.web import db
    from pneumoscan.web.modelcache import predictor

    reference = load_reference(app.config["MODEL_DIR"])
    rng = np.random.default_rng(2)
    with app.app_context():
        session = db.session()
        card = predictor().card
        for label, probability in [(0, p) for p in rng.beta(2, 5, 40)] + [(1, p) for p in rng.beta(5, 2, 45)]:
            reading = {
                name: reference["mean"][name] + reference["spread"][name] * rng.normal() for name in READINGS
            }
            finding = ("PNEUMONIA",) if label else ("NORMAL",)
            add_result(
                session, float(probability), card.threshold, card.model_version, finding, gate_reading=reading
            )
        session.commit()
    client = app.test_client()
    for data in (b"plain text", b"more text"):
        client.post("/api/v1/predictions", data={"file": (io.BytesIO(data), "x.txt")})


def sign_in(browser, base: str, email: str, path: str) -> None:
    browser.goto(f"{base}{path}")
    browser.get_by_label("Email").fill(email)
    browser.get_by_label("Password").fill(PASSWORD)
    browser.get_by_role("button", name="Sign in").click()
    browser.wait_for_url(re.compile(f"{path}$"))


def test_dashboard_charts_render_and_the_site_threshold_is_applied(site_data, users, live_url, page):  # noqa: F811
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    sign_in(page, live_url, users.admin.email, "/dashboard")

    for chart in CHARTS:
        svg = page.locator(f"svg#{chart}")
        box = svg.bounding_box()
        assert box and box["width"] > 200 and box["height"] > 60, (chart, box)
        assert svg.get_attribute("aria-labelledby") == f"{chart}-title"
        assert page.locator(f"#{chart}-title").text_content()
    bars = page.locator("#chart-uploads rect.bar")
    assert bars.count() == 30
    today = bars.nth(29).bounding_box()
    assert today["height"] > 50, "today's bar (85 uploads) is drawn"
    assert page.evaluate(
        "() => getComputedStyle(document.querySelector('#chart-uploads rect.bar')).fill"
    ) == ("rgb(11, 92, 173)"), "the stylesheet colours the bars (no inline style needed)"
    curve = page.locator("#chart-roc polyline.curve").bounding_box()
    assert curve["width"] > 100 and curve["height"] > 100
    assert page.locator("#chart-refusals rect.bar").count() == 1
    assert "Few cases" not in page.inner_text("main")
    assert page.inner_text("#figure-sensitivity").endswith("%")
    assert not [text for text in console if "Content Security Policy" in text], console

    page.get_by_role("link", name="Threshold").click()
    page.wait_for_url(re.compile("/admin/threshold$"))
    proposed = page.inner_text("#proposed-threshold")
    page.get_by_role("button", name=re.compile("^Apply")).click()
    page.wait_for_url(re.compile("/admin/threshold$"))
    assert f"site threshold {proposed}" in page.inner_text(".flash")
    assert page.inner_text("#threshold-in-use").startswith(proposed)
    assert page.locator("#threshold-history tbody tr").count() == 1
    page.get_by_role("button", name=re.compile("^Reset")).click()
    page.wait_for_url(re.compile("/admin/threshold$"))
    assert "the model card's" in page.inner_text("#threshold-in-use")
    assert page.locator("#threshold-history tbody tr").count() == 2
    assert not [text for text in console if "Content Security Policy" in text], console
