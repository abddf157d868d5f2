"""The Reverse tab in a real browser: frames stream in while Play computes; scrub, step, export."""
import re

import pytest
from browser_helpers import drag

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("one_torch_thread")]

WATCH_FRAMES = """() => {
    window.__srcs = new Set();
    const note = () => { const img = document.querySelector('#rv-frame img'); if (img) window.__srcs.add(img.src); };
    new MutationObserver(note).observe(document.querySelector('#rv-frame').parentElement,
                                      {subtree: true, childList: true, attributes: true});
}"""


@pytest.fixture
def reverse(browser, app_url, trained_checkpoints):
    """A fresh page opened on the Reverse tab by its link, as a lecturer's bookmark opens it.

    (Opening on Forward and clicking the tab, as other tests do, costs each test about 2 s more: the
    Forward figures are drawn first and the tab's content is mounted after.)
    """
    page = browser.new_page()
    page.goto(app_url + "?tab=reverse")
    page.wait_for_selector("#de-ready [data-ready]", state="attached")  # the link's view is in place
    page.wait_for_selector("#rv-play")
    yield page
    page.close()


def choose(page, name: str):
    page.locator("#rv-ckpt input").click()
    page.get_by_role("option", name=re.compile(re.escape(name))).click()
    page.wait_for_function("n => document.querySelector('#rv-info').innerText.includes(n)",
                           arg={"tiny-digits": "digits", "tiny-points": "gaussians8", "tiny-signals": "signals"}[name])


def caption(page) -> str:
    return page.locator("#rv-caption").inner_text()


def wait_caption(page, text: str):
    page.wait_for_function("t => document.querySelector('#rv-caption').innerText.includes(t)", arg=text)


def wait_complete(page):
    """Wait for a run's closing view. The live feed's last frame can already say "complete" while that
    view is still on its way through a busy server's queue (the scrubber stays locked until it lands)."""
    page.wait_for_function("""() => {
        const range = document.querySelector('#rv-scrub input[type=range]');
        return document.querySelector('#rv-caption').innerText.includes('complete') && !!range && !range.disabled; }""")


def wait_plot(page):
    page.wait_for_function("() => document.querySelectorAll('#rv-frame-plot .scatterlayer .trace').length > 0")


def wait_closing_picture(page):
    """A 2-D or signal play's closing view: the last frame's picture, with the word that the figure waits."""
    page.wait_for_function("""() => { const img = document.querySelector('#rv-frame img');
        return !!document.querySelector('#rv-feed [data-figure-later]') && !!img && img.offsetParent !== null
            && img.complete && img.naturalWidth > 0 && !img.src.startsWith('blob:'); }""")


def figure_at_rest(page):
    """A pointer over the picture a 2-D play ended on: the interactive figure is drawn in its place."""
    page.locator("#rv-frame img").hover()
    page.wait_for_selector("#rv-frame", state="detached")
    wait_plot(page)
    page.wait_for_function("() => !document.querySelector('.de-ghost')")
    page.mouse.move(0, 0)


def test_play_streams_frames_then_scrub_step_and_export(reverse, screenshots):
    page = reverse
    choose(page, "tiny-digits")
    page.locator("#rv-speed").get_by_text("30", exact=True).click()
    page.evaluate(WATCH_FRAMES)
    page.locator("#rv-play").click()
    page.wait_for_selector("#rv-frame img")
    page.wait_for_timeout(600)
    page.screenshot(path=str(screenshots / "reverse-playing.png"))
    wait_complete(page)
    srcs = page.evaluate("() => window.__srcs.size")
    assert srcs >= 5, f"only {srcs} distinct frames arrived while playing"
    assert "done" in caption(page)
    page.screenshot(path=str(screenshots / "reverse-done.png"), full_page=True)

    # scrub back into the trajectory: the frame and its caption follow the slider
    before = page.locator("#rv-frame img").get_attribute("src")
    drag(page, "#rv-scrub input[type=range]", 0.98, 0.3, steps=8)
    frame = int(page.locator("#rv-scrub input[type=number]").input_value())
    assert 5 <= frame <= 30
    step = frame + 1  # frame k shows sampler step k + 1
    wait_caption(page, f"step {step} of 50")  # the last value of the drag wins
    assert page.locator("#rv-frame img").get_attribute("src") != before
    page.locator("#rv-back").click()
    wait_caption(page, f"step {step - 1} of 50")
    page.screenshot(path=str(screenshots / "reverse-scrubbed.png"))

    for fmt in ("gif", "mp4"):
        page.locator("#rv-fmt").get_by_text(fmt, exact=True).click()
        page.locator("#rv-export").click()
        link = page.locator(f"#rv-file a[href$='.{fmt}']")
        link.wait_for()
    page.screenshot(path=str(screenshots / "reverse-exported.png"), full_page=True)


