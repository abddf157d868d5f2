"""The lecture layer: what serves a room rather than a desk, in one place so the tabs stay small.

- `present.css` and `page.js`: the presenter view (a class on <body>, not a second copy of each
  tab), the page-level key map, fullscreen of the main view, and the URL that follows the view.
- `url_state`: a link's settings read and checked; each tab applies them with its own restorer.
- `header()`: the bar with the presenter toggle, the controls drawer, Copy link and the key map.
- `Restorer` and `restore_on_load()`: one load event that applies a link to every tab.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import gradio as gr

from . import url_state

HERE = Path(__file__).parent
CSS = (HERE / "present.css").read_text()
READY = '<span data-ready="1"></span>'


def page_js(present: bool = False, samplers: dict[str, str] | None = None, tabs=url_state.TABS) -> str:
    """The page script for `launch(js=...)`, with the settings it needs from Python."""
    settings = json.dumps({"present": bool(present), "samplers": samplers or {}, "tabs": list(tabs)})
    body = (HERE / "page.js").read_text().strip()
    assert body.startswith("() => {") and body.endswith("}")
    return "() => {\n  window.__DE = " + settings + ";\n  (" + body + ")();\n}"


def header() -> gr.HTML:
    """The lecture bar (buttons handled in the browser by page.js) and the hidden ready marker."""
    with gr.Row(elem_id="de-bar"):
        gr.Button("☰ Controls (C)", elem_id="de-drawer", size="sm", min_width=60, scale=0)
        gr.Button("Copy link", elem_id="de-copy-link", size="sm", min_width=60, scale=0)
        gr.Button("Keys (?)", elem_id="de-keys-button", size="sm", min_width=60, scale=0)
        gr.Button("Presenter view (P)", elem_id="de-present", size="sm", min_width=60, scale=0)
    return gr.HTML("", elem_id="de-ready")


@dataclass
class Restorer:
    """How a tab applies a link: the components it sets and fn(settings, problems) -> their updates.

    fn appends a message to `problems` for each setting it cannot use, and returns gr.skip() for
    every output when the link names nothing of its own.
    """

    outputs: list
    fn: Callable[[dict[str, Any], list[str]], tuple]


def restore_on_load(demo: gr.Blocks, tabs: gr.Tabs, restorers: list[Restorer]) -> None:
    """One load event: read the link, let each tab apply it, open its tab, then mark the page ready."""
    ready = _ready_marker(demo)

    def restore(request: gr.Request):
        params = dict(request.query_params) if request is not None else {}
        values, problems = url_state.read(params)
        out: list = [gr.Tabs(selected=values["tab"]) if "tab" in values else gr.skip()]
        for r in restorers:
            try:
                got = r.fn(values, problems)
            except gr.Error as e:  # a setting only the tab could check: the tab keeps its defaults
                problems.append(str(getattr(e, "message", e)))
                got = (gr.skip(),) * len(r.outputs)
            out.extend(got)
        if problems:
            gr.Warning(url_state.problem_text(problems))
        return (*out, READY)

    outputs = [tabs, *(o for r in restorers for o in r.outputs), ready]
    demo.load(restore, None, outputs, api_visibility="private", show_progress="hidden")


def _ready_marker(demo: gr.Blocks) -> gr.HTML:
    for block in demo.blocks.values():
        if getattr(block, "elem_id", None) == "de-ready":
            return block
    raise LookupError("header() must be placed in the app before restore_on_load()")
