"""Real-browser checks (Debian's chromium, driven by Playwright) at a phone's size (390×844) and a
desktop's (1366×900): every page fits without sideways scrolling, every navigation link can be
reached (directly or through the menu button), axe-core finds nothing serious or critical, the
result page's viewer works under the strict CSP, the upload form shows what it sends, an
over-size upload is answered on our page, and Delete asks first."""

from __future__ import annotations

import io
import re

import pytest
from accessibility import serious_violations
from conftest import csp_violations, sign_in_browser, tall_xray, upload_through_api
from PIL import Image

SIZES = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1366, "height": 900}}
PAGES = (
    "/",
    "{result}",
    "/history",
    "/dashboard",
    "/account",
    "/admin/users",
    "/admin/audit",
    "/admin/threshold",
)


@pytest.fixture(params=list(SIZES))
def size(request, page) -> dict:
    page.set_viewport_size(SIZES[request.param])
    return SIZES[request.param]


def scrolls_sideways(page) -> bool:
    return page.evaluate("() => document.documentElement.scrollWidth > window.innerWidth")


def assert_nav_links_reachable(page, width: int) -> None:
    """Each link of the main navigation is on screen, opening the menu first where it is shown."""
    menu = page.get_by_role("button", name="Menu")
    if menu.is_visible():
        assert menu.get_attribute("aria-expanded") == "false"
        menu.click()
        assert menu.get_attribute("aria-expanded") == "true"
    links = page.locator("nav[aria-label=Main] a, nav[aria-label=Main] button")
    assert links.count() >= 8
    for index in range(links.count()):
        box = links.nth(index).bounding_box()
        assert links.nth(index).is_visible() and box is not None, links.nth(index).inner_text()
        assert box["x"] >= 0 and box["x"] + box["width"] <= width, links.nth(index).inner_text()


def test_every_page_fits_has_its_navigation_and_passes_axe(users, live_url, page, console, size, xray_paths):
    sign_in_browser(page, live_url, users.admin)
    result = upload_through_api(page, live_url, xray_paths[1].read_bytes())
    problems = []
    for path in PAGES:
        page.goto(live_url + path.format(result=f"/predictions/{result}"))
        page.wait_for_load_state("load")
        assert not scrolls_sideways(page), f"{path} scrolls sideways at {size['width']} px"
        problems += serious_violations(page)
        assert_nav_links_reachable(page, size["width"])
        problems += serious_violations(page)
    for path in ("/no/such/page", "/login", f"/predictions/{result}/delete"):
        page.goto(live_url + path)
        assert not scrolls_sideways(page), path
        problems += serious_violations(page)
    assert not problems, problems
    assert not csp_violations(console), console


def test_signed_out_pages_and_form_errors_pass_axe(users, live_url, page, size):
    page.goto(f"{live_url}/login")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state("load")
    assert page.locator("[role=alert] li").count() >= 1
    assert not scrolls_sideways(page)
    assert not serious_violations(page)


