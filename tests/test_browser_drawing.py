"""Draw your own 2-D data in a real browser: strokes on the canvas, the preview, a live run, Reverse."""
import re

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("one_torch_thread")]

STEP = "() => { const m = /step ([\\d,]+) \\//.exec(document.querySelector('#tr-status').innerText);" \
       " return m && +m[1].replace(/,/g, '') > %d; }"


def stroke(page, box, points, moves: int = 3):
    """Press, drag through `points` (fractions of the canvas) and release, as a hand would.

    The canvas joins successive pointer positions with straight ink, so a few moves a segment draw the
    same shape as many; each move costs headless chromium without a GPU about half a second (the canvas
    is WebGL, drawn in software there).
    """
    at = lambda fx, fy: (box["x"] + fx * box["width"], box["y"] + fy * box["height"])  # noqa: E731
    page.mouse.move(*at(*points[0]))
    page.mouse.down()
    for (ax, ay), (bx, by) in zip(points, points[1:]):
        for i in range(1, moves + 1):
            page.mouse.move(*at(ax + (bx - ax) * i / moves, ay + (by - ay) * i / moves))
    page.mouse.up()


def test_draw_a_letter_see_it_train_on_it_and_find_it_in_reverse(page, screenshots):
    page.get_by_role("tab", name="Train", exact=True).click()
    page.wait_for_selector("#tr-start")
    assert not page.locator("#tr-draw").is_visible()
    page.locator("#tr-dataset input").click()
    page.get_by_role("option", name="your 2-D points (draw or CSV)").click()
    page.wait_for_selector("#tr-draw canvas")
    assert page.locator("#tr-steps input[type=number]").input_value() == "1200"  # the drawing's preset
    # choosing the dataset picks the brush (the canvas would otherwise ask for a tool first)
    page.wait_for_function("() => { const b = document.querySelector('#tr-draw button[aria-label=\"Brush\"]');"
                           " return b && b.classList.contains('highlight'); }")

    page.locator("#tr-start").click()  # on an empty canvas: an error that says what is missing
    page.locator(".toast-body", has_text="no points yet: draw a shape on the canvas").first.wait_for()

    box = page.locator("#tr-draw canvas").first.bounding_box()
    stroke(page, box, [(0.2, 0.85), (0.5, 0.15), (0.8, 0.85)])  # an "A"
    stroke(page, box, [(0.33, 0.55), (0.67, 0.55)])
    # the preview shows the points of both strokes: more than one stroke's worth of ink
    page.wait_for_function("() => { const m = /([\\d,]+) points from the drawing/.exec("
                           "document.querySelector('#tr-points-note').innerText);"
                           " return m && +m[1].replace(/,/g, '') > 8000; }")
    page.wait_for_function("() => document.querySelectorAll('#tr-points-preview .scatterlayer .trace').length >= 1")
    page.screenshot(path=str(screenshots / "train-drawing.png"), full_page=True)

    page.locator("#tr-start").click()
    page.wait_for_function("() => document.querySelector('#tr-message').innerText.includes('Started')")
    run = re.search(r"Started (\S+):", page.locator("#tr-message").inner_text()).group(1)
    assert run.startswith("points_file-mlp-2d-")
    page.wait_for_function(STEP % 0)
    page.wait_for_function("() => document.querySelectorAll('#tr-preview-plot .scatterlayer .trace').length >= 2")

    page.locator("#tr-save").click()
    page.wait_for_function("() => document.querySelector('#tr-message').innerText.includes('Saved')")
    saved = re.search(r"Saved (\S+):", page.locator("#tr-message").inner_text()).group(1)
    assert saved.startswith(run + "/step-")
    # the preset's run may finish at any moment, disabling Stop between a check and a click (a plain click
    # then waits forever): a forced click skips the wait and does nothing on a disabled button
    page.locator("#tr-stop").click(force=True)
    page.wait_for_function("() => /stopped|finished/.test(document.querySelector('#tr-status').innerText)")

    page.get_by_role("tab", name="Reverse", exact=True).click()
    page.wait_for_selector("#rv-play")
    page.locator("#rv-ckpt input").click()
    page.locator("[role=option]", has_text=saved).first.wait_for()
    page.locator("[role=option]", has_text=saved).first.click()
    page.locator("#rv-play").click()
    page.wait_for_function("() => /complete/.test(document.querySelector('#rv-caption') ?"
                           " document.querySelector('#rv-caption').innerText : '')")
    page.screenshot(path=str(screenshots / "reverse-drawing.png"), full_page=True)