def test_pause_resume_and_stop(reverse):
    page = reverse
    choose(page, "tiny-digits")
    page.locator("#rv-sampler input").click()
    page.get_by_role("option", name="DDPM (ancestral, stochastic)", exact=True).click()
    page.wait_for_function("() => document.querySelector('#rv-steps input[type=number]').value === '200'")
    page.locator("#rv-speed").get_by_text("10", exact=True).click()
    page.locator("#rv-play").click()
    wait_caption(page, "computing")
    page.locator("#rv-pause").click()
    wait_caption(page, "paused")
    paused_at = int(re.search(r"(\d+) of 200 steps computed", caption(page)).group(1))
    assert paused_at < 200
    page.locator("#rv-speed").get_by_text("max", exact=True).click()
    page.locator("#rv-play").click()  # goes on from where it paused
    wait_complete(page)
    assert "200 of 200 steps computed" in caption(page)
    page.locator("#rv-play").click()   # a finished run replays from the start
    page.locator("#rv-stop").click()
    wait_caption(page, "Stopped")


def test_points_model_shows_the_field_and_both_samplers(reverse, screenshots):
    page = reverse
    choose(page, "tiny-points")
    page.locator("#rv-compare input").check()
    page.wait_for_selector("#rv-sampler-b", state="visible")
    page.locator("#rv-speed").get_by_text("max", exact=True).click()
    page.locator("#rv-play").click()
    wait_complete(page)
    # the play ends on the last frame's picture: the interactive figure is drawn only when asked for
    wait_closing_picture(page)
    page.wait_for_timeout(500)
    assert page.locator("#rv-frame-plot").count() == 0, "the figure is drawn before anyone asked for it"
    # a chart's picture: the lecture's dark high contrast inverts it as it does the figure
    assert page.evaluate("() => document.body.classList.contains('rv-chart-picture')"
                         " && document.body.classList.contains('de-chart-frames')")
    figure_at_rest(page)
    page.wait_for_function("() => [...document.querySelectorAll('#rv-frame-plot .annotation-text')]"
                           ".some(t => t.textContent.startsWith('DDPM'))")
    assert not page.evaluate("() => document.body.classList.contains('rv-chart-picture')")
    titles = page.locator("#rv-frame-plot .annotation-text").all_text_contents()
    assert any(t.startswith("DDIM") for t in titles) and any(t.startswith("DDPM") for t in titles)
    assert page.locator("#rv-frame-plot .scatterlayer .trace").count() >= 8  # field, trails, x_t, x0, data x2
    page.screenshot(path=str(screenshots / "reverse-points.png"), full_page=True)


def test_a_mistake_shows_a_message_and_the_tab_keeps_working(reverse, screenshots):
    page = reverse
    choose(page, "tiny-signals")
    page.locator("#rv-seed input").fill("-5")  # a seed below 0: Play says so and the tab goes on working
    page.locator("#rv-seed input").blur()
    page.locator("#rv-play").click()
    page.locator(".toast-body", has_text="Seed must be a whole number from 0 to 2,147,483,647, got -5").wait_for()
    page.locator("#rv-seed input").fill("0")
    page.locator("#rv-seed input").blur()
    page.locator("#rv-speed").get_by_text("max", exact=True).click()
    page.locator("#rv-play").click()
    wait_complete(page)
    wait_closing_picture(page)
    page.locator("#rv-fwd").focus()  # the keyboard asks for the interactive figure too: Tab into the view
    page.keyboard.press("Tab")
    page.wait_for_selector("#rv-frame", state="detached")
    wait_plot(page)
    assert page.locator("#rv-frame-plot .scatterlayer .trace").count() == 3 * 4  # three panels of four lines
    page.screenshot(path=str(screenshots / "reverse-signals.png"))


