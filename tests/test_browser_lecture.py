"""The lecture layer in a real browser: presenter view sizes, keys, the URL that follows the view, links."""
import re

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("one_torch_thread")]


def open_page(browser, url: str, width: int = 1366, height: int = 768):
    page = browser.new_page()  # the persistent context takes its viewport per page
    page.set_viewport_size({"width": width, "height": height})
    page.goto(url)
    page.wait_for_selector("#de-ready [data-ready]", state="attached")  # the link's settings are applied
    return page


def wait_open(page, selector: str) -> None:
    """Wait until the tab button `selector` is the open one."""
    page.wait_for_function("s => document.querySelector(s) && document.querySelector(s).getAttribute('aria-selected') === 'true'",
                           arg=selector)


def box(page, selector: str) -> dict:
    return page.locator(selector).first.bounding_box()


def t_value(page) -> int:
    return int(page.locator("#tslider input[type=number]").input_value())


def wait_stop(page, n: int) -> None:
    """Wait until the lesson box names stop n. The box is drawn some time after the page says it is
    ready (later on a busy machine), so the wait must not read it before it exists."""
    page.wait_for_function("n => { const e = document.querySelector('#de-lesson-text');"
                           " return !!e && e.innerText.includes(`stop ${n} of`); }", arg=n)


def wait_url(page, key: str, value) -> None:
    page.wait_for_function("([k, v]) => new URLSearchParams(location.search).get(k) === v", arg=[key, str(value)])


@pytest.mark.parametrize("width, height", [(1024, 768), (1280, 720)])
def test_presenter_view_fills_the_screen_with_the_picture_and_its_slider(browser, app_url, screenshots,
                                                                          width, height):
    page = open_page(browser, app_url + "?present=1", width, height)
    try:
        page.wait_for_selector("body.presenting #ximg img")
        page.wait_for_function("() => document.querySelector('#ximg img').complete")
        img, slider = box(page, "#ximg img"), box(page, "#tslider input[type=range]")
        assert img["height"] >= 0.6 * height, img
        assert 0 <= slider["y"] and slider["y"] + slider["height"] <= height  # the main control on the same screen
        assert page.evaluate("() => document.documentElement.scrollHeight <= innerHeight + 1"), "the page scrolls"
        assert not page.locator(".de-controls").first.is_visible() or box(page, ".de-controls")["x"] + \
            box(page, ".de-controls")["width"] <= 0  # the controls wait in the drawer
        sizes = page.evaluate("() => [...document.querySelectorAll('#fw-coeffs span, button[role=tab]')]"
                              ".filter(e => e.offsetParent).map(e => parseFloat(getComputedStyle(e).fontSize))")
        assert min(sizes) >= 20, sizes
        page.screenshot(path=str(screenshots / f"presenter-{width}x{height}.png"))
        page.locator("#de-drawer").click()  # the drawer opens over the picture with the settings
        page.wait_for_function("() => document.querySelector('.de-controls').getBoundingClientRect().x >= 0")
        page.keyboard.press("p")  # and P leaves the presenter view
        page.wait_for_function("() => !document.body.classList.contains('presenting')")
        assert box(page, "#ximg img")["height"] < 0.6 * height
    finally:
        page.close()


@pytest.mark.parametrize("width, height", [(1024, 768), (1280, 720)])
def test_presenter_reverse_opens_on_a_large_frame_with_play_and_readable_labels(browser, app_url, screenshots,
                                                                               width, height):
    from explorer.animation import FRAME_FONT

    page = open_page(browser, app_url + "?tab=reverse&present=1", width, height)
    try:
        page.wait_for_selector("body.presenting #rv-frame img")  # the recorded default run's first frame
        page.wait_for_function("() => document.querySelector('#rv-frame img').complete")
        img, play = box(page, "#rv-frame img"), box(page, "#rv-play")
        assert img["height"] >= 0.6 * height, img
        assert 0 <= play["y"] and play["y"] + play["height"] <= height
        assert page.evaluate("() => document.documentElement.scrollHeight <= innerHeight + 1"), "the page scrolls"
        natural = page.evaluate("() => { const i = document.querySelector('#rv-frame img'); "
                                "return [i.naturalWidth, i.naturalHeight]; }")
        scale = min(img["width"] / natural[0], img["height"] / natural[1])  # object-fit: contain
        assert FRAME_FONT * scale >= 20, (natural, img)  # the labels drawn in the frame, as shown
        tabs = box(page, "#tab-evaluate-button") or box(page, "button[role=tab] >> nth=3")
        bar = box(page, "#de-bar")
        assert tabs["x"] + tabs["width"] <= bar["x"] or bar["y"] + bar["height"] <= tabs["y"], (tabs, bar)
        assert "ready: press play" in page.locator("#rv-caption").inner_text().lower()
        page.screenshot(path=str(screenshots / f"presenter-reverse-{width}x{height}.png"))
    finally:
        page.close()


def test_presenter_2d_reverse_titles_keep_apart_at_projector_size(browser, app_url, screenshots):
    page = open_page(browser, app_url + "?tab=reverse&present=1&checkpoint=swiss_roll", 1024, 768)
    try:
        page.wait_for_selector("body.presenting #rv-frame-plot .annotation-text")
        titles = page.evaluate("() => [...document.querySelectorAll('#rv-frame-plot .annotation-text')].map(t => {"
                               " const r = t.getBoundingClientRect();"
                               " return [r.left, r.right, parseFloat(getComputedStyle(t).fontSize)]; })")
        assert len(titles) == 2 and all(size >= 20 for *_, size in titles), titles
        (l1, r1, _), (l2, r2, _) = sorted(titles)
        assert r1 + 8 <= l2, f"the two panel titles overlap: {titles}"
        frame = box(page, "#rv-frame-plot .js-plotly-plot")
        assert frame["x"] <= l1 and r2 <= frame["x"] + frame["width"], f"a title is cut off: {titles}, {frame}"
        page.screenshot(path=str(screenshots / "presenter-reverse-2d-1024x768.png"))
    finally:
        page.close()


