"""The Train tab's handlers: start, pause, resume, stop and save the app's one training run, poll its
snapshot for the page (only what changed goes out), and take the user's own images, drawing or CSV."""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from pathlib import Path

import gradio as gr
import numpy as np

from core.datafiles import MAX_POINTS, MIN_POINTS

from .. import charts, drawing, render
from ..jobs import ACTIVE, JobBusy, JobError, format_seconds, manager_for, run_name
from ..uploads import keep_for_run as keep_upload
from ..uploads import prepare_images
from ..widgets import DataView, user_errors
from .train_settings import (DRAW, FIRST_STEP_WAIT_S, UPLOAD, default_precision, default_preset, defaults_for, kind_of,
                             make_config, precision_options, presets_for, whole_number)

# --- handlers (one per API endpoint) --------------------------------------------------------

def make_handlers(ctx):
    """The tab's handlers bound to the app's job manager."""

    @user_errors
    def start(dataset, upload_folder, preset, schedule, T, prediction, lr, batch, steps, preview_every,
              checkpoint_every, seed, image_size=32, channels=3, points=None, compile_mode="off",
              precision=None) -> str:
        """Start a training run with these settings. Returns a status line.

        points: for the drawing dataset, the points state ({"path": CSV file} or {"error": why}).
        compile_mode: "off", or torch.compile's mode ("default", "reduce-overhead").
        precision: "fp32" or "bf16 autocast" (None: the device's default, see `default_precision`).
        """
        job = manager_for(ctx)
        device = job.device  # where the run trains
        amp, cpu_bf16 = precision_options(default_precision(device) if precision is None else precision, device)
        points_path = None
        if dataset == DRAW:
            points = points if isinstance(points, dict) else {}
            if points.get("error"):
                raise ValueError(points["error"])
            # into the runs folder first: the config names the file the checkpoint will reload
            points_path = str(drawing.keep_for_run(points.get("path"), ctx.settings.runs_dir))
        config = make_config(dataset, upload_folder, preset, schedule, T, prediction, lr, batch, steps,
                             preview_every, seed, image_size, channels, points_path, compile_mode,
                             amp=amp if device.startswith("cuda") else True)  # amp is CUDA's switch alone
        if dataset == UPLOAD:  # into <runs>/data/<sha256>/: the checkpoint must outlive the upload
            config = config.replace(data=keep_upload(config.data, ctx.settings.runs_dir))
        try:
            every = whole_number("checkpoint_every", checkpoint_every or 0)
            run_dir = job.start(config, name=run_name(config, preset), checkpoint_every=every, cpu_bf16=cpu_bf16)
        except JobBusy as e:
            raise ValueError(str(e)) from None
        # the reply waits for the first step (a spare process takes it in a fraction of a second), so the view
        # drawn right after it already has a status with a step and a point on the loss chart
        job.wait_for_first_step(FIRST_STEP_WAIT_S)
        return f"Started **{run_dir.name}**: {config.train.steps:,} steps of {config.model.net} on {dataset}."

    def _command(what: str):
        @user_errors
        def run() -> str:
            job = manager_for(ctx)
            try:
                if what == "pause":
                    job.pause()
                    return "Pausing after the current step…"
                if what == "resume":
                    job.resume()
                    return "Resumed."
                if what == "stop":
                    job.stop()
                    return ("Stopped. The weights so far are kept: a run stopped after its first step saves them as a "
                            "checkpoint, which the Reverse and Evaluate tabs can open.")
                path = job.save()
                return f"Saved **{Path(path).parent.name}/{Path(path).name}**: open it in the Reverse or Evaluate tab."
            except JobError as e:
                raise ValueError(str(e)) from None
        run.__name__ = f"train_{what}"
        return run

    def status() -> dict:
        """The run's numbers without arrays: status, step, steps_total, loss, steps_per_s, eta, checkpoints, error."""
        snap = manager_for(ctx).snapshot()
        loss = snap["smoothed"][1]
        return {k: snap[k] for k in ("status", "message", "error", "step", "steps_total", "steps_per_s",
                                     "samples_per_s", "eta", "device", "run_dir", "checkpoints")} | {
            "loss": loss[-1] if loss else None, "previews": sorted(snap["previews"])}

    return start, _command("pause"), _command("resume"), _command("stop"), _command("save"), status