LOG_FRAMES = """() => {
    window.__log = [];
    const note = () => {
        const img = document.querySelector('#rv-frame img');
        if (img && img.src !== window.__log[window.__log.length - 1]) window.__log.push(img.src);
    };
    new MutationObserver(note).observe(document.querySelector('#rv-frame').parentElement,
                                      {subtree: true, childList: true, attributes: true});
}"""

# Settled: the caption says `text` and the frame slider is free again (the playing generator has sent its
# closing view). Marks how many frames had arrived by then.
SETTLED = """t => {
    const range = document.querySelector('#rv-scrub input[type=range]');
    if (!document.querySelector('#rv-caption').innerText.includes(t) || !range || range.disabled) return false;
    window.__mark = window.__log.length;
    return true;
}"""


def live_ddpm_200(page, seed: int, speed: str):
    """tiny-digits with DDPM over all 200 steps and a seed of its own (so computed live, not replayed)."""
    choose(page, "tiny-digits")
    page.locator("#rv-sampler input").click()
    page.get_by_role("option", name="DDPM (ancestral, stochastic)", exact=True).click()
    page.wait_for_function("() => document.querySelector('#rv-steps input[type=number]').value === '200'")
    page.locator("#rv-seed input").fill(str(seed))
    page.locator("#rv-seed input").blur()
    page.wait_for_function("s => location.search.includes('seed=' + s)", arg=str(seed))
    page.locator("#rv-speed").get_by_text(speed, exact=True).click()


@pytest.mark.parametrize("action, said, step", [("#rv-pause", "paused", 1), ("#rv-stop", "Stopped", -1)])
def test_no_frame_arrives_after_pause_or_stop(reverse, action, said, step):
    """Pause and Stop end playback at once: once settled, the next frame to arrive is the one a Step asks for."""
    page = reverse
    live_ddpm_200(page, seed=11, speed="10")  # 20 s of run: Pause lands mid-run even under load
    page.evaluate(LOG_FRAMES)
    page.locator("#rv-play").click()
    page.wait_for_function("() => window.__log.length >= 4")   # it is playing
    page.locator(action).click()
    page.wait_for_function(SETTLED, arg=said)
    at = int(re.search(r"Frame (\d+) of", caption(page)).group(1))
    assert 0 < at < 200
    # the slider's end label written by the live player gave way to the closing view's
    top = page.evaluate("() => document.querySelector('#rv-scrub input[type=range]').max")
    assert page.locator("#rv-scrub [data-testid=max-value]").inner_text() == top == str(at)
    page.locator("#rv-fwd" if step > 0 else "#rv-back").click()   # a stopped run computes no more
    wait_caption(page, f"Frame {at + step} of")
    late = page.evaluate("() => window.__log.slice(window.__mark)")
    assert len(late) == 1, f"{len(late) - 1} frame(s) of the run arrived after it was {said.lower()}"