def test_presenter_signal_panels_keep_their_tick_labels_out_of_their_neighbours(browser, app_url, screenshots):
    page = open_page(browser, app_url + "?tab=reverse&present=1&checkpoint=signals_gru", 1024, 768)
    try:
        page.wait_for_selector("body.presenting #rv-frame-plot .subplot.x3y3 .yaxislayer-above text")
        # per panel after the first: the right end of the panel before it, and the left of its own tick labels
        edges = page.evaluate("""() => {
          const gd = document.querySelector('#rv-frame-plot .js-plotly-plot'), L = gd._fullLayout;
          const left = gd.getBoundingClientRect().left;
          return [2, 3].map(k => {
            const prev = L[k === 2 ? 'xaxis' : 'xaxis' + (k - 1)];
            const labels = [...gd.querySelectorAll(`.subplot.x${k}y${k} .yaxislayer-above text`)];
            return [left + prev._offset + prev._length, Math.min(...labels.map(t => t.getBoundingClientRect().left))];
          });
        }""")
        assert all(prev_right <= labels_left for prev_right, labels_left in edges), edges
        crossed = page.evaluate("""() => {
          const boxes = s => [...document.querySelectorAll('#rv-frame-plot ' + s)].map(t => t.getBoundingClientRect());
          const meet = (a, b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
          return boxes('.annotation-text').flatMap(a => boxes('.yaxislayer-above text').filter(b => meet(a, b)).map(b => [a.left, a.top, b.left, b.top]));
        }""")
        assert crossed == [], f"a panel title runs over tick labels: {crossed}"
        page.screenshot(path=str(screenshots / "presenter-reverse-signal-1024x768.png"))
    finally:
        page.close()


@pytest.mark.parametrize("width, height", [(1024, 768), (1280, 720)])
def test_presenter_train_shows_the_buttons_and_a_large_loss_curve_on_one_screen(browser, app_url, screenshots,
                                                                                 width, height):
    page = open_page(browser, app_url + "?tab=train&present=1", width, height)
    try:
        # opened by a link, not a click: the charts are still drawn (the page asks for them once the tab is in view)
        page.wait_for_selector("body.presenting #tr-loss .js-plotly-plot .main-svg")
        loss = page.evaluate("() => { const b = document.querySelector('#tr-loss .js-plotly-plot .main-svg')"
                             ".getBoundingClientRect(); return {y: b.top, height: b.height}; }")
        assert loss["height"] >= 0.6 * height, loss  # as drawn (zoomed), not just its box
        for button in ("#tr-start", "#tr-pause", "#tr-stop", "#tr-save"):
            b = box(page, button)
            assert 0 <= b["y"] and b["y"] + b["height"] <= height, (button, b)
        assert loss["y"] + loss["height"] <= height + 1
        assert page.evaluate("() => document.documentElement.scrollHeight <= innerHeight + 1"), "the page scrolls"
        assert page.locator("#tr-per-t-now").is_visible() and not page.locator("#tr-lr-chart").is_visible()
        per_t = page.evaluate("() => { const b = document.querySelector('#tr-per-t-now').getBoundingClientRect();"
                              " return {y: b.top, height: b.height}; }")
        assert per_t["y"] + per_t["height"] <= height + 1, per_t  # the whole per-t chart, its labels readable
        page.screenshot(path=str(screenshots / f"presenter-train-{width}x{height}.png"))
    finally:
        page.close()


def test_the_training_stop_keeps_every_chart_above_the_card(browser, app_url):
    """Stop 8 (training, live): the loss, the samples and the loss per timestep (which the card's text points
    at) above the card, in the height a running run leaves them (its status takes two lines)."""
    page = open_stop_with_card(browser, app_url, 8)
    try:
        # a chart either way: one saying what will come, or (after another test's run) that run's samples
        page.wait_for_selector("#tr-per-t-now .js-plotly-plot .main-svg")
        page.wait_for_selector("#tr-preview-plot .js-plotly-plot .main-svg")
        for chart in ("#tr-loss", "#tr-preview-plot", "#tr-per-t-now"):
            wait_above_card(page, chart)
        # the two charts of the right column fit the height a run's two-line status leaves (once plotly has
        # drawn them at their new sizes)
        page.wait_for_function("""() => {
          const r = s => document.querySelector(s).getBoundingClientRect();
          return r('#tr-per-t-now').bottom - r('#tr-preview-plot').top <= r('#de-lesson').top - 215 + 8; }""")
    finally:
        page.close()


def test_keys_move_t_switch_tabs_and_show_the_key_map(browser, app_url):
    page = open_page(browser, app_url)
    try:
        start = t_value(page)
        page.keyboard.press("ArrowRight")  # t + 1% of T = 1000
        page.wait_for_function(f"() => document.querySelector('#fw-coeffs').innerText.includes('x{start + 10} =')")
        assert t_value(page) == start + 10
        page.keyboard.press("Shift+ArrowLeft")
        page.wait_for_function(f"() => document.querySelector('#fw-coeffs').innerText.includes('x{start - 90} =')")
        page.keyboard.press("Home")
        page.wait_for_function("() => document.querySelector('#fw-coeffs').innerText.includes('x0 =')")
        # F: the main picture fills the screen and keeps following the slider
        page.keyboard.press("f")
        page.wait_for_function("() => document.fullscreenElement && document.fullscreenElement.id === 'ximg'")
        before = page.locator("#ximg img").get_attribute("src")
        page.keyboard.press("ArrowRight")
        page.wait_for_function("s => document.querySelector('#ximg img').src !== s", arg=before)
        assert box(page, "#ximg img")["height"] >= 0.8 * 768
        page.keyboard.press("f")
        page.wait_for_function("() => !document.fullscreenElement")
        # never while typing: keys in a text box stay in the text box
        page.locator("#fw-seed input").click()
        page.keyboard.press("End")
        page.keyboard.press("2")
        assert page.locator("#tab-forward-button").get_attribute("aria-selected") == "true"
        page.locator("#fw-seed input").blur()
        page.keyboard.press("2")
        page.wait_for_function("() => document.querySelector('#tab-reverse-button').getAttribute('aria-selected') === 'true'")
        wait_url(page, "tab", "reverse")
        page.keyboard.press("?")
        page.locator("#de-keys").wait_for(state="visible")
        assert "Play / Pause" in page.locator("#de-keys").inner_text()
        page.keyboard.press("Escape")
        page.locator("#de-keys").wait_for(state="hidden")
        page.keyboard.press("1")
        page.wait_for_function("() => document.querySelector('#tab-forward-button').getAttribute('aria-selected') === 'true'")
    finally:
        page.close()