def status_html(snap: dict) -> str:
    """A progress bar with the run's numbers."""
    st = snap["status"]
    if st == "idle":
        return '<div class="train-status">No run yet: choose its settings and press <b>Start</b>.</div>'
    pct = 100 * snap["progress"]
    loss = snap["smoothed"][1]
    bits = [f"<b>{st}</b>", f"step {snap['step']:,} / {snap['steps_total']:,}"]
    if st == "running" and not snap["step"] and ((snap.get("config") or {}).get("train") or {}).get("compile"):
        bits.append("compiling the net first (torch.compile)")  # a minute or more before the first step
    if loss:
        bits.append(f"loss {loss[-1]:.4g}")
    if snap["steps_per_s"]:
        bits.append(f"{snap['steps_per_s']:.1f} steps/s · {snap['samples_per_s']:,.0f} samples/s")
    if st == "running" and snap["eta"] is not None:
        bits.append(f"about {format_seconds(snap['eta'])} left")
    if snap["elapsed"]:
        bits.append(f"trained {format_seconds(snap['elapsed'])}")
    threads = f", {snap['threads']} thread{'s' if snap['threads'] != 1 else ''}" if snap.get("threads") else ""
    if (snap.get("shards") or 1) > 1:
        threads += f", each batch in {snap['shards']} shards"
    train = (snap.get("config") or {}).get("train") or {}
    if snap.get("cpu_bf16") or (str(snap.get("device", "")).startswith("cuda") and train.get("amp")):
        threads += ", bf16 autocast"
    bits.append(f"on {snap['device']}{threads}")
    colour = {"failed": "#dc2626", "finished": "#16a34a", "stopped": "#6b7280", "paused": "#d97706"}.get(st, "#4f46e5")
    html = (f'<div class="train-status"><div style="background:#e5e7eb;border-radius:6px;height:10px;overflow:hidden">'
            f'<div style="width:{pct:.1f}%;background:{colour};height:10px"></div></div>'
            f'<div style="margin-top:6px">{" · ".join(bits)}</div>')
    if snap["error"]:
        html += f'<div style="color:#dc2626;margin-top:6px"><b>Error:</b> {_escape(snap["error"])}</div>'
    elif snap["message"]:
        # the theme's muted text colour: a fixed dark grey could not be read on the dark theme
        html += (f'<div style="color:var(--body-text-color-subdued, #4b5563);margin-top:4px">'
                 f'{_escape(snap["message"])}</div>')
    return html + "</div>"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def checkpoints_md(snap: dict) -> str:
    cks = snap["checkpoints"]
    if not cks:
        return "No checkpoint saved yet in this run."
    run = Path(snap["run_dir"]).name if snap["run_dir"] else ""
    items = ", ".join(f"`{Path(p).name}`" for _, p in cks[-6:])
    return f"Checkpoints of **{run}**: {items}" + (f" (+{len(cks) - 6} earlier)" if len(cks) > 6 else "")


def nearest_preview(steps: list[int], wanted) -> int | None:
    """The latest preview step at or before `wanted` (the first one if all are later)."""
    if not steps:
        return None
    if wanted is None:
        return steps[-1]
    before = [s for s in steps if s <= int(wanted)]
    return before[-1] if before else steps[0]


def preview_value(snap: dict, step: int | None):
    """(kind, value, label) for the preview taken at `step`: a grid image, a scatter or signal lines."""
    kind = snap["kind"] or "points"
    if step is None or step not in snap["previews"]:
        # a chart says what will come; a picture box cannot (it shows its empty icon)
        waiting = None if kind == "image" else charts.empty(
            "Samples", "the model's samples appear here at each preview step as it trains", 340)
        return kind, waiting, "samples appear at the first preview step"
    x = np.asarray(snap["previews"][step], dtype=np.float32)
    if kind == "image":
        return kind, render.grid(x[:64], min_size=384), f"samples at step {step:,} (EMA weights, 20 DDIM steps)"
    # a figure's title is the label: short enough for the presenter view's narrow column (the help says
    # how previews are drawn)
    if kind == "points":
        ref = snap["reference"]
        label = f"samples at step {step:,} (blue) over data (grey)"
        return kind, render.scatter(x, reference=None if ref is None else np.asarray(ref, np.float32),
                                    title=label, height=340), label
    label = f"samples at step {step:,} (generated signals)"
    return kind, render.signals(x, title=label, max_lines=6), label


def preview_slider(snap: dict, steps: list[int], shown: int | None, set_value: bool = True):
    """The preview slider: spans the run in steps of the preview interval; its value is only set when
    following the newest preview or answering the user, never under a user who is choosing one."""
    every = ((snap.get("config") or {}).get("train") or {}).get("preview_every") or 1
    extra = {"value": shown if shown is not None else 0} if set_value else {}
    return gr.update(maximum=max(int(snap["steps_total"] or 1), 1), step=every,
                     label=f"Previews: {len(steps)} kept; showing step {shown:,}" if shown else "Previews", **extra)