def test_a_slow_page_skips_to_the_newest_frame_instead_of_falling_behind(reverse):
    """Each live frame reaches the page 0.4 s late (a slow network or browser): the page shows the newest
    frame each time, the ones between are dropped, and the run ends on time with no backlog to show."""
    import time

    page = reverse
    live_ddpm_200(page, seed=12, speed="30")  # about 7 s of run

    shown = []

    def slow(route):
        time.sleep(0.4)
        route.continue_()

    page.on("response", lambda r: "/de-feed/" in r.url and r.status == 200 and shown.append(int(r.headers["x-frame"])))
    page.route("**/de-feed/**", slow)
    page.evaluate(LOG_FRAMES)
    page.locator("#rv-play").click()
    page.wait_for_function(SETTLED, arg="complete")
    assert "200 of 200 steps computed" in caption(page)
    assert 2 <= len(shown) <= 40, f"{len(shown)} live frames"
    assert shown == sorted(shown) and len(set(shown)) == len(shown)
    gaps = [b - a for a, b in zip(shown, shown[1:])]
    assert max(gaps) > 1, f"no frame was skipped: {shown}"  # at 30 steps/s and 2.5 frames/s, most are
    page.wait_for_timeout(1000)  # a live frame still on its way would arrive in this time
    late = page.evaluate("() => window.__log.slice(window.__mark)")
    assert late == [], f"{len(late)} frame(s) arrived after the run's closing view"


# the top-left pixel of the frame picture (its ground), or null while none is loaded
GROUND = """() => {
    const img = document.querySelector('#rv-frame img');
    if (!img || !img.complete || !img.naturalWidth || img.src.startsWith('blob:')) return null;
    const c = document.createElement('canvas'); c.width = c.height = 1;
    const g = c.getContext('2d'); g.drawImage(img, 0, 0, 1, 1, 0, 0, 1, 1);
    return g.getImageData(0, 0, 1, 1).data[0];
}"""


def test_image_frames_follow_the_dark_theme_and_back(reverse):
    """Image frames carry titles and captions: on the dark theme they are drawn on black, not white."""
    page = reverse
    choose(page, "tiny-digits")
    page.locator("#rv-speed").get_by_text("max", exact=True).click()
    page.locator("#rv-play").click()
    wait_complete(page)
    page.wait_for_function(f"() => ({GROUND})() > 200")
    page.keyboard.press("h")
    page.keyboard.press("h")  # high contrast: light, then dark
    page.wait_for_function("() => document.body.classList.contains('dark')")
    page.wait_for_function(f"() => {{ const v = ({GROUND})(); return v !== null && v < 50; }}")
    page.locator("#rv-back").click()  # a new frame of the same run: on the dark ground too
    wait_caption(page, "step 50 of 50")
    page.wait_for_function(f"() => {{ const v = ({GROUND})(); return v !== null && v < 50; }}")
    page.keyboard.press("h")  # off: the light page again
    page.wait_for_function("() => !document.body.classList.contains('dark')")
    page.wait_for_function(f"() => ({GROUND})() > 200")


# the token of the armed feed the page names (null: none)
ARMED = "() => { const el = document.querySelector('#rv-armed [data-armed]'); return el ? el.dataset.armed : null; }"
NEW_ARMED = f"t => {{ const now = ({ARMED})(); return !!now && now !== t; }}"  # one other than t


def complete_run(page, name: str) -> str:
    """`name` played at top speed to its end, so at rest on a run that Play replays from its start.
    Returns the armed feed the page asked for then (the play closed the one armed before it)."""
    choose(page, name)
    page.locator("#rv-speed").get_by_text("max", exact=True).click()
    token = page.evaluate(ARMED)
    page.locator("#rv-play").click()
    wait_complete(page)
    page.wait_for_function(NEW_ARMED, arg=token)
    return page.evaluate(ARMED)


def play_with_its_event_held(page) -> None:
    """Play clicked at rest on a 50-step run it replays, with Play's own event held back on its way to the
    server: the next frame must show all the same (from the armed feed). Then the event goes through and
    the run plays to its end."""
    held = []
    page.route("**/queue/join**", lambda route: held.append(route))  # Play's event waits here
    page.locator("#rv-play").click()
    page.wait_for_function("() => document.querySelector('#rv-frame img').src.startsWith('blob:')")
    wait_caption(page, "Frame 0 of 50")
    assert len(held) == 1 and "replaying" in caption(page)
    for route in held:
        route.continue_()
    page.unroute("**/queue/join**")
    wait_complete(page)
    assert "Frame 50 of 50" in caption(page)