def test_the_url_follows_the_view_and_restores_it_in_a_fresh_page(browser, app_url):
    page = open_page(browser, app_url)
    try:
        page.locator("#fw-schedule input").click()
        page.get_by_role("option", name="cosine").click()
        page.keyboard.press("End")  # t = T
        wait_url(page, "schedule", "cosine")
        page.keyboard.press("Shift+ArrowLeft")  # t = 900
        wait_url(page, "t", 900)
        page.wait_for_function("() => document.querySelector('#fw-coeffs').innerText.includes('x900 =')")
        numbers = page.locator("#fw-coeffs").inner_text()
        url = page.url
    finally:
        page.close()
    assert re.search(r"[?&]tab=forward", url) and "schedule=cosine" in url
    fresh = open_page(browser, url)
    try:
        fresh.wait_for_function("n => document.querySelector('#fw-coeffs').innerText === n", arg=numbers)
        assert t_value(fresh) == 900 and fresh.locator("#fw-schedule input").input_value() == "cosine"
        fresh.locator("#view-chain-button").click()  # an inner view is part of the view too
        wait_url(fresh, "view", "chain")
        url = fresh.url
    finally:
        fresh.close()
    again = open_page(browser, url)
    try:
        wait_open(again, "#view-chain-button")
        assert again.locator("#fw-chain-run").is_visible()
    finally:
        again.close()


def test_a_reverse_link_restores_the_frame_and_a_bad_link_says_what_was_wrong(browser, app_url, trained_checkpoints):
    page = open_page(browser, app_url + "?tab=reverse&checkpoint=tiny-digits&sampler=ddim&steps=10&seed=2&frame=4")
    try:
        page.wait_for_selector("#rv-frame img")
        page.wait_for_function("() => document.querySelector('#rv-caption').innerText.includes('step 5 of 10')")
        assert page.locator("#rv-scrub input[type=number]").input_value() == "4"
        wait_url(page, "frame", 4)
        assert page.locator("#rv-steps input[type=number]").input_value() == "10"  # not reset by the tab opening
        wait_url(page, "steps", 10)
    finally:
        page.close()
    page = open_page(browser, app_url + "?t=5000&colour=red&present=2&__theme=dark")
    try:
        toast = page.locator(".toast-body", has_text="This link has settings that cannot be used")
        toast.wait_for()
        text = toast.inner_text()
        assert "t=" in text and "'colour' is not one this app knows" in text and "present='2'" in text
        assert "__theme" not in text  # Gradio's own setting: applied by Gradio, kept in the link
        page.wait_for_selector("#ximg img")  # the tab works with its defaults
        assert t_value(page) == 250
        assert "dark" in page.evaluate("() => document.body.className")
        wait_url(page, "tab", "forward")  # the page has written the link (this one had no tab) ...
        assert "__theme=dark" in page.url  # ... and kept Gradio's theme in it
    finally:
        page.close()


def test_a_link_restores_a_second_sampler_beside_the_first(browser, app_url, trained_checkpoints):
    page = open_page(browser, app_url + "?tab=reverse&checkpoint=tiny-digits&sampler=ddim&steps=10&seed=2"
                                        "&compare=1&sampler_b=ddpm&steps_b=20")
    try:
        page.wait_for_function("() => document.querySelector('#rv-compare input').checked")
        assert page.locator("#rv-steps-b input[type=number]").input_value() == "20"
        page.wait_for_function("() => document.querySelector('#rv-caption').innerText.includes('DDPM')")
        wait_url(page, "compare", 1)  # the page writes it back: a copied link keeps the comparison
        wait_url(page, "steps_b", 20)
        wait_url(page, "sampler_b", "ddpm")
    finally:
        page.close()


def test_a_link_restores_the_timestep_spacing_and_the_page_writes_it_back(browser, app_url, trained_checkpoints):
    page = open_page(browser, app_url + "?tab=reverse&checkpoint=tiny-digits&sampler=ddim&steps=10&seed=2"
                                        "&spacing=quadratic")
    try:
        page.wait_for_function("() => document.querySelector('#rv-spacing input[value=quadratic]').checked")
        page.wait_for_function("() => document.querySelector('#rv-caption').innerText.includes('quadratic spacing')")
        wait_url(page, "spacing", "quadratic")  # a copied link keeps it
        page.locator("#rv-spacing").get_by_text("linear").click()  # back to linear: the link leaves it out
        page.wait_for_function("() => !new URLSearchParams(location.search).has('spacing')")
    finally:
        page.close()