def view_outputs(snap: dict, wanted, follow: bool):
    """Everything a snapshot drives except controls: status, 4 charts, preview slider, preview (2), checkpoints."""
    steps = sorted(snap["previews"])
    shown = nearest_preview(steps, None if follow else wanted)
    kind, value, label = preview_value(snap, shown)
    slider = preview_slider(snap, steps, shown, set_value=follow)
    per_steps, per_rows = snap["per_t"]
    return (status_html(snap),
            charts.loss_chart(snap["loss"], snap["smoothed"], marked=shown),
            charts.lr_chart(snap["lr"]),
            charts.per_t_map(per_steps, per_rows, snap["t_bin_edges"]),
            charts.per_t_latest(per_rows, snap["t_bin_edges"]),
            slider, *DataView.show(kind, value, label=label), checkpoints_md(snap))


def button_states(status: str, saved: bool = False) -> tuple:
    """interactive flags for Start, Pause, Resume, Stop, Save.

    saved: the run has a checkpoint on disk; a stopped or finished run then still offers Save (it
    names that checkpoint, which the other tabs list).
    """
    active = status in ACTIVE
    return (gr.update(interactive=not active), gr.update(interactive=status == "running"),
            gr.update(interactive=status == "paused"), gr.update(interactive=active),
            gr.update(interactive=status in ("running", "paused") or (saved and status in ("stopped", "finished"))))


N_VIEW = 9  # outputs of view_outputs
N_BUTTONS = 5


class PreviewChoices:
    """Per browser session: follow the newest preview, or show the one at a chosen step.

    Kept on the server rather than sent with each tick: a tick already in flight when the user
    clicks must not undo the newer choice when its answer arrives.
    """

    MAX_SESSIONS = 1000

    def __init__(self):
        self._lock = threading.Lock()
        self._choices: OrderedDict[str, tuple[bool, int | None]] = OrderedDict()

    def get(self, session: str | None) -> tuple[bool, int | None]:
        with self._lock:
            return self._choices.get(session or "", (True, None))

    def set(self, session: str | None, follow: bool, wanted: int | None = None) -> None:
        with self._lock:
            self._choices[session or ""] = (bool(follow), wanted)
            self._choices.move_to_end(session or "")
            while len(self._choices) > self.MAX_SESSIONS:
                self._choices.popitem(last=False)


PER_T_EVERY = 3.0  # seconds between redraws of the per-timestep charts while a run goes on


def changed_outputs(snap: dict, follow: bool, wanted, seen: dict | None) -> tuple[tuple, dict]:
    """What a tick sends: every view when the run is new to this page, else only what changed
    (the browser redraws each plot it is sent, so unchanged ones are skipped). Returns (outputs, seen)."""
    seen = dict(seen or {})
    fresh = seen.get("run") != snap["run_id"]
    out = list(view_outputs(snap, wanted, follow))
    steps = sorted(snap["previews"])
    shown = nearest_preview(steps, None if follow else wanted)
    now = time.monotonic()
    per_t_due = fresh or snap["status"] != "running" or now - seen.get("per_t_at", 0.0) >= PER_T_EVERY
    skip = gr.skip()
    if not per_t_due:
        out[3] = out[4] = skip
    if not fresh and (shown, len(steps)) == (seen.get("shown"), seen.get("n_previews")):
        out[5] = skip
    if not fresh and shown == seen.get("shown"):
        out[6] = out[7] = skip
    if not fresh and len(snap["checkpoints"]) == seen.get("n_checkpoints"):
        out[8] = skip
    seen.update(run=snap["run_id"], shown=shown, n_previews=len(steps), n_checkpoints=len(snap["checkpoints"]),
                key=(snap["run_id"], snap["version"], follow, wanted),
                per_t_at=now if per_t_due else seen.get("per_t_at", 0.0))
    return tuple(out), seen