def test_a_play_click_shows_the_next_frame_before_plays_event_reaches_the_server(reverse):
    """A run at rest that can be replayed: the Play click asks the session's armed feed at once, so the
    next frame shows while Play's own event is still held back on its way to the server; the play then
    takes that feed over and goes on from the frame shown to the end."""
    page = reverse
    token = complete_run(page, "tiny-digits")
    play_with_its_event_held(page)
    assert not page.evaluate("() => document.querySelector('#rv-frame img').src.startsWith('blob:')")
    page.wait_for_function(NEW_ARMED, arg=token)  # the play took the armed feed over: at rest, a new one


def test_a_changed_setting_makes_the_play_click_wait_for_plays_own_view(reverse):
    """After a setting is changed the next Play is a new run: the click must not show a frame of the run
    before (the armed feed is not asked); the new run's first frame comes through Play's own view."""
    page = reverse
    complete_run(page, "tiny-digits")
    steps = page.locator("#rv-steps input[type=number]")
    steps.fill("20")
    steps.press("Enter")
    asked = []
    page.on("request", lambda r: "/de-feed/" in r.url and "play=1" in r.url and asked.append(r.url))
    page.locator("#rv-play").click()
    wait_caption(page, "Frame 20 of 20")
    wait_complete(page)
    assert asked == [] and "20 of 20 steps computed live" in caption(page)


def test_a_setting_put_back_as_it_was_lets_the_click_show_the_next_frame_at_once(reverse):
    """A seed typed and typed back (or typed again as it was) is the same run: the click still asks
    the armed feed at once instead of waiting for Play's view through the queue."""
    page = reverse
    complete_run(page, "tiny-digits")
    seed = page.locator("#rv-seed input")
    for value in ("7", "0"):
        seed.fill(value)
        seed.blur()
    play_with_its_event_held(page)


def test_a_2d_model_shows_plays_first_frame_over_its_figure_before_plays_event_arrives(reverse):
    """At rest a 2-D model shows its interactive figure (Gradio draws no hidden picture): the frame the
    click shows is laid over the figure until Play's first view has made the picture visible."""
    page = reverse
    complete_run(page, "tiny-points")
    figure_at_rest(page)
    held = []
    page.route("**/queue/join**", lambda route: held.append(route))
    page.locator("#rv-play").click()
    page.wait_for_function("() => { const c = document.querySelector('img.rv-cover');"
                           " return !!c && c.complete && c.naturalWidth > 0; }")
    wait_caption(page, "Frame 0 of")
    over = page.evaluate("""() => { const c = document.querySelector('img.rv-cover').getBoundingClientRect();
        const p = document.querySelector('#rv-frame-plot').getBoundingClientRect();
        return Math.abs(c.top - p.top) < 2 && Math.abs(c.left - p.left) < 2 && Math.abs(c.width - p.width) < 2; }""")
    assert over and len(held) == 1, "the cover lies on the figure while Play's event is held back"
    for route in held:
        route.continue_()
    page.unroute("**/queue/join**")
    wait_complete(page)
    page.wait_for_function("() => !document.querySelector('img.rv-cover')")
    wait_closing_picture(page)  # at rest on the last frame's picture


def test_scrubbing_a_2d_run_shows_each_position_from_the_feed_until_the_figure_is_drawn(reverse):
    """A scrub at rest asks the armed feed for the position's picture and lays it over the figure, with
    no Gradio event needed for it; once Gradio's view of the last position has landed (the figure drawn
    again), the cover goes and the interactive figure shows that position."""
    page = reverse
    complete_run(page, "tiny-points")
    figure_at_rest(page)
    frames = int(re.search(r"Frame (\d+) of (\d+)", caption(page)).group(2))
    held = []
    page.route("**/queue/join**", lambda route: held.append(route))
    page.locator("#rv-scrub input[type=range]").focus()
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    page.wait_for_function("k => { const c = document.querySelector('img.rv-cover');"
                           " return !!c && c.dataset.frame === String(k) && c.complete && c.naturalWidth > 0; }",
                           arg=frames - 2)
    over = page.evaluate("""() => { const c = document.querySelector('img.rv-cover').getBoundingClientRect();
        const p = document.querySelector('#rv-frame-plot').getBoundingClientRect();
        return Math.abs(c.top - p.top) < 2 && Math.abs(c.left - p.left) < 2 && Math.abs(c.width - p.width) < 2; }""")
    assert over and f"Frame {frames} of {frames}" in caption(page), "the picture shows while Gradio's views are held"
    for route in held:
        route.continue_()
    page.unroute("**/queue/join**")
    wait_caption(page, f"Frame {frames - 2} of {frames}")
    page.wait_for_function("() => !document.querySelector('img.rv-cover')")
    wait_plot(page)


