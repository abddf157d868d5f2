"""The Forward tab in a real browser: dragging t updates x_t while dragging; other inputs work."""
import re

import pytest
from PIL import Image
from browser_helpers import drag

pytestmark = pytest.mark.browser


def src(page, selector="#ximg img"):
    return page.locator(selector).get_attribute("src")


def test_dragging_t_updates_x_t_while_dragging(page, screenshots):
    before, numbers_before = src(page), page.locator("#fw-coeffs").inner_text()
    seen = set()
    # a photo's picture, numbers and histogram come from the frame route: a drag sends no Gradio event
    # (but the first move's, which gives t's hidden copy the value the page holds it at)
    asked = {"frames": [], "events": 0}
    page.on("request", lambda r: asked["frames"].append(r.url) if "/de-forward/" in r.url
            else asked.__setitem__("events", asked["events"] + ("/run/predict" in r.url or "/queue/join" in r.url)))
    box = page.locator("#tslider input[type=range]").bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + 0.25 * box["width"], y)
    page.mouse.down()
    for i in range(1, 4):  # still holding the button: each move must bring a new image (however long it takes)
        page.mouse.move(box["x"] + (0.25 + 0.1 * i) * box["width"], y)
        # a picture not shown before (the predicate returns its src; an empty src while one loads is not one)
        shown = page.wait_for_function(
            "seen => { const img = document.querySelector('#ximg img');"
            " return !!(img && img.src && !seen.includes(img.src)) && img.src; }",
            arg=[before, *seen]).json_value()
        seen.add(shown)
    page.mouse.up()
    assert len(seen - {before}) == 3, "x_t did not update during the drag"
    assert asked["frames"] and asked["events"] <= 1, asked
    assert all(u.startswith("blob:") for u in seen)
    # after the drag the image settles on the slider's final value
    final_t = int(page.locator("#tslider input[type=number]").input_value())
    page.wait_for_function(
        "t => document.querySelector('#fw-coeffs').innerText.includes('x' + t + ' =')"
        " || document.querySelector('#fw-coeffs').innerText.includes('x' + t + '=')", arg=str(final_t))
    assert page.locator("#fw-coeffs").inner_text() != numbers_before
    # the curves' marker slid to t in the browser; the paced histogram caught up with the last move
    # null-safe: under load a plot can be mid-redraw when the page is polled (a throwing predicate ends the wait)
    marker_at = ("t => { const gd = document.querySelector('#fw-curves .js-plotly-plot');"
                 " return !!(gd && gd.data && gd.data[2] && gd.data[2].x[0] === t); }")
    page.wait_for_function(marker_at, arg=final_t)
    # a plot drawn late shows the server's older marker (as after a quick drag on a busy machine): it is
    # moved to the slider's t again
    page.evaluate("() => window.Plotly.update(document.querySelector('#fw-curves .js-plotly-plot'), {x: [[250]]}, {}, [2])")
    page.wait_for_function(marker_at, arg=final_t)
    page.wait_for_function("t => { const el = document.querySelector('#fw-hist .gtitle');"
                           " return !!(el && el.textContent.includes('x_' + t + ' ')); }", arg=str(final_t))
    page.wait_for_timeout(500)
    page.screenshot(path=str(screenshots / "forward.png"))


def test_when_the_frame_route_cannot_answer_the_event_shows_x_t(page):
    # as after a restart or once the server holds other inputs: the route says 404
    page.route("**/de-forward/**", lambda route: route.fulfill(status=404, body="no longer held"))
    before = src(page)
    drag(page, "#tslider input[type=range]", 0.25, 0.6)
    final_t = page.locator("#tslider input[type=number]").input_value()
    page.wait_for_function("t => document.querySelector('#fw-coeffs').innerText.includes('x' + t + ' =')"
                           " || document.querySelector('#fw-coeffs').innerText.includes('x' + t + '=')", arg=final_t)
    assert not src(page).startswith("blob:") and src(page) != before  # Gradio's own picture, at the new t
    page.wait_for_function("t => { const el = document.querySelector('#fw-hist .gtitle');"
                           " return !!(el && el.textContent.includes('x_' + t + ' ')); }", arg=final_t)


