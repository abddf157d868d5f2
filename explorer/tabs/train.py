"""Train tab: start a run in the background, watch its loss, learning rate, per-timestep loss and
sample previews live, pause / resume / stop it, and save checkpoints that other tabs can load.

The run is the app's one `jobs.TrainingJob` (a child process). While this tab is in view, the page
asks the server once a second whether the job has changed (a plain route, `explorer/train_ticks.py`,
no Gradio event) and only then presses a hidden button whose event redraws what changed since that
page last looked (`gr.skip()` for the rest), so an idle page costs almost nothing. What a run is
(datasets, presets, defaults, the time estimate, the config its settings make) is in
`train_settings.py`; the handlers, plain functions that tests and gradio_client call, are in
`train_handlers.py`; `build(ctx)` here lays out widgets and wires events.
"""
from __future__ import annotations

import gradio as gr

from core.config import PREDICTIONS
from core.schedules import SCHEDULES

from .. import drawing, errors
from ..inputs import builtin_datasets
from ..jobs import manager_for
from ..widgets import DataView, md
from .train_handlers import (POINTS_HINT, checkpoints_md, from_csv_file, from_csv_text, from_drawing, make_handlers,
                             make_poll, on_dataset, status_html, upload_images)
from .train_settings import (COMPILE_CHOICES, DEFAULTS, DRAW, LIMITS, PRECISIONS, UPLOAD_SIZES, dataset_choices,
                             default_precision, default_preset, estimate_text, kind_of, precision_info,
                             precision_options, presets_for)

TITLE = "Train"

HELP = """\
**How to read the charts.** The loss is the mean squared error of the network's prediction
(of the noise ε, of x₀ or of v) at a random timestep per sample, so it is noisy: watch the
smoothed curve. The map below shows the loss per band of timesteps: at small t the input is
nearly clean and predicting the noise is hard (high loss); at large t the input is almost pure
noise and predicting it is easy. Samples are drawn every few steps with 20 DDIM steps from the
EMA weights; click the loss curve, or drag the slider, to see them at any earlier step.
"""


# gr.Plot has no click event: after each redraw of the loss chart, hook plotly's own click so that a
# click on the curve moves the preview slider there (whose `input` event then shows that preview).
# The one handler is taken off and put back on every redraw: a redraw can drop plotly's listeners
# while leaving the element (and any flag on it), and then clicks did nothing.
LOSS_CLICK_JS = """() => { setTimeout(() => {
  const gd = document.querySelector('#tr-loss .js-plotly-plot');
  if (!gd || !gd.on) return;
  window.__deLossClick = window.__deLossClick || ((ev) => {
    const range = document.querySelector('#tr-preview-step input[type=range]');
    if (!range || !ev.points.length) return;
    const setter = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set;
    setter.call(range, String(Math.round(ev.points[0].x)));
    range.dispatchEvent(new Event('input', {bubbles: true}));
  });
  if (gd.removeListener) gd.removeListener('plotly_click', window.__deLossClick);
  gd.on('plotly_click', window.__deLossClick);
  gd.__previewHook = true;
}, 250); return []; }"""

PICK_BRUSH_JS = """(dataset) => { if (dataset !== %r) return [];
  let tries = 0;
  const pick = () => {
    const brush = document.querySelector('#tr-draw button[aria-label="Brush"]');
    if (brush && brush.offsetParent !== null) { brush.click(); return; }
    if (++tries < 50) setTimeout(pick, 100);
  };
  pick(); return [];
}""" % DRAW


# --- layout and wiring ----------------------------------------------------------------------