def make_poll(ctx, choices: PreviewChoices | None = None):
    choices = choices or PreviewChoices()

    def session(request) -> str | None:
        return getattr(request, "session_hash", None)

    def poll(seen: dict, request: gr.Request = None):
        """Timer tick: redraw what changed since this browser tab last looked (nothing if nothing did)."""
        snap = manager_for(ctx).snapshot()
        follow, wanted = choices.get(session(request))
        if seen and seen.get("key") == (snap["run_id"], snap["version"], follow, wanted):
            return (gr.skip(),) * (N_VIEW + N_BUTTONS + 1)
        # the buttons' states go with every tick that redraws anything, not only when the status changes:
        # a page that missed one update (say, one dropped on a busy server) is put right by its next tick
        buttons = button_states(snap["status"], bool(snap["checkpoints"]))
        views, seen = changed_outputs(snap, follow, wanted, seen)
        return (*views, *buttons, seen)

    def scrub(wanted, request: gr.Request = None):
        """The preview slider moved (or the loss curve was clicked): show the preview at or before that step
        and mark it on the loss curve. Outputs: follow checkbox (off), slider, loss chart, preview (2)."""
        choices.set(session(request), False, None if wanted is None else int(wanted))
        snap = manager_for(ctx).snapshot()
        steps = sorted(snap["previews"])
        shown = nearest_preview(steps, wanted)
        kind, value, label = preview_value(snap, shown)
        return (False, preview_slider(snap, steps, shown),
                charts.loss_chart(snap["loss"], snap["smoothed"], marked=shown), *DataView.show(kind, value, label=label))

    def set_follow(follow: bool, wanted, request: gr.Request = None):
        """The follow checkbox: on, the next tick shows the newest preview; off, the one in view stays."""
        choices.set(session(request), bool(follow), None if wanted is None else int(wanted))

    return poll, scrub, set_follow


# --- upload and control updates ---------------------------------------------------------------

@user_errors
def upload_images(files) -> tuple[str, str]:
    """Uploaded image files / zips -> (folder for the image_folder dataset, a summary line)."""
    paths = [f if isinstance(f, str) else getattr(f, "name", f) for f in (files or [])]
    prepared = prepare_images(paths)
    return str(prepared.folder), "✅ " + prepared.summary()


def on_dataset(dataset: str):
    """New dataset: presets that fit it, its default settings, the upload box or the canvas if needed.
    Outputs: preset, schedule, batch, steps, lr, preview every, upload group, drawing group."""
    kind = kind_of(dataset)
    d = defaults_for(dataset)
    return (gr.update(choices=presets_for(kind), value=default_preset(dataset)), d["schedule"], d["batch"],
            d["steps"], d["lr"], d["preview_every"], gr.update(visible=dataset == UPLOAD),
            gr.update(visible=dataset == DRAW))


# --- your own 2-D points: a drawing or a CSV ------------------------------------------------------

POINTS_HINT = (f"Draw with the mouse (dark on white), or upload / paste a CSV with one **x,y** per line "
               f"({MIN_POINTS:,} to {MAX_POINTS:,} points). The points to train on appear on the right.")


def points_preview(points: np.ndarray | None, title: str):
    """The scatter the class sees before training: the points exactly as they will be trained on."""
    if points is None:
        return None
    # a seeded shuffle: a scatter keeps only its first points, and a drawing's come in raster order
    order = np.random.default_rng(0).permutation(len(points))
    return render.scatter(points[order], title=title, height=340, lim=3.0)


def points_outputs(points: np.ndarray, source: str) -> tuple:
    """(state, preview figure, note) once points are ready."""
    path = drawing.store_points(points)
    note = f"✅ {drawing.summary(points, source)}. Press **Start** to train on them."
    return {"path": str(path), "source": source}, points_preview(points, f"{len(points):,} points from {source}"), note


def from_drawing(value):
    """The canvas changed: its ink as points. An empty canvas or too little ink is not an error while
    drawing (the note says what is missing and Start refuses); outputs: state, preview, note."""
    try:
        points = drawing.drawing_points(value)
    except ValueError as e:
        empty = "canvas is empty" in str(e)
        return (None if empty else {"error": str(e)}), None, POINTS_HINT if empty else f"⚠️ {e}"
    return points_outputs(points, "the drawing")


@user_errors
def from_csv_file(file):
    """An uploaded CSV of x,y rows -> state, preview, note; gr.Error saying what is wrong with it."""
    if file is None:
        return gr.skip(), gr.skip(), gr.skip()
    path = file if isinstance(file, str) else getattr(file, "name", None) or getattr(file, "path", None)
    return points_outputs(drawing.csv_file_points(path), Path(path).name)


@user_errors
def from_csv_text(text):
    """Pasted x,y rows -> state, preview, note; gr.Error saying what is wrong with them."""
    return points_outputs(drawing.csv_points(text or ""), "the pasted CSV")
