"""Reverse tab: watch a trained model turn noise into data, one sampler step at a time.

Pick a checkpoint, a sampler (DDPM, DDIM, DPM-Solver++ 2M and its SDE form), steps, seed and number of samples;
Play streams the trajectory while it is computed, Pause / Stop / step / scrub move through it,
and the recorded frames export as GIF or MP4. A second sampler can run beside the first from the
same x_T. The handlers are in `reverse_handlers.py`; this module lays out widgets and wires events.
"""
from __future__ import annotations

import functools

import gradio as gr

from core.schedules import MAX_T, SPACINGS

from .. import animation, errors
from ..lecture import Restorer
from ..widgets import DataView, md
from . import reverse_text as text
from .checkpoint_picker import kind_of
from .reverse_handlers import ReverseHandlers
from .reverse_models import listing
from .reverse_session import (
    AUTO_SECONDS,
    DEFAULT_SAMPLES,
    DEFAULT_SPEED,
    MAX_SAMPLES,
    SEED_MAX,
    SPEEDS,
    ReverseSession,
    default_samples,
    default_steps,
    sampler_choices,
)

TITLE = "Reverse"


# --- layout and wiring ------------------------------------------------------------------------

def build(ctx) -> None:
    h = ReverseHandlers(ctx)
    choices = h.choices()
    ckpt0 = h.default_checkpoint()
    kind0, T0, n0 = "image", 1000, DEFAULT_SAMPLES["image"]
    if ckpt0:
        try:  # load (and so cache) the default model now and warm it once the app serves: the first Play is then cheap
            model, _, meta, schedule = h.load(ckpt0)
            kind0, T0 = kind_of(h.entry(ckpt0)), schedule.T
            n0 = default_samples(kind0, meta["sample_shape"])
            ctx.when_serving(functools.partial(h._warm, model, meta, n0))  # once the page answers
        except gr.Error:
            ckpt0 = None  # a broken checkpoint must not keep the app from starting; choosing it says why
    session = gr.State(ReverseSession)
    shown_kind = gr.State(kind0)
    listed = gr.State(listing(choices))  # the checkpoint list this page holds

    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=320, variant="panel", elem_classes=["de-controls"], elem_id="rv-controls"):
            md("### Model")
            # custom values pass gradio's own check so that a checkpoint saved after launch can be
            # named through the API; `entry` still accepts only listed checkpoints
            ckpt = gr.Dropdown(choices, value=ckpt0, label="Checkpoint", elem_id="rv-ckpt", allow_custom_value=True)
            refresh = gr.Button("↻ Refresh the list", elem_id="rv-refresh", size="sm")
            info = md(h.info(ckpt0), label="Checkpoint facts", elem_id="rv-info", elem_classes=["tight-md"])
            md("### Sampler")
            sampler = gr.Dropdown(sampler_choices(), value="ddim", label="Sampler", elem_id="rv-sampler")
            # The sliders' bounds fit the chosen checkpoint on the page (select_checkpoint), but the ranges of
            # steps and samples are checked by the handlers against the checkpoint a call names, not by the
            # session's bounds: a Play clicked while the page's choice of another checkpoint is on its way
            # sends the values the page still shows, which bounds already fitted to the new one would refuse.
            steps = errors.range_in_handler(
                gr.Slider(1, MAX_T, value=default_steps("ddim", T0), step=1, label="Steps", elem_id="rv-steps"),
                "from 1 to the checkpoint's T")
            eta = gr.Slider(0.0, 1.0, value=0.0, step=0.05, label="eta", info="0: deterministic · 1: as noisy as DDPM",
                            elem_id="rv-eta")
            spacing = gr.Radio(list(SPACINGS), value="linear", label="Timestep spacing",
                               info="quadratic: more of the steps at low noise, where the detail is decided "
                                    "(with DPM-Solver++ 2M SDE the 2-D toys' best 50-step setting)", elem_id="rv-spacing")
            # the shipped model's recorded verdict per sampler setting, and the fastest that meets its goal
            measured0, use0 = h.measured(ckpt0) if ckpt0 else ("", gr.update(visible=False))
            measured = md(measured0, elem_id="rv-measured", elem_classes=["tight-md"])
            use_measured = gr.Button(use0.get("value", ""), elem_id="rv-use-measured", size="sm",
                                     visible=use0.get("visible", False))
            with gr.Row():
                seed = gr.Number(0, precision=0, minimum=0, maximum=SEED_MAX, label="Seed", elem_id="rv-seed")
                n = errors.range_in_handler(
                    gr.Slider(1, max(MAX_SAMPLES.values()), value=n0, step=1, label="Samples", elem_id="rv-n"),
                    f"from 1 to the most the checkpoint's data allows ({MAX_SAMPLES['image']} images, "
                    f"{MAX_SAMPLES['points']} points, {MAX_SAMPLES['signal']} signals)")
            compare = gr.Checkbox(False, label="Compare with a second sampler (same x_T)", elem_id="rv-compare")
            with gr.Group(visible=False) as second:
                sampler_b = gr.Dropdown(sampler_choices(), value="ddpm", label="Second sampler", elem_id="rv-sampler-b")
                steps_b = errors.range_in_handler(
                    gr.Slider(1, MAX_T, value=T0, step=1, label="Steps (second)", elem_id="rv-steps-b"),
                    "from 1 to the checkpoint's T (read only with the second sampler on)")
                eta_b = gr.Slider(0.0, 1.0, value=0.0, step=0.05, label="eta (second)", visible=False,
                                  info="0: deterministic · 1: as noisy as DDPM", elem_id="rv-eta-b")
            speed = gr.Radio(SPEEDS, value=DEFAULT_SPEED, elem_id="rv-speed",
                             label=f"Playback speed (steps per second; auto: a run in about {AUTO_SECONDS:g} s)")
            md(text.CONTROLS_HELP, elem_classes=["tight-md"])

        with gr.Column(scale=3):
            with gr.Row():
                play = gr.Button("▶ Play", variant="primary", elem_id="rv-play", min_width=90)
                pause = gr.Button("Pause", elem_id="rv-pause", min_width=90)
                stop = gr.Button("Stop", variant="stop", elem_id="rv-stop", min_width=90)
                back = gr.Button("◀ Step", elem_id="rv-back", min_width=80)
                fwd = gr.Button("Step ▶", elem_id="rv-fwd", min_width=80)
            view = DataView("trajectory", "rv-frame", kind0, None, height=None, show_label=False, steady=True)
            # its range is the run's: a frame past the end shows the last (a scrub may race a new, shorter run)
            scrub = errors.range_in_handler(
                gr.Slider(0, 1, value=0, step=1, label="Frame (drag to scrub the recorded trajectory)",
                          interactive=False, elem_id="rv-scrub"),
                "from 0 (a frame past the run's last shows the last)")
            cap = md("Press **Play** to start.", label="Caption", elem_id="rv-caption", elem_classes=["tight-md"])
            # which live feed the page's player follows while a run plays (explorer/feed.py); never shown
            feed = gr.HTML("", elem_id="rv-feed", container=False, padding=False)
            # the feed a Play click asks for Play's first frame before Play's event arrives (never shown)
            armed = gr.HTML("", elem_id="rv-armed", container=False, padding=False)
            # the page's theme, said by the page's player when a picture's ground does not match it, its
            # request for an armed feed, its word that the frame slider has come to rest, and its request
            # for the interactive figure of a 2-D run that a play left on a picture (never shown)
            with gr.Row(elem_id="rv-theme"):
                themes = {mode: gr.Button(mode, elem_id=f"rv-theme-{mode}") for mode in ("dark", "light")}
                arm = gr.Button("arm", elem_id="rv-arm")
                settle = gr.Button("scrub", elem_id="rv-scrub-settle")
                figure = gr.Button("figure", elem_id="rv-figure")
            with gr.Row(elem_classes=["de-secondary"]):
                fmt = gr.Radio(list(animation.EXPORT_FORMATS), value="gif", label="Export as", elem_id="rv-fmt",
                               scale=1)
                export = gr.Button("Export trajectory", elem_id="rv-export", scale=1)
                file = gr.File(label="Download", elem_id="rv-file", scale=2, interactive=False, visible=False)
            with gr.Accordion("Sample without animation", open=False, elem_classes=["de-secondary"]):
                with gr.Row():
                    sample_btn = gr.Button("Sample to the end", elem_id="rv-sample", scale=0, min_width=180)
                    sample_cancel = gr.Button("Cancel", variant="stop", elem_id="rv-sample-cancel", scale=0,
                                              min_width=100)
                    stats = gr.JSON(label="Statistics of the samples", elem_id="rv-stats")
                final = gr.Image(label="Samples", format="png", interactive=False, elem_id="rv-final")
            explain = md(text.explanation("ddim", kind0), elem_id="rv-explain", elem_classes=["de-secondary"])

    outputs = [*view.outputs, cap, scrub]
    settings = [ckpt, sampler, steps, eta, seed, n, compare, sampler_b, steps_b, eta_b]

    # The page's Play sends frames through the live feed; API clients get them as streamed outputs
    # (an event of a hidden button, so that the API keeps its name and its outputs).
    play.click(h.play_live, [*settings, speed, session, spacing], [*outputs, feed], api_name="reverse_play_live",
               api_visibility="undocumented", concurrency_id="reverse-play", concurrency_limit=2,
               show_progress="hidden")
    gr.Button(visible=False, elem_id="rv-play-api").click(
        h.play, [*settings, speed, session, spacing], outputs, api_name="reverse_play", concurrency_id="reverse-play",
        concurrency_limit=2, show_progress="hidden")
    for mode, button in themes.items():
        button.click(functools.partial(h.set_theme, mode), session, view.image, api_visibility="private",
                     queue=False, show_progress="hidden")
    arm.click(h.arm, session, armed, api_visibility="private", queue=False, show_progress="hidden")
    figure.click(h.figure, session, view.outputs, api_visibility="private", queue=False, show_progress="hidden")
    pause.click(h.pause, session, cap, api_name="reverse_pause", queue=False)
    stop.click(h.stop, session, outputs, api_name="reverse_stop", queue=False)
    back.click(h.back, session, outputs, api_name="reverse_back", show_progress="hidden")
    fwd.click(h.forward, session, outputs, api_name="reverse_forward", show_progress="hidden")
    # A scrub: while the frame slider moves, the page shows each position's picture from the armed feed
    # (explorer/feed.py); when it rests, the page's player presses `settle` and the view of that position
    # comes through Gradio once, not one Gradio message per position (reverse_player.js says why)
    settle.click(h.scrub, [scrub, session], outputs, api_name="reverse_scrub", trigger_mode="always_last",
                 show_progress="hidden")
    export.click(h.export, [fmt, session], file, api_name="reverse_export", concurrency_id="reverse-export").success(
        lambda: gr.update(visible=True), None, file, api_visibility="private", queue=False)
    sampling = sample_btn.click(h.sample, [ckpt, sampler, steps, eta, seed, n, spacing], [final, stats],
                                api_name="reverse_sample", concurrency_id="reverse-sample")
    # the browser cancels through the queue (API clients: job.cancel()); the event has no server function
    sample_cancel.click(None, None, None, cancels=[sampling], api_visibility="private", queue=False)

    ckpt_inputs = [ckpt, sampler, steps, sampler_b, steps_b, n, shown_kind, session]
    ckpt_outputs = [info, steps, steps_b, n, *view.outputs, shown_kind]
    # a checkpoint chosen in the list also opens on its first frame, as a link to it does (one event: the
    # view lands with the facts, before a Play click can follow)
    ckpt.select(h.choose_checkpoint, [*ckpt_inputs, eta, seed, compare, eta_b, spacing], [*ckpt_outputs, cap, scrub],
                api_name="reverse_select_checkpoint").then(
        h.sampler_changed, [ckpt, sampler], [eta, steps], api_visibility="private")
    sampler.input(h.sampler_changed, [ckpt, sampler], [eta, steps], api_visibility="private")
    sampler_b.input(h.sampler_changed, [ckpt, sampler_b], [eta_b, steps_b], api_visibility="private")
    compare.input(lambda on: gr.update(visible=bool(on)), compare, second, api_visibility="private", queue=False)
    # .change: a link or a lesson stop that names another checkpoint sets the value without a select
    ckpt.change(h.measured, ckpt, [measured, use_measured], api_visibility="private", queue=False,
                show_progress="hidden")
    use_measured.click(h.use_measured, [ckpt, compare, sampler_b], [sampler, steps, spacing, eta, explain],
                       api_visibility="private", queue=False, show_progress="hidden")
    gr.on([ckpt.select, sampler.input, sampler_b.input, compare.input], h.explanation,
          [ckpt, sampler, compare, sampler_b], explain, api_visibility="private", show_progress="hidden")

    def do_refresh(trigger):
        trigger(h.refresh, ckpt, ckpt, api_visibility="private", show_progress="hidden").then(
            h.select_checkpoint, ckpt_inputs, ckpt_outputs,
            api_visibility="private", show_progress="hidden")

    do_refresh(refresh.click)
    tab = gr.context.Context.block  # the gr.Tab the app opened for this module
    if isinstance(tab, gr.Tab):
        # shown again: one event, every output a skip unless the list or the checkpoint in view changed
        tab.select(h.tab_shown, [ckpt, listed, *ckpt_inputs[1:]], [ckpt, listed, *ckpt_outputs],
                   api_visibility="private", show_progress="hidden")

    return Restorer([ckpt, sampler, steps, eta, seed, n, info, steps_b, shown_kind, explain,
                     compare, second, sampler_b, eta_b, spacing, *outputs, session], h.restore)
