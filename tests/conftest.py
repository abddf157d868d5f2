"""Fixtures shared by the UI tests: one running app per test session, a client, a browser.

`import gradio` and building the app take seconds, so the app starts once (lazily, only when a
test asks for it) and serves every UI test. Browser tests use Debian's chromium through
Playwright; they are skipped, with the reason, only where /usr/bin/chromium is missing.
"""
from __future__ import annotations

import atexit
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# The measured times the app remembers (explorer.costs) go to a book of this test run, not the user's
# cache: every run starts as on a fresh machine, and the tests leave nothing in the home folder.
_SPEEDS = tempfile.mkdtemp(prefix="diffusion-explorer-test-speeds-")
atexit.register(shutil.rmtree, _SPEEDS, True)
os.environ.setdefault("DIFFUSION_EXPLORER_SPEEDS", os.path.join(_SPEEDS, "speeds.json"))
if str(ROOT) not in sys.path:  # launch.py lives at the top level, outside the packages
    sys.path.insert(0, str(ROOT))

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1366, "height": 768}  # a common laptop screen: the layout must work here
SCREENSHOTS = Path(__file__).parent / "screenshots"
# Browser tests wait on the page's state (a caption that says "complete", a chart with two traces),
# never on a time budget: on a 2-core machine shared with other work the same wait took 16 s or
# 107 s. This ceiling is only a hang detector, far above anything load has produced.
STATE_WAIT_MS = int(os.environ.get("DE_STATE_WAIT_MS", 600_000))  # lower it to debug a hang


# Elements are drawn some time after the event that adds them (a tab's content when it is first opened,
# a box once a reply lands), later on a busy machine. A waited-for predicate that reads one of them
# before it exists (`document.querySelector('#x').innerText` on null) would fail the wait at once with
# a TypeError; the browser tests' waits treat that as "not yet" and go on waiting. Any other error
# still fails the wait.
WAIT_UNTIL_DRAWN = ("(arg) => {{ try {{ return ({})(arg); }} catch (e) {{ if (e instanceof TypeError) return false; throw e; }} }}")


def _until_drawn(wait_for_function):
    def wait(self, expression, *args, **kwargs):
        return wait_for_function(self, WAIT_UNTIL_DRAWN.format(expression), *args, **kwargs)
    wait.__doc__ = wait_for_function.__doc__
    return wait


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def app_settings(tmp_path_factory):
    """Settings with an empty user checkpoint folder and the shipped assets."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from explorer.context import Settings

    return Settings(runs_dir=tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="session")
def app(app_settings):
    """The built (not launched) gr.Blocks; `app.ctx` is its AppContext."""
    from explorer.app import build_app

    return build_app(app_settings)


@pytest.fixture(scope="session")
def app_url(app):
    """URL of the app served in this process on a free local port; closed after the session."""
    from explorer.app import launch_options

    app.queue().launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True,
                       **launch_options())
    yield app.local_url
    app.close()


@pytest.fixture(scope="session")
def client(app_url):
    """A gradio_client.Client on the running app (for function; it is no latency meter)."""
    from gradio_client import Client

    return Client(app_url, verbose=False)


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    """Headless chromium via Playwright, with a fresh profile."""
    if not CHROMIUM.exists():
        pytest.skip(f"browser tests need chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import Page, sync_playwright

    if not getattr(Page.wait_for_function, "until_drawn", False):
        Page.wait_for_function = _until_drawn(Page.wait_for_function)
        Page.wait_for_function.until_drawn = True
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True, viewport=VIEWPORT)
        context.set_default_timeout(STATE_WAIT_MS)  # every page, including the second tabs some tests open
        yield context
        context.close()


@pytest.fixture
def page(browser, app_url):
    """A fresh tab on the app, fully loaded and its link restored; closed after the test."""
    tab = browser.new_page()
    tab.goto(app_url)
    tab.wait_for_selector("#ximg img")
    # The page's load event then restores the link's view and sets this marker; until it has, its reply
    # (the opening picture, the tab's settings) can still land over what a test has started to do.
    tab.wait_for_selector("#de-ready [data-ready]", state="attached")
    yield tab
    tab.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """Folder for screenshots tests take (ignored by git)."""
    SCREENSHOTS.mkdir(exist_ok=True)
    return SCREENSHOTS


@pytest.fixture(scope="session")
def trained_checkpoints(app_settings):
    """Tiny trained checkpoints (digits images, 2-D points, signals) in the app's user runs folder.

    {name: path}; see tests/reverse_checkpoints.py. Tiny nets train fastest on one thread.
    """
    import torch
    from reverse_checkpoints import make_checkpoints

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return make_checkpoints(app_settings.runs_dir)
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a test module, as launch.py runs the app on a 2-core machine.

    Tests use tiny models: a second intra-op thread gains nothing there, and on a busy CPU it fights
    the other processes for the cores and makes each small step many times slower.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def ckpt(trained_checkpoints):
    """The tiny trained checkpoints as {name: path string}, as dropdown values carry them."""
    return {name: str(path) for name, path in trained_checkpoints.items()}