def test_result_page_viewer_controls_change_what_is_drawn(users, live_url, page, console, size, xray_paths):
    sign_in_browser(page, live_url, users.clinician)
    result = upload_through_api(page, live_url, tall_xray(xray_paths[1]))
    page.goto(f"{live_url}/predictions/{result}")
    page.wait_for_load_state("load")
    stage, layers, heat = page.locator(".stage"), page.locator(".layers"), page.locator(".heat-layer")
    style = "(element, name) => getComputedStyle(element)[name]"

    for thing in (page.locator(".headline"), stage):
        assert thing.bounding_box()["y"] < 844, "the estimate and the image begin on the first screen"
    real = page.evaluate("() => document.querySelector('.layers img').naturalWidth")
    assert real == 1600, "the original is shown at its own resolution"

    toggle = page.get_by_role("checkbox", name="Show heatmap")
    assert toggle.is_checked() and heat.is_visible()
    toggle.uncheck()
    assert not heat.is_visible()
    toggle.check()
    assert heat.is_visible()

    page.get_by_role("slider", name="Heatmap opacity").fill("25")
    assert heat.evaluate(style, "opacity") == "0.25"
    page.get_by_role("slider", name="Contrast").fill("180")
    assert "contrast(1.8)" in page.locator(".layers img").first.evaluate(style, "filter")

    fitted = layers.evaluate(style, "transform")
    page.get_by_role("button", name="Zoom in").click()
    zoomed = layers.evaluate(style, "transform")
    assert zoomed != fitted
    page.get_by_role("button", name="Zoom out").click()
    assert layers.evaluate(style, "transform") != zoomed
    page.get_by_role("button", name="Zoom in").click()
    page.get_by_role("button", name="Reset view").click()
    assert layers.evaluate(style, "transform") == fitted

    stage.scroll_into_view_if_needed()  # the wheel and the drag land on the image, not beside it
    box = stage.bounding_box()
    middle = (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.move(*middle)
    page.mouse.wheel(0, -200)
    assert layers.evaluate(style, "transform") != fitted
    wheeled = layers.evaluate(style, "transform")
    page.mouse.down()
    page.mouse.move(middle[0] + 40, middle[1] + 30, steps=4)
    page.mouse.up()
    assert layers.evaluate(style, "transform") != wheeled
    stage.focus()
    page.keyboard.press("0")
    assert layers.evaluate(style, "transform") == fitted
    page.keyboard.press("+")
    page.keyboard.press("ArrowLeft")
    assert layers.evaluate(style, "transform") != fitted

    legend = page.inner_text(".legend")
    assert "blue" in legend and "red" in legend and "probability" in legend
    assert not csp_violations(console), console


def test_result_page_without_javascript_shows_both_images(users, live_url, page, size, xray_paths):
    sign_in_browser(page, live_url, users.clinician)
    result = upload_through_api(page, live_url, xray_paths[1].read_bytes())
    context = page.context.browser.new_context(java_script_enabled=False, viewport=size)
    context.add_cookies(page.context.cookies())
    plain = context.new_page()
    plain.goto(f"{live_url}/predictions/{result}")
    plain.wait_for_load_state("load")
    assert plain.locator(".images img").count() == 2
    assert all(plain.locator(".images img").nth(index).is_visible() for index in range(2))
    assert plain.locator(".stage").count() == 0 and not plain.locator(".viewer-controls").is_visible()
    assert plain.locator(".legend").is_visible()
    assert not plain.evaluate("() => document.documentElement.scrollWidth > window.innerWidth")
    context.close()


def test_upload_form_lists_chosen_files_and_shows_it_is_sending(users, live_url, page, size, xray_paths):
    sign_in_browser(page, live_url, users.clinician)
    page.goto(live_url)
    page.get_by_label(re.compile("chest x-ray", re.I)).set_input_files(
        [str(xray_paths[0]), str(xray_paths[1])]
    )
    chosen = page.locator(".chosen li")
    assert chosen.count() == 2
    assert (
        xray_paths[0].name in chosen.nth(0).inner_text() and xray_paths[1].name in chosen.nth(1).inner_text()
    )
    page.wait_for_function("() => document.querySelectorAll('.chosen canvas').length === 2")
    # The POST is held, so the page stays to show its busy state.
    page.route(f"{live_url}/", lambda route: None if route.request.method == "POST" else route.continue_())
    busy = page.evaluate(
        """() => {
            const button = document.querySelector("form.upload button[type=submit]");
            button.click();
            return new Promise((done) => setTimeout(() => done([button.disabled, button.ariaBusy]), 200));
        }"""
    )
    assert busy == [True, "true"]


def test_oversize_upload_is_answered_on_the_upload_page_naming_the_limit(
    users, app, live_url, page, size, tmp_path
):
    app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024
    big = tmp_path / "big.png"
    buffer = io.BytesIO()
    Image.effect_noise((800, 800), 100).convert("L").save(buffer, "PNG")
    big.write_bytes(buffer.getvalue() * 3)
    sign_in_browser(page, live_url, users.clinician)
    page.goto(live_url)
    page.get_by_label(re.compile("chest x-ray", re.I)).set_input_files(str(big))
    page.get_by_role("button", name="Analyse").click()
    page.wait_for_load_state("load")
    assert page.inner_text("h1") == "Upload a chest X-ray"
    assert "larger than the 1 MB limit" in page.inner_text("[role=alert]")
    assert "capacity" not in page.inner_text("main")


def test_one_click_on_delete_deletes_nothing(users, live_url, page, size, xray_paths):
    sign_in_browser(page, live_url, users.admin)
    result = upload_through_api(page, live_url, xray_paths[0].read_bytes())
    page.goto(f"{live_url}/predictions/{result}")
    page.get_by_role("link", name=re.compile("^Delete this result")).click()
    page.wait_for_load_state("load")
    assert page.inner_text("h1") == "Delete this result?"
    assert page.request.get(f"{live_url}/api/v1/predictions/{result}").status == 200
    page.get_by_role("button", name="Delete for good").click()
    page.wait_for_url(re.compile(r"/history$"))
    assert page.request.get(f"{live_url}/api/v1/predictions/{result}").status == 404


def test_sort_by_probability_alike_on_page_csv_and_api(users, app, live_url, page, size):
    from conftest import add_result

    for probability in (0.2, 0.95, 0.6):
        add_result(app, probability=probability)
    sign_in_browser(page, live_url, users.clinician)
    listed = page.request.get(f"{live_url}/api/v1/predictions?sort=probability").json()["items"]
    assert [item["probability"] for item in listed] == [0.95, 0.6, 0.2]
    csv = page.request.get(f"{live_url}/history.csv?sort=probability").text()
    assert [line for line in csv.splitlines() if "test-model" in line][0].count("0.95") >= 1
    page.goto(f"{live_url}/history")
    page.get_by_label("Sort").select_option("probability")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r"sort=probability"))
    assert [page.locator("td[data-label=Probability]").nth(i).inner_text() for i in range(3)] == [
        "95.0 %",
        "60.0 %",
        "20.0 %",
    ]
    assert page.locator("td.thumb img").count() == 3
    assert not scrolls_sideways(page)