def test_a_lesson_steps_through_its_stops_with_the_buttons_and_page_keys(browser, app_url, screenshots):
    page = open_page(browser, app_url)
    try:
        page.locator("#de-lesson").get_by_text("Lesson").click()
        page.locator("#de-lesson-choice input").click()
        page.get_by_role("option", name="diffusion-in-50-minutes").click()
        wait_stop(page, 1)
        page.wait_for_function("() => document.querySelector('#fw-coeffs').innerText.includes('x0 =')")  # t = 0
        page.locator("#de-lesson-choice input").blur()
        page.keyboard.press("PageDown")  # what a presentation clicker sends
        wait_stop(page, 2)
        page.wait_for_function("() => document.querySelector('#fw-coeffs').innerText.includes('x250 =')")
        assert page.locator("#de-lesson-text .katex").count() >= 1  # the stop's equation is typeset
        page.locator("#de-lesson-next").click()
        page.locator("#de-lesson-next").click()  # stop 4 opens its inner view: schedules side by side
        wait_stop(page, 4)
        wait_open(page, "#view-compare-button")
        wait_url(page, "view", "compare")
        page.wait_for_function("() => document.querySelectorAll('#view-compare img').length >= 3")
        page.screenshot(path=str(screenshots / "lesson-stop.png"))
        for _ in range(2):
            page.locator("#de-lesson-next").click()
        wait_stop(page, 6)
        page.wait_for_function("() => document.querySelector('#tab-reverse-button').getAttribute('aria-selected') === 'true'")
        page.keyboard.press("PageUp")
        wait_stop(page, 5)
        page.wait_for_function("() => document.querySelector('#tab-forward-button').getAttribute('aria-selected') === 'true'")
        wait_open(page, "#view-encoding-button")
    finally:
        page.close()


# the lesson text shown ('' until the lesson box is drawn: it is not in the page while closed)
SHOWN_STOP = "(document.querySelector('#de-lesson-text') || {textContent: ''}).textContent"


def test_a_clickers_first_press_starts_the_shipped_lesson(browser, app_url):
    page = open_page(browser, app_url + "?present=1", 1024, 768)
    try:
        page.keyboard.press("PageDown")  # no lesson chosen yet: the one lesson here starts at its first stop
        page.wait_for_function(f"() => {SHOWN_STOP}.includes('stop 1 of')")
        assert page.locator("#de-lesson-choice input").input_value() == "diffusion-in-50-minutes"
        wait_url(page, "stop", 1)
        page.keyboard.press("PageDown")
        page.wait_for_function(f"() => {SHOWN_STOP}.includes('stop 2 of')")
        wait_url(page, "lesson", "diffusion-in-50-minutes")
    finally:
        page.close()


def test_presenter_view_shows_the_lesson_as_a_card_the_pictures_make_room_for(browser, app_url, screenshots):
    height = 768
    page = open_page(browser, app_url + "?present=1", 1024, height)
    try:
        page.wait_for_selector("body.presenting #ximg img")
        assert not page.locator("#de-lesson").is_visible()  # no lesson running: nothing over the picture
        page.keyboard.press("l")  # L opens the card, here on the lesson chooser
        page.locator("#de-lesson-choice input").click()
        page.get_by_role("option", name="diffusion-in-50-minutes").click()
        wait_stop(page, 1)
        page.locator("#de-lesson-choice input").blur()
        page.keyboard.press("PageDown")
        wait_stop(page, 2)
        page.wait_for_function("() => document.querySelector('#fw-coeffs').innerText.includes('x250 =')")
        assert not page.locator("#de-lesson-choice").is_visible()  # a running lesson shows its text alone
        assert page.locator("#de-lesson-text .katex").count() >= 1
        size = page.evaluate("() => parseFloat(getComputedStyle(document.querySelector('#de-lesson-text p')).fontSize)")
        assert size >= 20, size
        # the picture gives up the card's height: picture, slider and the whole card on one screen, no scroll
        page.wait_for_function("() => parseFloat(getComputedStyle(document.body).getPropertyValue('--de-card-h')) > 0")
        page.wait_for_function("() => document.querySelector('#ximg img').getBoundingClientRect().bottom <="
                               " document.querySelector('#de-lesson').getBoundingClientRect().top")
        card, slider = box(page, "#de-lesson"), box(page, "#tslider input[type=range]")
        assert card["y"] + card["height"] <= height and card["x"] >= 0 and card["x"] + card["width"] <= 1024
        assert slider["y"] + slider["height"] <= card["y"]
        assert page.evaluate("() => document.documentElement.scrollHeight <= innerHeight + 1"), "the page scrolls"
        page.screenshot(path=str(screenshots / "presenter-lesson-1024x768.png"))
        page.keyboard.press("l")  # L hides it: the picture takes its full size again
        page.wait_for_function(f"() => document.querySelector('#ximg img').getBoundingClientRect().height >= {0.6 * height}")
        assert not page.locator("#de-lesson").is_visible()
        page.keyboard.press("PageDown")  # the next stop brings the card back, with that stop's text
        wait_stop(page, 3)
        page.wait_for_selector("#de-lesson", state="visible")
        page.keyboard.press("p")  # and the desk view has the lesson in its accordion, no card
        page.wait_for_function("() => !document.body.classList.contains('presenting')")
        assert page.evaluate("() => getComputedStyle(document.querySelector('#de-lesson')).position") != "fixed"
    finally:
        page.close()


def open_stop_with_card(browser, app_url, stop: int):
    """The presenter view at 1024x768 on a stop of the shipped lesson, its card shown and measured."""
    page = open_page(browser, app_url + f"?present=1&lesson=diffusion-in-50-minutes&stop={stop}", 1024, 768)
    page.wait_for_selector("#de-lesson", state="visible")
    page.wait_for_function("() => parseFloat(getComputedStyle(document.body).getPropertyValue('--de-card-h')) > 0")
    return page


def wait_above_card(page, selector: str) -> None:
    """Wait until `selector` ends above the lesson card; then the page must not scroll."""
    page.wait_for_function("s => document.querySelector(s).getBoundingClientRect().bottom"
                           " <= document.querySelector('#de-lesson').getBoundingClientRect().top", arg=selector)
    assert page.evaluate("() => document.documentElement.scrollHeight <= innerHeight + 1"), "the page scrolls"


