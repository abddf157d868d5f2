"""explorer.gradio_fixes: Gradio imports without rewriting its type stubs, and its start-up check waits out a busy machine."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import json
import explorer
import gradio, gradio.component_meta as meta
print(json.dumps({"writer": meta.create_or_modify_pyi.__name__,
                  "textbox": gradio.Textbox(value="x", label="a").value}))
"""


def probe(env: dict) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", **env})
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_importing_explorer_first_replaces_the_stub_writer_and_components_still_work():
    got = probe({"DIFFUSION_EXPLORER_GRADIO_STUBS": "0"})
    assert got == {"writer": "_no_stub", "textbox": "x"}


def test_the_stub_writer_can_be_kept():
    got = probe({"DIFFUSION_EXPLORER_GRADIO_STUBS": "1"})
    assert got == {"writer": "create_or_modify_pyi", "textbox": "x"}


def test_install_after_gradio_is_imported_changes_nothing():
    import gradio.component_meta as meta

    from explorer.gradio_fixes import install

    writer = meta.create_or_modify_pyi
    assert install() is False
    assert meta.create_or_modify_pyi is writer


class SlowFirstAnswer:
    """A local HTTP server whose first answer takes longer than Gradio's own 3 s check waits."""

    def __init__(self, delay_s: float):
        import http.server
        import threading

        calls = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_HEAD(self):
                calls.append(1)
                if len(calls) == 1:
                    import time
                    time.sleep(delay_s)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_the_startup_check_waits_out_a_slow_first_answer():
    import gradio.networking as networking

    from explorer import gradio_fixes

    slow = SlowFirstAnswer(4.0)
    try:
        assert gradio_fixes._patient_url_ok(slow.url) is True
    finally:
        slow.close()
    gradio_fixes.patient_startup_check()
    assert networking.url_ok is gradio_fixes._patient_url_ok


def test_the_startup_check_still_fails_when_nothing_answers(monkeypatch):
    import socket

    from explorer import gradio_fixes

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(gradio_fixes, "PATIENCE_S", 1.0)
    assert gradio_fixes._patient_url_ok(f"http://127.0.0.1:{port}/") is False


def test_events_with_hidden_progress_name_no_progress_targets_and_the_others_keep_theirs():
    import gradio as gr

    from explorer.gradio_fixes import hide_progress_targets

    with gr.Blocks() as demo:
        a, b, c = gr.Number(), gr.Number(), gr.Number()
        a.change(lambda x: x, a, b, show_progress="hidden")
        a.change(lambda x: x, a, c)  # shows progress on its output
        b.change(lambda x: x, b, c, show_progress="hidden", show_progress_on=[c])  # names its own
    assert hide_progress_targets(demo) == 1
    deps = demo.get_config_file()["dependencies"]
    assert [d["show_progress_on"] for d in deps] == [[], None, [c._id]]
    assert hide_progress_targets(demo) == 0  # once is enough


def test_the_app_keeps_its_hidden_progress_events_off_the_pages_loading_status_list(app):
    deps = app.get_config_file()["dependencies"]
    hidden = [d for d in deps if d["show_progress"] == "hidden"]
    assert len(hidden) > 30  # the slider, player and restore events of every tab
    # an empty list, not None: None makes every output a progress target that the page refreshes at
    # every message of every event from then on
    assert all(d["show_progress_on"] == [] for d in hidden), [d["api_name"] for d in hidden if d["show_progress_on"] != []]
    shown = [d for d in deps if d["show_progress"] != "hidden"]
    assert shown and all(d["show_progress_on"] != [] for d in shown)
