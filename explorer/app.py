"""The Gradio app: a title, a short introduction, and one tab per module in `explorer.tabs`.

A tab is a module `explorer.tabs.<name>` with a `TITLE` string and a `build(ctx)` function that
creates its components and events inside the `gr.Tab` the app opens for it. Adding a tab is one
line in `TABS`. A name whose module does not exist yet is skipped; a module that exists but
fails to import raises, so a broken tab is never silently missing.
"""
from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from types import ModuleType

import gradio as gr

from . import errors, feed, forward_frames, lecture, static_assets, train_ticks
from .lecture import join
from .context import AppContext, Settings
from .gradio_fixes import hide_progress_targets
from .images import MAX_FILE_BYTES

TABS = ["forward", "reverse", "train", "evaluate"]

INTRO = """\
# Diffusion Explorer
Watch data dissolve into noise (the **forward process**) and a trained network bring it back
(the **reverse process**), on photos, 2-D point clouds and 1-D signals.
"""

THEME = gr.themes.Soft(primary_hue="indigo", secondary_hue="sky", neutral_hue="slate")

CSS = """
/* width 100%: centred by its auto margins, the container would otherwise be as wide as its widest line
   (the tab bars' buttons side by side), and a phone's page scrolled sideways by 75-255 px */
.gradio-container { max-width: 1600px !important; width: 100% !important; margin: 0 auto; }
.tight-md p { margin: 0.2em 0; }
/* a phone: narrower tab buttons, so that the four tabs fit one line (Gradio moves the tabs that do not fit
   behind a "..." menu, where a student would not find them). Gradio scopes the rules in an @media block to
   its .contain element: only what lies inside it can be styled here. */
@media (max-width: 520px) {
  #de-tabs > .tab-wrapper > .tab-container > button { padding-left: 5px !important; padding-right: 5px !important;
    font-size: 13px !important; }  /* the tabs and Gradio's hidden copies it measures them by */
}
.katex-display { overflow-x: auto; overflow-y: hidden; }
#fw-trio { flex-wrap: wrap; }
#fw-trio > #fw-coeffs { flex: 1 1 100% !important; min-width: 100% !important; }
#fw-coeffs .coeffs { display: flex; flex-wrap: wrap; gap: 0.3em 1.4em; align-items: baseline;
  padding: 0.35em 0.8em; font-variant-numeric: tabular-nums; }
#fw-coeffs .eq { font-size: 1.15em; }
#fw-coeffs .tt { opacity: 0.7; }
#rv-feed, #rv-armed, #rv-theme, #fw-hidden, #tr-hidden { display: none !important; }
/* a played frame repaints its own box only, not the page around it (benchmarks/reverse_2d_playback.py:
   the main thread 20-24% busy while DDPM 1000's frames play, against 20-29% without) */
#rv-frame .image-container { contain: layout paint; }
"""

PLAYER_JS = Path(__file__).parent / "tabs" / "reverse_player.js"
FORWARD_JS = Path(__file__).parent / "tabs" / "forward_frames.js"
VIEW_SWAP_JS = Path(__file__).parent / "view_swap.js"  # a data view's picture <-> figure with no blank between
TRAIN_JS = Path(__file__).parent / "tabs" / "train_ticks.js"  # the Train tab's charts follow a run

# Output files pile up in the cache as a slider is dragged: sweep every 10 min, drop those > 30 min old.
DELETE_CACHE = (600, 1800)


def tab_modules(names: list[str] = TABS, package: str = "explorer.tabs") -> list[ModuleType]:
    """Import the tab modules that exist, in order. Import errors propagate."""
    found = []
    for name in names:
        full = f"{package}.{name}"
        if importlib.util.find_spec(full) is None:
            continue
        module = importlib.import_module(full)
        if not callable(getattr(module, "build", None)):
            raise TypeError(f"{full} must define build(ctx)")
        found.append(module)
    return found


def build_app(settings: Settings | None = None, ctx: AppContext | None = None) -> gr.Blocks:
    """The whole app as a gr.Blocks (not launched). Pass `ctx` to share one context with tests."""
    ctx = ctx or AppContext(settings or Settings())
    with gr.Blocks(title="Diffusion Explorer", fill_width=True, delete_cache=DELETE_CACHE,
                   analytics_enabled=False) as demo:
        gr.Markdown(INTRO, elem_id="intro")
        lesson_bar = lecture.header(join.card_html(ctx.settings.host, ctx.settings.port))
        restorers = []
        with gr.Tabs(elem_id="de-tabs") as tabs:
            for module in tab_modules():
                name = module.__name__.rsplit(".", 1)[-1]
                with gr.Tab(getattr(module, "TITLE", name.capitalize()), id=name, elem_id=f"tab-{name}"):
                    restorer = module.build(ctx)  # a tab that can be restored from a link returns a Restorer
                    if isinstance(restorer, lecture.Restorer):
                        restorers.append(restorer)
        lecture.restore_on_load(demo, tabs, restorers, lesson_bar)
    errors.guard(demo)  # every input checked against its control, every user error said in words
    hide_progress_targets(demo)  # cheaper Gradio messages in the page (explorer/gradio_fixes.py)
    demo.ctx = ctx  # lets launchers and tests reach the shared context
    ctx.serve_after_launch(demo)  # the work the first page does not need waits until it is served
    return demo


def launch_options(present: bool = False) -> dict:
    """The keyword arguments for `demo.launch(...)` that every launcher shares (look and safety).

    present: open in the presenter view (a link's ?present=0 or 1 still wins).
    """
    from core.samplers import SAMPLER_LABELS

    from .gradio_fixes import patient_startup_check
    from .tabs import forward_handlers

    patient_startup_check()  # every launcher passes through here: none fails at start-up on a busy machine
    return dict(
        theme=THEME,
        css=CSS + lecture.CSS,
        js=lecture.page_js(present, {label: key for key, label in SAMPLER_LABELS.items()},
                           scripts=(PLAYER_JS, FORWARD_JS, VIEW_SWAP_JS, TRAIN_JS)),
        # the Reverse player's live frames (explorer/feed.py), the Forward slider's pictures (forward_frames.py),
        # whether a training job has changed (train_ticks.py), Gradio's page code compressed once and cached
        # by browsers (static_assets.py)
        app_kwargs={"routes": feed.routes() + forward_frames.routes(forward_handlers.x_t_picture)
                    + train_ticks.routes() + static_assets.routes()},
        max_file_size=MAX_FILE_BYTES,
        enable_monitoring=False,
        # Gradio 6 records every call in the browser's localStorage; with a slider firing many calls
        # a second the growing record slowed each update (1-2 s after a few dozen moves on 2 cores).
        run_history=False,
        footer_links=["api", "settings"],
    )