def test_views_that_swap_out_of_sight_leave_no_picture_over_the_page(browser, app_url):
    """From stop 2 (a photo in the Noisy sample tab) to stop 3 (the step-by-step view on 2-D points): the
    noise view of the Noisy sample tab swaps from a picture to a figure as that tab leaves the screen.
    A swapped view's last look is laid over its new block only while that block is on screen: laid over
    a hidden one, it sat at the page's top-left corner, over the tabs, for 8 s."""
    page = open_stop_with_card(browser, app_url, 2)
    try:
        wait_stop(page, 2)
        page.wait_for_function("() => { const i = document.querySelector('#epsimg img');"
                               " return !!i && i.complete && i.naturalWidth > 0 && i.offsetParent !== null; }")
        page.locator("#de-lesson-next").click()
        wait_stop(page, 3)
        page.wait_for_selector("#epsimg-plot .js-plotly-plot", state="attached")  # the swap out of sight is done
        page.wait_for_selector("#fw-chain-views .js-plotly-plot")
        page.evaluate("() => new Promise((ok) => requestAnimationFrame(() => requestAnimationFrame(ok)))")
        # a look may still lie over a view on screen that is being drawn; none anywhere else
        stray = page.evaluate("""() => [...document.querySelectorAll('.de-ghost')].map((g) => g.getBoundingClientRect())
            .filter((r) => ![...document.querySelectorAll('.de-view')].some((v) => {
                const b = v.getBoundingClientRect();
                return v.offsetParent !== null && Math.abs(b.top - r.top) < 2 && Math.abs(b.left - r.left) < 2; }))
            .map((r) => [Math.round(r.left), Math.round(r.top), Math.round(r.width), Math.round(r.height)])""")
        assert not stray, f"a swapped view's look lies over the page away from any view shown (left, top, w, h): {stray}"
    finally:
        page.close()


@pytest.mark.parametrize("stop, view", [(3, "#fw-chain-views"), (4, "#fw-cmp-body"), (5, "#fw-enc-map")])
def test_the_forward_views_of_the_lesson_fit_above_its_card(browser, app_url, stop, view):
    """The chain (3), the schedules compared (4) and the step encoding (5): the whole view above the
    card, no page scroll, and the text inside their charts still at the presenter view's 20 px."""
    page = open_stop_with_card(browser, app_url, stop)
    try:
        page.wait_for_selector(f"{view} .js-plotly-plot, {view} img")
        wait_above_card(page, view)
        smallest = page.evaluate("""s => Math.min(...[...document.querySelectorAll(s + ' .js-plotly-plot text')]
            .filter(t => t.textContent.trim() && t.getBoundingClientRect().height > 0)
            .map(t => parseFloat(getComputedStyle(t).fontSize) * (t.currentCSSZoom || 1)))""", view)  # as rendered
        assert smallest >= 20, smallest
    finally:
        page.close()


def test_the_figures_stop_shows_every_figure_above_the_card_one_line_each(browser, app_url):
    """Stop 9 (evaluation): every recorded figure, diversity and memorisation last, above the card, and
    beside them the MSE per timestep the stop begins with (it lay below the table, out of sight)."""
    page = open_stop_with_card(browser, app_url, 9)
    try:
        page.wait_for_selector("#ev-table table tr:nth-child(3)")
        page.wait_for_selector("#ev-mse .js-plotly-plot .scatterlayer path.js-line")
        wait_above_card(page, "#ev-table table")
        wait_above_card(page, "#ev-mse .js-plotly-plot")
        names = page.evaluate("() => [...document.querySelectorAll('#ev-table tr td:first-child')].map(td => td.innerText)")
        assert any(n.startswith("Diversity") for n in names) and any(n.startswith("Memorisation") for n in names)
        # nothing cut at the right edge, the chart beside the table, not over it
        boxes = page.evaluate("""() => Object.fromEntries(['#ev-table table', '#ev-mse .js-plotly-plot'].map(s => {
            const r = document.querySelector(s).getBoundingClientRect(); return [s, [r.left, r.right, r.top]]; }))""")
        (t_left, t_right, _), (c_left, c_right, c_top) = boxes.values()
        assert t_right <= c_left and c_right <= page.evaluate("innerWidth"), boxes
        # each figure on one line at 20 px: its name without the note in brackets, its reading in a few words
        rows = page.evaluate("""() => [...document.querySelectorAll('#ev-table tr')].map(tr => [tr.innerText,
            tr.getBoundingClientRect().height / parseFloat(getComputedStyle(tr.querySelector('td, th')).lineHeight)])""")
        assert len(rows) >= 12 and all(lines < 1.9 for _, lines in rows), rows
        assert any("≈ real data" in text for text, _ in rows) and not any("indistinguishable" in t for t, _ in rows)
        # the marks of the main figures go with the caption that explains them (it stays at the desk)
        assert page.locator("#ev-table .ev-main").count() > 0
        assert page.evaluate("() => [...document.querySelectorAll('#ev-table .ev-main, #ev-table .ev-caption')]"
                             ".every(e => e.offsetParent === null)")
    finally:
        page.close()


def test_the_memorisation_stop_shows_the_closest_pairs_above_the_card(browser, app_url):
    """Stop 12 (diversity and memorisation): the recorded run's samples closest to the training set,
    each above its nearest training example, from the moment the stop opens; every view's name whole."""
    page = open_stop_with_card(browser, app_url, 12)
    try:
        page.wait_for_selector("#ev-pairs img")
        wait_above_card(page, "#ev-pairs img")
        assert page.evaluate("() => document.querySelector('#ev-pairs img').getBoundingClientRect().height") > 200
        assert "bottom row: nearest training example" in page.locator("#ev-pairs-caption").inner_text()
        assert not page.locator("#ev-memorisation-help").is_visible()  # the card says it in the presenter view
        cut = page.evaluate("""() => [...document.querySelectorAll('#tab-evaluate [role=tab]')]
            .filter(b => b.offsetParent && b.scrollWidth > b.clientWidth + 1).map(b => b.innerText)""")
        assert cut == []
    finally:
        page.close()