@pytest.mark.parametrize("name, chart", [("tiny-digits", False), ("tiny-points", True)])
def test_in_dark_high_contrast_a_scrubs_picture_is_inverted_only_over_a_chart(browser, app_url, trained_checkpoints,
                                                                               name, chart):
    """The lecture's dark high contrast inverts charts (white ground -> black) and the player's cover with
    them where it lies over one. An image model's frames are drawn on the page's dark ground already: its
    scrub pictures were inverted too (light digits on white). And an inverted cover's fill around its
    chart (the page's black ground) showed white bars beside the chart: it is filled white, so black on screen."""
    page = browser.new_page()
    try:
        page.goto(app_url + "?tab=reverse&contrast=dark")
        page.wait_for_selector("#de-ready [data-ready]", state="attached")
        complete_run(page, name)
        if chart:
            figure_at_rest(page)
        held = []
        page.route("**/queue/join**", lambda route: held.append(route))  # the scrub's own view waits
        page.locator("#rv-scrub input[type=range]").focus()
        page.keyboard.press("ArrowLeft")
        page.wait_for_function("() => { const c = document.querySelector('img.rv-cover');"
                               " return !!c && c.complete && c.naturalWidth > 0; }")
        look = page.evaluate("() => { const s = getComputedStyle(document.querySelector('img.rv-cover'));"
                             " return [s.filter, s.backgroundColor]; }")
        if chart:
            assert "invert(1)" in look[0] and look[1] == "rgb(255, 255, 255)", look
        else:
            assert look[0] == "none", look
        for route in held:
            route.continue_()
        page.unroute("**/queue/join**")
        page.wait_for_function("() => !document.querySelector('img.rv-cover')")
    finally:
        page.close()


# At every animation frame: where the frame slider sits (page coordinates) and whether the view shows
# anything: a loaded picture, a drawn figure, or a laid-over look of either (the player's cover, a ghost).
# A picture given a new src keeps showing its last image until the new one has loaded (chromium; its
# `complete` is false meanwhile), as a play's closing view does to the picture its frames were shown in.
WATCH_VIEW = """() => {
    window.__view = [];
    const shown = (el) => !!el && el.offsetParent !== null;
    const loaded = new WeakSet();  // picture elements that have shown an image
    const tick = () => {
        const img = document.querySelector('#rv-frame img'), plot = document.querySelector('#rv-frame-plot');
        if (shown(img) && img.complete && img.naturalWidth > 0) loaded.add(img);
        const drawn = (shown(img) && loaded.has(img))
            || (shown(plot) && plot.querySelectorAll('.scatterlayer .trace').length > 0)
            || !!document.querySelector('img.rv-cover, .de-ghost');
        const scrub = document.querySelector('#rv-scrub').getBoundingClientRect().top + scrollY;
        const what = [img ? `picture ${img.closest('.de-view').offsetHeight} ${img.closest('.de-view').style.minHeight}` : '',
                      plot ? `figure ${plot.offsetHeight} ${plot.style.minHeight}` : '',
                      document.querySelector('img.rv-cover') ? 'cover' : '',
                      document.querySelector('.de-ghost') ? 'ghost' : ''].filter(Boolean).join(', ');
        window.__view.push([Math.round(scrub), drawn, what]);
        if (!window.__viewDone) requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
}"""