def test_a_drag_before_the_histogram_is_drawn_still_moves_it_to_the_last_t(browser, app_url):
    # The first page a server serves can get the slider's pictures before plotly has loaded (its
    # code is compressed on that first request): the histogram's values came with each picture and
    # were dropped, so it stayed at the t it was drawn at. Here plotly is held back until the drag is over.
    tab = browser.new_page()
    held, hold = [], [True]
    tab.route("**/PlotlyPlot-*.js", lambda route: held.append(route) if hold[0] else route.continue_())
    try:
        tab.goto(app_url)
        tab.wait_for_selector("#ximg img")
        tab.wait_for_selector("#de-ready [data-ready]", state="attached")
        tab.wait_for_function("() => !!document.querySelector('#fw-frames [data-frames]')")
        assert held and not tab.locator("#fw-hist .js-plotly-plot").count()  # not drawn yet
        before = src(tab)
        drag(tab, "#tslider input[type=range]", 0.25, 0.6)
        final_t = tab.locator("#tslider input[type=number]").input_value()
        tab.wait_for_function("b => { const img = document.querySelector('#ximg img'); return !!img && img.src !== b"
                              " && img.src.startsWith('blob:'); }", arg=before)  # the route's picture
        tab.wait_for_function("t => document.querySelector('#fw-coeffs').innerText.includes('x' + t + ' =')"
                              " || document.querySelector('#fw-coeffs').innerText.includes('x' + t + '=')",
                              arg=final_t)
        hold[0] = False
        for route in held:
            route.continue_()
        tab.wait_for_function("t => { const el = document.querySelector('#fw-hist .gtitle');"
                              " return !!(el && el.textContent.includes('x_' + t + ' ')); }", arg=final_t)
    finally:
        tab.close()


def test_a_link_with_its_own_t_asks_for_that_t_picture_not_the_one_the_page_opened_with(browser, app_url):
    # A link's view writes the new settings' address before the slider's t: the page once asked for the
    # opening t's picture (250) at the new address, and its answer, coming after the view, replaced the
    # link's picture and numbers (hidden until a later redraw put the numbers back, never the picture).
    tab = browser.new_page()
    asked, answered = [], []
    tab.on("request", lambda r: asked.append(r.url) if "/de-forward/" in r.url else None)
    tab.on("requestfinished", lambda r: answered.append(r.url) if "/de-forward/" in r.url else None)
    try:
        tab.goto(app_url + "?tab=forward&source=photo&input=astronaut&schedule=cosine&T=1000&t=900&seed=0")
        tab.wait_for_selector("#de-ready [data-ready]", state="attached")
        tab.wait_for_function("() => { const img = document.querySelector('#ximg img');"
                              " return !!img && img.src.startsWith('blob:'); }")  # the route's picture is shown
        assert answered and all("schedule=cosine" in u and u.endswith("&t=900") for u in asked), asked
        assert "x900 =" in tab.locator("#fw-coeffs").inner_text()
    finally:
        tab.close()


def test_sub_tabs_render(page, screenshots):
    page.get_by_role("tab", name="Compare schedules").click()
    page.wait_for_selector("#cmp2 img")
    page.get_by_role("tab", name="Step encoding").click()
    page.wait_for_selector("#fw-enc .js-plotly-plot")
    page.get_by_role("tab", name="Step by step").click()
    page.wait_for_selector("#fw-chain-hist .js-plotly-plot")  # the chain runs on opening
    assert "chain" in page.locator("#fw-chain-stats").inner_text()
    page.screenshot(path=str(screenshots / "forward-chain.png"), full_page=True)


def test_points_dataset_shows_a_diffusing_scatter(page, screenshots):
    page.locator("#fw-source").get_by_text("Dataset").click()
    page.wait_for_selector("#ximg-plot .js-plotly-plot")
    assert not page.locator("#ximg").is_visible()
    before = page.locator("#ximg-plot .scatterlayer .point").count()
    assert before > 100
    drag(page, "#tslider input[type=range]", 0.25, 0.9)
    final_t = page.locator("#tslider input[type=number]").input_value()
    page.wait_for_function("t => { const el = document.querySelector('#ximg-plot .gtitle');"
                           " return !!(el && el.textContent === 'x_t at t = ' + t); }", arg=final_t)
    page.wait_for_function("t => { const el = document.querySelector('#fw-hist .gtitle');"
                           " return !!(el && el.textContent.includes('x_' + t + ' ')); }", arg=final_t)
    page.screenshot(path=str(screenshots / "forward-points.png"))


def test_uploading_a_non_image_shows_a_message(page, tmp_path):
    page.locator("#fw-source").get_by_text("Upload").click()
    bad = tmp_path / "notes.txt"
    bad.write_text("not a picture")
    with page.expect_file_chooser() as chooser:
        page.locator("#fw-upload").click()
    chooser.value.set_files(str(bad))
    page.locator(".toast-body", has_text=re.compile("Invalid file type|not an image")).wait_for()
    assert page.locator("#fw-caption").inner_text().startswith("Upload a PNG")  # still waiting for an image


def test_uploading_a_photo_uses_it(page, tmp_path):
    Image.new("RGB", (640, 320), (0, 90, 200)).save(tmp_path / "blue.png")
    page.locator("#fw-source").get_by_text("Upload").click()
    with page.expect_file_chooser() as chooser:
        page.locator("#fw-upload").click()
    chooser.value.set_files(str(tmp_path / "blue.png"))
    page.wait_for_function("() => document.querySelector('#fw-caption').innerText.includes('3 × 128 × 256')")