def test_the_quiz_stop_keeps_the_picture_and_the_tallies_above_the_card(browser, app_url):
    """Stop 11 (human evaluation): a new quiz's picture and the results above the card; the page never
    scrolls under the card (the view scrolls in its own box), the desk-only parts are hidden."""
    page = open_stop_with_card(browser, app_url, 11)
    try:
        page.click("#qz-new")
        # the quiz's own line (the status before it names pictures too)
        page.wait_for_function("() => document.querySelector('#qz-status').innerText"
                               ".includes('half real, half generated')")
        page.click("#qz-take")
        page.wait_for_selector("#qz-image img")
        page.click("#qz-show")
        page.wait_for_function("() => document.querySelector('#qz-summary').innerText.includes('participant')")
        wait_above_card(page, "#qz-image img")
        wait_above_card(page, "#view-quiz")
        assert page.evaluate("() => document.querySelector('#qz-summary').getBoundingClientRect().bottom"
                             " <= document.querySelector('#de-lesson').getBoundingClientRect().top")
        for desk_only in ("#qz-help", "#qz-count", "#qz-table"):
            assert not page.locator(desk_only).is_visible(), desk_only
    finally:
        page.close()


def test_the_visual_inspection_stop_shows_both_grids_alike_above_the_card(browser, app_url):
    page = open_stop_with_card(browser, app_url, 10)
    try:
        page.wait_for_selector("#ev-samples img")
        page.wait_for_selector("#ev-real img")
        page.wait_for_function("""() => {
          const top = document.querySelector('#de-lesson').getBoundingClientRect().top;
          const a = document.querySelector('#ev-samples img').getBoundingClientRect();
          const b = document.querySelector('#ev-real img').getBoundingClientRect();
          return a.bottom <= top && b.bottom <= top && Math.abs(a.height - b.height) < 2; }""")
        # and they fill the screen down to the card (at 61vh they left 140 px empty above it)
        gap = page.evaluate("""() => document.querySelector('#de-lesson').getBoundingClientRect().top
                                     - document.querySelector('#ev-samples').getBoundingClientRect().bottom""")
        assert 0 <= gap <= 60, gap
    finally:
        page.close()


def test_a_link_opens_the_presenter_view_at_a_lesson_stop_and_follows_the_lesson(browser, app_url):
    page = open_page(browser, app_url + "?present=1&lesson=diffusion-in-50-minutes&stop=4", 1024, 768)
    try:
        wait_stop(page, 4)
        wait_open(page, "#view-compare-button")  # the stop's own view
        page.wait_for_selector("#de-lesson", state="visible")  # on the card, in front of the class
        wait_url(page, "lesson", "diffusion-in-50-minutes")
        wait_url(page, "stop", 4)
        page.keyboard.press("PageDown")  # the lesson goes on from the linked stop, not from the first
        wait_stop(page, 5)
        wait_open(page, "#view-encoding-button")
        wait_url(page, "stop", 5)
    finally:
        page.close()


def test_a_class_joins_the_quiz_on_phones(browser, app_url, trained_checkpoints, screenshots):
    teacher = open_page(browser, app_url + "?tab=evaluate&view=quiz", 1024, 768)
    try:
        teacher.locator("#ev-ckpt input").click()
        teacher.get_by_role("option", name=re.compile("tiny-digits")).first.click()
        teacher.wait_for_function("() => document.querySelector('#ev-info').innerText.includes('digits')")
        count = teacher.locator("#qz-count input[type=number]")
        count.fill("3")
        count.press("Enter")
        teacher.locator("#qz-new").click()
        teacher.wait_for_function("() => document.querySelector('#qz-status').innerText.includes('6 pictures')")
        teacher.keyboard.press("j")  # the join card; this app listens on 127.0.0.1, so it says how to serve a class
        card = teacher.locator("#de-join .de-join-card")
        card.wait_for()
        assert "Students cannot join yet" in card.inner_text() and "--host 0.0.0.0" in card.inner_text()
        teacher.keyboard.press("Escape")
        card.wait_for(state="hidden")
    finally:
        teacher.close()
    phone = open_page(browser, app_url + "?tab=evaluate&view=quiz&student=1", 390, 844)
    try:
        phone.locator("#qz-take").click()
        phone.wait_for_selector("#qz-image img")
        phone.wait_for_function("() => document.querySelector('#qz-progress').innerText.includes('1 of 6')")
        for hidden in ("#de-bar", "#qz-new", "#qz-show", "#qz-reveal", "#tab-forward-button", "#view-figures-button"):
            assert not phone.locator(hidden).is_visible(), f"{hidden} shows on a student's phone"
        for button in ("#qz-real", "#qz-generated", "#qz-rating"):
            b = box(phone, button)
            assert b["y"] >= 0 and b["y"] + b["height"] <= 844 and b["x"] + b["width"] <= 390, (button, b)
        assert phone.evaluate("() => document.documentElement.scrollWidth <= innerWidth"), "the page scrolls sideways"
        phone.screenshot(path=str(screenshots / "quiz-phone-390x844.png"))
        phone.locator("#qz-generated").click()
        phone.wait_for_function("() => document.querySelector('#qz-progress').innerText.includes('2 of 6')")
        wait_url(phone, "student", 1)  # the URL keeps the phone's view
        # a phone draws no chart and so loads no plotly: about half of a phone's page load
        # (benchmarks/RESULTS.md, page_load); the Forward tab's figures wait until that tab is shown
        loaded = phone.evaluate("() => performance.getEntriesByType('resource').map(r => r.name)"
                                ".filter(n => /plotly/i.test(n))")
        assert not loaded and phone.locator(".js-plotly-plot").count() == 0, loaded
    finally:
        phone.close()