@pytest.mark.parametrize("replayed", [False, True], ids=["new-run", "replayed"])
def test_a_2d_play_never_blanks_the_view_or_moves_the_page_below_it(reverse, replayed):
    """A 2-D model shows an interactive figure at rest and pictures while it plays; Gradio mounts one and
    removes the other, and a new one has no height until it is drawn. Through a whole play (a new run,
    and a run replayed from the armed feed) and the figure asked for after it, at every animation frame
    something is shown in the view and the frame slider under it stays where it was."""
    page = reverse
    complete_run(page, "tiny-points")
    figure_at_rest(page)
    if not replayed:
        seed = page.locator("#rv-seed input")
        seed.fill("5")
        seed.press("Enter")
    page.evaluate(WATCH_VIEW)
    page.locator("#rv-play").click()
    wait_complete(page)
    wait_closing_picture(page)
    figure_at_rest(page)
    page.evaluate("() => { window.__viewDone = true; }")
    seen = page.evaluate("window.__view")
    rest = seen[0][0]
    blank = [what for _, drawn, what in seen if not drawn]
    moved = [(top - rest, what) for top, _, what in seen if abs(top - rest) > 4]
    assert not blank, f"the view showed nothing at {len(blank)} of {len(seen)} animation frames: {blank}"
    assert not moved, f"the frame slider moved during the play (px, the view then): {moved}"


def test_a_checkpoint_chosen_in_the_list_shows_its_first_frame_not_an_empty_box(reverse):
    page = reverse
    page.wait_for_function("() => /Frame 0 of/.test(document.querySelector('#rv-caption').innerText)")  # opening
    choose(page, "tiny-points")
    # the figure of the run Play will play, on its first frame, and a caption of that run
    page.wait_for_selector("#rv-frame-plot .main-svg", state="visible")
    # computed live, or replayed where an earlier test played the same run (runs are kept for every session)
    page.wait_for_function("() => /computed live|recorded earlier/.test(document.querySelector('#rv-caption').innerText)")
    assert "step 1 of" in caption(page) and not page.locator("#rv-frame").is_visible()
    choose(page, "tiny-digits")
    page.wait_for_selector("#rv-frame img", state="visible")
    assert not page.locator("#rv-frame-plot").is_visible()


def test_a_shipped_2d_model_switches_to_its_fastest_setting_that_meets_its_goal(reverse):
    page = reverse
    page.locator("#rv-ckpt input").click()
    page.get_by_role("option", name=re.compile(r"^swiss_roll · ")).click()
    page.wait_for_function("() => document.querySelector('#rv-measured').innerText.includes('✗ DDIM, 50 steps')")
    page.locator("#rv-use-measured").click()
    page.wait_for_function("() => document.querySelector('#rv-sampler input').value.includes('DPM-Solver++ 2M SDE')")
    page.wait_for_function("() => document.querySelector('#rv-spacing input[value=quadratic]').checked")
    assert page.locator("#rv-steps input[type=number]").input_value() == "50"
    page.wait_for_function("() => document.querySelector('#rv-explain').innerText.includes('DPM-Solver++')")


class SlowModel:
    """The app's cached tiny-digits model, slowed to 50 ms a call for a batch of `slow_n` and its calls
    counted by batch size: a long run in the page stays long on any machine, and whether the server
    still computes it is seen from the calls."""

    def __init__(self, app, path, slow_n: int = 64):
        import time

        self.calls: dict[int, int] = {}
        self.model = app.ctx.load_checkpoint(str(path))[0]

        def hook(module, args):
            n = args[0].shape[0]
            self.calls[n] = self.calls.get(n, 0) + 1
            if n == slow_n:
                time.sleep(0.05)

        self.handle = self.model.register_forward_pre_hook(hook)
        # (a run that goes on past Cancel or Stop would reach 150 calls 6 s or more after them: the tests'
        # bound, far above what a run stopped at its next step makes, whatever the machine's load)

    def wait_calls(self, page, n: int, at_least: int):
        while self.calls.get(n, 0) < at_least:
            page.wait_for_timeout(20)

    def wait_quiet(self, page, n: int, limit: int) -> int:
        """Until 3 s pass with no call for batch n (a run that goes on calls every 50 ms) or `limit` calls."""
        seen = -1
        while seen != self.calls.get(n, 0) and self.calls.get(n, 0) < limit:
            seen = self.calls.get(n, 0)
            page.wait_for_timeout(3000)
        return self.calls.get(n, 0)