def build(ctx) -> None:
    job = manager_for(ctx)
    start, pause, resume, stop, save, status = make_handlers(ctx)
    poll, scrub, set_follow = make_poll(ctx)
    device = str(ctx.device)
    ds0 = "swiss_roll" if "swiss_roll" in builtin_datasets() else builtin_datasets()[0]
    kind0 = kind_of(ds0)
    d0 = DEFAULTS[kind0]
    preset0 = default_preset(ds0)
    precision0 = default_precision(device)
    snap0 = job.snapshot()

    # The canvas gets the tab's whole width (the settings column is too narrow to draw in); it shows only
    # while "your 2-D points" is the dataset.
    with gr.Group(visible=False, elem_id="tr-draw-group") as draw_group:
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=300):
                sketch = gr.Sketchpad(label="Draw your points", elem_id="tr-draw", type="numpy", image_mode="L",
                                      canvas_size=drawing.CANVAS, fixed_canvas=True, layers=False, transforms=(),
                                      # Gradio's brush size is about half the stroke's width (size 14 drew 27 px)
                                      brush=gr.Brush(default_size=drawing.BRUSH // 2, colors=["#111111"],
                                                     color_mode="fixed"),
                                      eraser=gr.Eraser(default_size=drawing.BRUSH), height=drawing.CANVAS[1] + 80)
            with gr.Column(scale=2, min_width=240):
                csv_file = gr.File(file_count="single", file_types=[".csv", ".txt"], label="…or a CSV of x,y",
                                   elem_id="tr-points-file", height=110)
                csv_text = gr.Textbox(label="…or paste x,y rows", lines=5, max_lines=12, elem_id="tr-points-text",
                                      placeholder="x,y\n0.1,2.3\n0.4,2.1\n…")
                csv_button = gr.Button("Use the pasted points", elem_id="tr-points-use", size="sm")
                points_note = md(POINTS_HINT, elem_id="tr-points-note")
            with gr.Column(scale=3, min_width=300):
                points_plot = gr.Plot(show_label=False, elem_id="tr-points-preview")

    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=280, variant="panel", elem_classes=["de-controls"]):
            md("### Data and model")
            dataset = gr.Dropdown(dataset_choices(), value=ds0, label="Dataset", elem_id="tr-dataset")
            with gr.Group(visible=False) as upload_group:
                files = gr.File(file_count="multiple", file_types=[".zip", ".png", ".jpg", ".jpeg"],
                                label="Images or a .zip of them", elem_id="tr-files", height=120)
                with gr.Row():
                    image_size = gr.Dropdown(list(UPLOAD_SIZES), value=32, label="Train at size", elem_id="tr-size")
                    channels = gr.Radio([("colour", 3), ("grey", 1)], value=3, label="Channels", elem_id="tr-channels")
                upload_note = md("", elem_id="tr-upload-note")
            # custom values pass gradio's own check, so an API call may name a preset of another kind of
            # data than the one shown first; make_config accepts only presets that fit the dataset
            preset = gr.Dropdown(presets_for(kind0), value=preset0, label="Model preset", elem_id="tr-preset",
                                 allow_custom_value=True)
            with gr.Row():
                schedule = gr.Dropdown(list(SCHEDULES), value=d0["schedule"], label="Schedule", elem_id="tr-schedule")
                prediction = gr.Dropdown(list(PREDICTIONS), value="eps", label="Predict", elem_id="tr-prediction")
            T = gr.Slider(*LIMITS["T"], value=1000, step=10, label="Diffusion steps T", elem_id="tr-T")
            md("### Optimisation")
            with gr.Row():
                lr = gr.Number(d0["lr"], label="Learning rate", minimum=1e-6, maximum=1, elem_id="tr-lr")
                batch = gr.Number(d0["batch"], precision=0, label="Batch size", minimum=1, maximum=4096, elem_id="tr-batch")
            with gr.Row():
                steps = gr.Number(d0["steps"], precision=0, label="Steps", minimum=1, elem_id="tr-steps")
                seed = gr.Number(0, precision=0, label="Seed", minimum=0, elem_id="tr-seed")
            with gr.Row():
                preview_every = gr.Number(d0["preview_every"], precision=0, label="Preview every (steps)", minimum=0,
                                          elem_id="tr-preview-every")
                checkpoint_every = gr.Number(0, precision=0, label="Checkpoint every (0 = at the end)", minimum=0,
                                             elem_id="tr-ckpt-every")
            with gr.Row():
                compile_mode = gr.Dropdown(list(COMPILE_CHOICES), value="off", label="torch.compile",
                                           elem_id="tr-compile")
                precision = gr.Dropdown(list(PRECISIONS), value=precision0, label="Precision", elem_id="tr-precision",
                                        info=precision_info(device))
            amp0, cpu_bf16_0 = precision_options(precision0, device)
            estimate = md(estimate_text(ds0, preset0, d0["batch"], d0["steps"], d0["preview_every"], device,
                                        job.device_key(cpu_bf16_0, amp0), job.book, precision=precision0),
                          elem_id="tr-estimate")

        with gr.Column(scale=3):
            # the run's buttons above its charts: at 768 px tall they were 1,500 px down the settings column
            with gr.Row(elem_id="tr-buttons"):
                start_btn = gr.Button("Start", variant="primary", elem_id="tr-start", min_width=80)
                pause_btn = gr.Button("Pause", elem_id="tr-pause", min_width=80, interactive=False)
                resume_btn = gr.Button("Resume", elem_id="tr-resume", min_width=80, interactive=False)
                stop_btn = gr.Button("Stop", variant="stop", elem_id="tr-stop", min_width=80, interactive=False)
                save_btn = gr.Button("Save checkpoint", elem_id="tr-save", min_width=120, interactive=False)
            message = md("", elem_id="tr-message")
            status_box = gr.HTML(status_html(snap0), elem_id="tr-status")
            # min_width: on a phone the charts of a pair go one under the other (two side by side were 190 px
            # each at 430 px, their titles cut)
            with gr.Row(equal_height=True):
                loss_plot = gr.Plot(show_label=False, elem_id="tr-loss", scale=3, min_width=220)
                lr_plot = gr.Plot(show_label=False, elem_id="tr-lr-chart", scale=2, min_width=220)
            with gr.Row(equal_height=True, elem_classes=["de-secondary"]):
                per_t_plot = gr.Plot(show_label=False, elem_id="tr-per-t", scale=3, min_width=220)
                per_t_now = gr.Plot(show_label=False, elem_id="tr-per-t-now", scale=2, min_width=220)
            with gr.Row(equal_height=False):
                with gr.Column(scale=3):
                    preview = DataView("Samples", "tr-preview", kind0, height=384)
                with gr.Column(scale=2, min_width=240):
                    # its range is the run's (each tick fits it): a position sent as a new, shorter run starts
                    # shows that run's nearest preview rather than being refused
                    preview_step = errors.range_in_handler(
                        gr.Slider(0, max(d0["steps"], 1), value=0, step=1, label="Previews", elem_id="tr-preview-step"),
                        "from 0 (the preview at or before that step is shown)")
                    follow = gr.Checkbox(True, label="Follow the newest preview", elem_id="tr-follow")
                    ckpts = md(checkpoints_md(snap0), elem_id="tr-checkpoints")
                    md(HELP)

    seen = gr.State({})
    # The page's script (train_ticks.js) presses this when the job has changed and the tab is in view: a
    # hidden tab's charts are not sent, and an idle one costs no Gradio event a second
    with gr.Row(elem_id="tr-hidden"):
        tick = gr.Button("tick", elem_id="tr-tick")
    view = [status_box, loss_plot, lr_plot, per_t_plot, per_t_now, preview_step, *preview.outputs, ckpts]
    buttons = [start_btn, pause_btn, resume_btn, stop_btn, save_btn]
    upload_folder = gr.State(None)
    points = gr.State(None)  # {"path": the points' CSV file, "source"} or {"error": why not}
    quiet = dict(show_progress="hidden", api_visibility="private")

    tick.click(poll, seen, [*view, *buttons, seen], queue=False, **quiet)
    follow.input(set_follow, [follow, preview_step], None, queue=False, **quiet)
    preview_step.input(scrub, preview_step, [follow, preview_step, loss_plot, *preview.outputs],
                       trigger_mode="always_last", **quiet)
    loss_plot.change(None, None, None, js=LOSS_CLICK_JS, **quiet)

    controls = [dataset, upload_folder, preset, schedule, T, prediction, lr, batch, steps, preview_every,
                checkpoint_every, seed, image_size, channels, points, compile_mode, precision]
    # A command answers with a message, then the next tick (within a second) shows its effect; Start draws
    # the run's first view at once, without waiting for a tick.
    start_btn.click(start, controls, message, api_name="train_start").success(
        poll, seen, [*view, *buttons, seen], queue=False, **quiet)
    pause_btn.click(pause, None, message, api_name="train_pause")
    resume_btn.click(resume, None, message, api_name="train_resume")
    stop_btn.click(stop, None, message, api_name="train_stop")
    save_btn.click(save, None, message, api_name="train_save")
    gr.api(status, api_name="train_status")

    dataset.input(on_dataset, dataset, [preset, schedule, batch, steps, lr, preview_every, upload_group, draw_group],
                  **quiet)
    files.upload(upload_images, files, [upload_folder, upload_note], api_name="train_upload")
    # the canvas opens with no tool chosen ("select the draw tool to start"): choose the brush for the user
    dataset.input(None, dataset, None, js=PICK_BRUSH_JS, **quiet)
    points_out = [points, points_plot, points_note]
    sketch.change(from_drawing, sketch, points_out, trigger_mode="always_last", api_name="train_drawing",
                  show_progress="hidden")
    csv_file.upload(from_csv_file, csv_file, points_out, api_name="train_points_file")
    csv_button.click(from_csv_text, csv_text, points_out, api_name="train_points_text")
    def estimate_for(dataset, preset, batch, steps, preview_every, compile_mode, precision):
        try:
            amp, cpu_bf16 = precision_options(precision, device)
        except ValueError as e:
            return str(e)
        return estimate_text(dataset, preset, batch, steps, preview_every, device=device,
                             device_key=job.device_key(cpu_bf16, amp), book=job.book, compile_mode=compile_mode,
                             precision=precision)

    est_inputs = [dataset, preset, batch, steps, preview_every, compile_mode, precision]
    gr.on([dataset.change, preset.change, batch.change, steps.change, preview_every.change, compile_mode.change,
           precision.change], estimate_for, est_inputs, estimate, queue=False, **quiet)