@pytest.mark.parametrize("tab,width", [("forward", 430), ("reverse", 390), ("train", 430), ("evaluate", 360)])
def test_the_whole_app_on_a_phone_shows_its_four_tabs_and_never_scrolls_sideways(browser, app_url, tab, width):
    """A student who opens the app itself (not the quiz) on a phone. The page was as wide as the tab bar's
    buttons side by side (75-255 px wider than the phone: the side of every view cut off or a sideways
    scroll), and three of the four tabs sat behind Gradio's "..." menu."""
    phone = open_page(browser, f"{app_url}?tab={tab}", width, 740)
    try:
        wait_open(phone, f"#tab-{tab}-button")
        # Gradio sets which tabs fit after it has measured them: wait for the bar to settle on all four
        phone.wait_for_function("() => [...document.querySelectorAll('#de-tabs > .tab-wrapper button[role=tab]')]"
                                ".filter(b => b.offsetParent !== null).length === 4")
        for name in ("forward", "reverse", "train", "evaluate"):
            b = box(phone, f"#tab-{name}-button")
            assert b and b["x"] >= 0 and b["x"] + b["width"] <= width, (name, b)
        assert not phone.locator("#de-tabs > .tab-wrapper .overflow-menu > button").is_visible()
        assert phone.evaluate("() => document.documentElement.scrollWidth") <= width, "the page scrolls sideways"
        pairs = {"forward": [("#fw-curves", "#fw-hist")],  # side by side at 430 px the SNR labels hit the curve
                 "train": [("#tr-loss", "#tr-lr-chart"), ("#tr-per-t", "#tr-per-t-now")]}  # 190 px each, titles cut
        for first, second in pairs.get(tab, []):  # one chart under the other
            assert box(phone, second)["y"] >= box(phone, first)["y"] + box(phone, first)["height"] - 1, second
        if tab == "evaluate":  # the MSE chart goes under its notes at full width, not squeezed to 160 px beside them
            phone.locator("#ev-mse .js-plotly-plot").wait_for()
            assert box(phone, "#ev-mse")["width"] >= box(phone, "#ev-table")["width"] - 2, box(phone, "#ev-mse")
    finally:
        phone.close()


TABS_IN_SIGHT = """() => {
  const bar = document.querySelector('#de-bar').getBoundingClientRect(), out = {shown: [], menu: [], wrong: []};
  for (const w of document.querySelectorAll('.tab-wrapper')) {
    if (w.offsetParent === null) continue;
    const strip = w.querySelector('.tab-container[role=tablist]').getBoundingClientRect();
    for (const b of w.querySelectorAll('button[role=tab]')) {
      const r = b.getBoundingClientRect(), name = b.innerText.trim();
      out.shown.push(name);
      if (r.right > strip.right + 1 || r.right > innerWidth) out.wrong.push(name + ': cut off');
      if (r.right > bar.left && r.top < bar.bottom && r.bottom > bar.top) out.wrong.push(name + ': under the bar');
      if (b.scrollWidth > b.clientWidth + 1) out.wrong.push(name + ': squeezed');
    }
    for (const b of w.querySelectorAll('.overflow-dropdown button')) out.menu.push(b.innerText.trim());
  }
  return out;
}"""


@pytest.mark.parametrize("tab", ["forward", "evaluate"])
def test_presenter_tabs_at_800x600_keep_clear_of_the_bar_and_the_rest_go_behind_the_menu(browser, app_url, tab):
    """An old 800x600 projector. Gradio decides which tabs fit by measuring hidden copies of them, which
    had the normal size, not the presenter's 20 px: tabs that did not fit were squeezed and cut ("Noisy
    sampl", "Compare schedule"), and Train and Evaluate lay under the presenter bar. Now the main tabs take
    their own line under the bar there, and a view's tabs that do not fit go behind Gradio's "..." menu."""
    # the Evaluate page opens at 1024x768 and its window is then made smaller (the bar keeps its size)
    page = open_page(browser, f"{app_url}?tab={tab}&present=1", *((800, 600) if tab == "forward" else (1024, 768)))
    try:
        wait_open(page, f"#tab-{tab}-button")
        if tab == "evaluate":
            page.wait_for_function(f"() => !({TABS_IN_SIGHT})().wrong.length")
            page.set_viewport_size({"width": 800, "height": 600})
        page.wait_for_function(f"() => {{ const s = ({TABS_IN_SIGHT})(); return !s.wrong.length && s.menu.length > 0; }}")
        seen = page.evaluate(TABS_IN_SIGHT)
        assert {"Forward process", "Reverse", "Train", "Evaluate"} <= set(seen["shown"]), seen
        assert page.locator(f"#tab-{tab} .tab-wrapper .overflow-menu > button").first.is_visible()
    finally:
        page.close()

def test_a_page_opened_on_another_tab_draws_the_forward_figures_when_forward_is_shown(browser, app_url):
    page = open_page(browser, app_url + "?tab=evaluate&view=quiz", 1280, 800)
    try:
        assert page.locator("#fw-curves, #fw-hist").count() == 0  # not drawn while out of sight
        page.get_by_role("tab", name="Forward process").click()
        page.wait_for_selector("#fw-curves .main-svg")
        page.wait_for_selector("#fw-hist .main-svg")
        assert "ᾱ(t)" in page.locator("#fw-curves").inner_text()
    finally:
        page.close()