def set_run(page, sampler: str, steps: int, n: int):
    """Another sampler (its event shows eta for DDIM only and sets the sampler's usual steps: the steps are
    typed once it has landed), then the steps and the number of samples."""
    page.locator("#rv-sampler input").click()
    page.get_by_role("option", name=sampler, exact=True).click()
    page.wait_for_function("want => { const e = document.querySelector('#rv-eta');"
                           " return (!!e && e.offsetParent !== null) === want; }", arg=sampler.startswith("DDIM"))
    box = page.locator("#rv-steps input[type=number]")
    box.fill(str(steps))
    box.press("Enter")
    page.wait_for_function("s => document.querySelector('#rv-steps input[type=number]').value === s", arg=str(steps))
    count = page.locator("#rv-n input[type=number]")
    count.fill(str(n))
    count.press("Enter")
    page.wait_for_function("s => document.querySelector('#rv-n input[type=number]').value === s", arg=str(n))


def test_cancel_in_the_page_stops_a_long_sample_and_the_next_sample_runs(reverse, app, trained_checkpoints):
    """'Sample to the end' over 200 DDPM steps of 64 samples, then the page's Cancel: the server's loop stops
    between steps (the model is called no more) and the next request, 2 samples over 5 DDIM steps, runs and
    shows its samples, where it would have waited for the first to end (one sampling request at a time)."""
    page = reverse
    slow = SlowModel(app, trained_checkpoints["tiny-digits"])
    try:
        choose(page, "tiny-digits")
        set_run(page, "DDPM (ancestral, stochastic)", 200, 64)
        page.get_by_text("Sample without animation").click()
        page.locator("#rv-sample").click()
        slow.wait_calls(page, 64, 10)  # it is sampling (the estimate's own calls come first)
        page.locator("#rv-sample-cancel").click()
        set_run(page, "DDIM (deterministic at eta 0)", 5, 2)
        page.locator("#rv-sample").click()
        page.wait_for_function("() => { const img = document.querySelector('#rv-final img');"
                               " return !!img && img.complete && img.naturalWidth > 0; }")
        page.wait_for_function(r"""() => { const t = document.querySelector('#rv-stats').innerText;
            return /"n"\s*:\s*2\b/.test(t) && /"steps"\s*:\s*5\b/.test(t); }""")
        assert slow.calls.get(2, 0) >= 5
        assert slow.wait_quiet(page, 64, 200) < 150, "the cancelled run went on computing"
    finally:
        slow.handle.remove()


def test_stop_in_the_page_stops_the_computation_on_the_server(reverse, app, trained_checkpoints):
    """Stop during a long live run: the server's run stops between steps (its model is called no more),
    and the next Play runs to its end."""
    page = reverse
    slow = SlowModel(app, trained_checkpoints["tiny-digits"])
    try:
        choose(page, "tiny-digits")
        set_run(page, "DDPM (ancestral, stochastic)", 200, 64)
        page.locator("#rv-speed").get_by_text("max", exact=True).click()
        page.locator("#rv-play").click()
        slow.wait_calls(page, 64, 10)
        page.locator("#rv-stop").click()
        wait_caption(page, "Stopped")
        assert slow.wait_quiet(page, 64, 200) < 150, "the stopped run went on computing"
        set_run(page, "DDIM (deterministic at eta 0)", 5, 2)
        page.locator("#rv-play").click()
        wait_caption(page, "5 of 5 steps computed")
        wait_complete(page)
        assert slow.calls.get(2, 0) >= 5
    finally:
        slow.handle.remove()
