"""explorer.gradio_import: Gradio imports without rewriting its type stubs, and works as before."""
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

    from explorer.gradio_import import install

    writer = meta.create_or_modify_pyi
    assert install() is False
    assert meta.create_or_modify_pyi is writer