@pytest.mark.parametrize("contrast", ["light", "dark"])
def test_in_high_contrast_the_presenter_bar_leaves_the_last_tab_in_sight(browser, app_url, contrast):
    """Bold text and outlined buttons make the tabs and the bar wider: the bar lay over 'Evaluate' at 1024 px."""
    page = open_page(browser, app_url + f"?tab=evaluate&present=1&contrast={contrast}", 1024, 768)
    try:
        page.wait_for_function("() => document.body.classList.contains('de-hc') && document.body.classList.contains('presenting')")
        tabs, bar = box(page, "#tab-evaluate-button") or box(page, "button[role=tab] >> nth=3"), box(page, "#de-bar")
        assert tabs["x"] + tabs["width"] <= bar["x"] or bar["y"] + bar["height"] <= tabs["y"], (tabs, bar)
    finally:
        page.close()


def contrast_ratio(fg: str, bg: str) -> float:
    """WCAG contrast of two CSS colours ('rgb(r, g, b)')."""
    def rel(c):
        vals = [int(v) / 255 for v in re.findall(r"\d+", c)[:3]]
        lin = [v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4 for v in vals]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]
    hi, lo = sorted((rel(fg), rel(bg)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def assert_schedule_labels_readable(page) -> None:
    """Each compared schedule's label (#cmp0-2, coloured as its curve) at a contrast of at least 3 on its chip."""
    for k in range(3):
        fg, bg = page.evaluate(f"() => {{ const s = getComputedStyle(document.querySelector('#cmp{k} label'));"
                               " return [s.color, s.backgroundColor]; }")
        assert contrast_ratio(fg, bg) >= 3, (k, fg, bg)


@pytest.mark.parametrize("contrast", ["light", "dark"])
def test_the_compared_schedules_labels_keep_their_colours_readable_in_high_contrast(browser, app_url, contrast):
    """Stop 4 names each picture in its curve's colour: on the theme's violet chip the colours could not be
    read in high contrast (a dark variant inverts chip and text alike, which keeps their contrast)."""
    page = open_page(browser, app_url + f"?present=1&lesson=diffusion-in-50-minutes&stop=4&contrast={contrast}",
                     1024, 768)
    try:
        page.wait_for_selector("#cmp0 label", state="visible")
        assert_schedule_labels_readable(page)
    finally:
        page.close()


def test_gradios_dark_theme_keeps_the_charts_text_and_the_schedules_labels_readable(browser, app_url):
    """Gradio's own dark theme (the system's, or ?__theme=dark): chart text was drawn dark grey for a white
    page (about 1.9:1 on the dark one) and the curve-coloured labels stood on a violet chip."""
    page = open_page(browser, app_url + "?present=1&lesson=diffusion-in-50-minutes&stop=4&__theme=dark", 1024, 768)
    try:
        page.wait_for_function("() => document.body.classList.contains('dark')")
        page.wait_for_selector("#fw-cmp-curves .js-plotly-plot .xtick text")
        # the ground the chart is seen on: the first box under it with a colour of its own
        ground = page.evaluate("""() => { for (let e = document.querySelector('#fw-cmp-curves'); e; e = e.parentElement) {
            const c = getComputedStyle(e).backgroundColor;
            if (c && c !== 'transparent' && !c.startsWith('rgba(0, 0, 0, 0)')) return c; } return 'rgb(255, 255, 255)'; }""")
        tick = page.evaluate("() => getComputedStyle(document.querySelector('#fw-cmp-curves .xtick text')).fill")
        assert contrast_ratio(tick, ground) >= 4.5, (tick, ground)
        assert_schedule_labels_readable(page)
    finally:
        page.close()


def luminance(rgb: str) -> float:
    r, g, b = (int(v) for v in re.findall(r"\d+", rgb)[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def test_high_contrast_light_and_dark_reach_the_page_and_its_charts(browser, app_url, screenshots):
    page = open_page(browser, app_url + "?tab=forward&source=dataset&input=swiss_roll", 1024, 768)
    try:
        page.locator("#ximg-plot .js-plotly-plot").wait_for(state="visible")
        body_bg = "() => getComputedStyle(document.body).backgroundColor"
        chart_filter = "() => getComputedStyle(document.querySelector('#ximg-plot .js-plotly-plot')).filter"
        line_width = ("() => { const l = document.querySelector('.js-plotly-plot .scatterlayer .js-line');"
                      " return l ? getComputedStyle(l).strokeWidth : null; }")
        page.keyboard.press("h")  # light
        wait_url(page, "contrast", "light")
        assert page.evaluate("() => document.body.classList.contains('de-hc')")
        assert luminance(page.evaluate(body_bg)) > 250
        assert page.evaluate(chart_filter) == "none"
        page.keyboard.press("h")  # dark: the page black, the charts inverted (white ground -> black)
        wait_url(page, "contrast", "dark")
        assert page.evaluate("() => document.body.classList.contains('dark')")
        assert luminance(page.evaluate(body_bg)) < 5
        assert "invert(1)" in page.evaluate(chart_filter)
        page.screenshot(path=str(screenshots / "contrast-dark-forward-1024x768.png"))
        # the setting is part of the link: a fresh page opens dark
        fresh = open_page(browser, page.url, 1024, 768)
        try:
            fresh.wait_for_function("() => document.body.classList.contains('de-hc') && document.body.classList.contains('dark')")
        finally:
            fresh.close()
        page.locator("#de-contrast").click()  # off again
        page.wait_for_function("() => !new URLSearchParams(location.search).has('contrast')")
        assert not page.evaluate("() => document.body.classList.contains('de-hc')")
        # a chart with lines (the schedule curves) gets them thick in high contrast
        page.goto(app_url + "?tab=forward&view=compare&contrast=light")
        page.wait_for_selector("#de-ready [data-ready]", state="attached")
        page.wait_for_function("() => document.querySelector('.js-plotly-plot .scatterlayer .js-line') !== null")
        assert page.evaluate(line_width) == "4px"
    finally:
        page.close()
