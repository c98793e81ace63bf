"""A real browser (Debian's chromium, via Playwright) reads the dashboard's charts and uses the
site-threshold page: every chart is drawn with a size and its styles, no CSP violation."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from conftest import add_result, csp_violations, sign_in_browser

CHARTS = ("chart-uploads", "chart-probabilities", "chart-refusals", "chart-roc", "chart-drift")


@pytest.fixture
def site_data(app):
    """Reviewed cases of both classes, gate readings near the reference and two refusals."""
    from pneumoscan.drift import READINGS, load_reference
    from pneumoscan.web.modelcache import predictor

    reference = load_reference(app.config["MODEL_DIR"])
    rng = np.random.default_rng(2)
    with app.app_context():
        card = predictor().card
    for label, probability in [(0, p) for p in rng.beta(2, 5, 40)] + [(1, p) for p in rng.beta(5, 2, 45)]:
        reading = {
            name: reference["mean"][name] + reference["spread"][name] * rng.normal() for name in READINGS
        }
        add_result(
            app,
            probability=float(probability),
            threshold=card.threshold,
            model_version=card.model_version,
            findings=("PNEUMONIA",) if label else ("NORMAL",),
            gate_reading=reading,
        )
    client = app.test_client()
    for data in (b"plain text", b"more text"):
        client.post("/api/v1/predictions", data={"file": (io.BytesIO(data), "x.txt")})


def test_dashboard_charts_render_and_the_site_threshold_is_applied(site_data, users, live_url, page, console):
    sign_in_browser(page, live_url, users.admin)
    page.goto(f"{live_url}/dashboard")

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
    assert not csp_violations(console), console

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
    assert not csp_violations(console), console


def test_dashboard_on_a_phone_fits_with_readable_labels_plain_names_and_no_empty_weeks(
    site_data, users, live_url, page, console
):
    from accessibility import serious_violations

    page.set_viewport_size({"width": 390, "height": 844})
    sign_in_browser(page, live_url, users.admin)
    page.goto(f"{live_url}/dashboard")
    assert not page.evaluate("() => document.documentElement.scrollWidth > window.innerWidth")
    smallest = page.evaluate(
        """() => Math.min(...Array.from(document.querySelectorAll("figure.chart text"), (text) =>
            text.getBoundingClientRect().height))"""
    )
    assert smallest >= 11, f"chart labels are {smallest:.1f} px on a phone"
    weeks = page.locator("#drift-table tbody tr")
    assert weeks.count() >= 1
    uploads = [int(weeks.nth(i).locator("td[data-label=Uploads]").inner_text()) for i in range(weeks.count())]
    assert all(uploads), "weeks without uploads are collapsed into one line"
    assert "without uploads not listed" in page.inner_text("#empty-weeks")
    headers = page.inner_text("#drift-table thead")
    assert "_" not in headers and "Near-white area: shift" in headers
    assert not serious_violations(page)
    assert not csp_violations(console), console
