"""Lesson bundles in a real browser: export the Reverse view as a zip, open it in a fresh page, same view."""
import json
import shutil
import zipfile
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("one_torch_thread")]

# the last frame: opening the link computes the whole run, which the app then keeps as a recording
VIEW = "?tab=reverse&checkpoint=tiny-digits&sampler=ddim&steps=10&seed=2&frame=10"


def open_page(browser, url: str):
    page = browser.new_page()
    page.set_viewport_size({"width": 1366, "height": 768})
    page.goto(url)
    page.wait_for_selector("#de-ready [data-ready]", state="attached")  # the link's settings are applied
    return page


def caption(page) -> str:
    return page.locator("#rv-caption").inner_text()


def test_an_exported_bundle_opens_as_the_same_view_in_a_fresh_page(browser, app_url, app_settings,
                                                                    trained_checkpoints, tmp_path):
    page = open_page(browser, app_url + VIEW)
    try:
        page.wait_for_function("() => /Frame 10 of 10 .*· complete\\./.test("
                               "document.querySelector('#rv-caption').innerText)")
        page.wait_for_function("() => new URLSearchParams(location.search).get('frame') === '10'")
        lane = caption(page).splitlines()[0]  # e.g. "DDIM (eta = 0): done: the sample x0, ᾱ_t = 1"
        page.locator("#de-bundle-export").click()
        download = page.locator("#de-bundle-download")
        download.wait_for(state="visible")
        with page.expect_download() as got:
            download.click()
        bundle = tmp_path / "view.zip"
        got.value.save_as(bundle)
    finally:
        page.close()

    with zipfile.ZipFile(bundle) as z:
        names = sorted(z.namelist())
        doc = json.loads(z.read("bundle.json"))
    assert names == sorted(["bundle.json", "checkpoint/config.json", "checkpoint/model.safetensors",
                            "checkpoint/trajectory.npz", *(f"frames/{k:04d}.png" for k in range(11))])
    assert doc["settings"] == {"tab": "reverse", "checkpoint": "tiny-digits", "sampler": "ddim", "steps": "10",
                               "eta": "0", "seed": "2", "n": "16", "frame": "10"}

    fresh = open_page(browser, app_url)  # the Forward tab, nothing of the Reverse view
    imported = None
    try:
        assert fresh.locator("#tab-forward-button").get_attribute("aria-selected") == "true"
        with fresh.expect_file_chooser() as chooser:
            fresh.locator("#de-bundle-open").click()
        chooser.value.set_files(str(bundle))
        fresh.wait_for_function("() => document.querySelector('#tab-reverse-button')"
                                ".getAttribute('aria-selected') === 'true'")
        fresh.wait_for_function("() => document.querySelector('#rv-caption').innerText.includes('Frame 10 of 10')")
        text = caption(fresh)
        assert text.splitlines()[0] == lane and "replayed without computing" in text  # the bundle's recorded run
        checkpoint = fresh.locator("#rv-ckpt input").input_value()
        assert checkpoint.startswith("tiny-digits-bundle-"), checkpoint
        imported = Path(app_settings.runs_dir) / checkpoint.split(" · ")[0]
        assert len(list(imported.glob("trajectory-*.npz"))) == 1  # named by its setting (recordings.file_name)
        for sel, value in (("#rv-steps input[type=number]", "10"), ("#rv-seed input", "2"),
                           ("#rv-scrub input[type=number]", "10")):
            assert fresh.locator(sel).input_value() == value, sel
        fresh.wait_for_function("n => new URLSearchParams(location.search).get('checkpoint') === n",
                                arg=imported.name)  # a link to the opened view names the imported checkpoint
        fresh.wait_for_selector("#rv-frame img")
    finally:
        fresh.close()
        if imported is not None:
            shutil.rmtree(imported, ignore_errors=True)  # the session's other tests list the runs folder
