"""Train tab: start a run in the background, watch its loss, learning rate, per-timestep loss and
sample previews live, pause / resume / stop it, and save checkpoints that other tabs can load.

The run is the app's one `jobs.TrainingJob` (a child process). Every browser tab polls its
snapshot with a `gr.Timer` once a second; a tick that finds nothing new returns `gr.skip()`, so
an idle page costs almost nothing. Handlers are plain functions (tests and gradio_client call
them); `build(ctx)` lays out widgets and wires events.
"""
from __future__ import annotations

import functools
import json
import threading
import time
from collections import OrderedDict
from pathlib import Path

import gradio as gr
import numpy as np

from core.config import DataConfig, DiffusionConfig, RunConfig, TrainConfig
from core.config import PREDICTIONS
from core.data import dataset_info
from core.datafiles import MAX_POINTS, MIN_POINTS
from core.device import cpu_has_bf16
from core.nets import PRESET_SHAPES, PRESETS
from core.schedules import SCHEDULES

from .. import charts, costs, drawing, render
from ..inputs import builtin_datasets
from ..lecture import Restorer
from ..jobs import ACTIVE, JobBusy, JobError, format_seconds, manager_for, run_name
from ..uploads import keep_for_run as keep_upload
from ..uploads import prepare_images
from ..widgets import DataView, md, user_errors

TITLE = "Train"

UPLOAD = "your images (upload)"
DRAW = "your 2-D points (draw or CSV)"
UPLOAD_SIZES = (16, 32, 64)
SPEED_FILE = Path(__file__).resolve().parent.parent / "train_speed.json"
RANK_KIND = {1: "points", 2: "signal", 3: "image"}
PRESET_FOR = {"digits": "unet-digits", "shapes": "unet-shapes", "signals": "conv1d-signals", UPLOAD: "unet-small",
              DRAW: "mlp-2d"}
KIND_PRESET = {"points": "mlp-2d-small"}  # the built-in 2-D toys (see DEFAULTS["points"])
# Settings that give a visible result quickly on a laptop CPU.
DEFAULTS = {
    # A 2-D toy: swiss_roll meets the project's 2-D quality goal (core.goals) after these 1,600 steps, 9.3 s
    # of training on 2 CPU cores (benchmarks/toy_time_to_quality.py); with the linear schedule or mlp-2d in
    # the same time it falls short on precision.
    "points": dict(batch=384, steps=1600, lr=3e-3, preview_every=100, schedule="cosine"),
    "image": dict(batch=32, steps=2000, lr=5e-4, preview_every=200, schedule="linear"),
    "signal": dict(batch=64, steps=2000, lr=1e-3, preview_every=200, schedule="linear"),
    # A drawing: recognisable in the samples after 15 s on a 2-core CPU (benchmarks/drawn_points.py).
    "drawing": dict(batch=256, steps=1200, lr=3e-3, preview_every=100, ema_decay=0.99, schedule="linear"),
}
START_SECONDS = 1.0   # from Start to the first step: the training process waits ready (jobs.TrainingJob prestart)
FIRST_STEP_WAIT_S = 3.0  # Start's reply waits at most this long for the run's first step
LIMITS = dict(T=(10, 2000), steps=(1, 1_000_000), batch=(1, 4096), preview_every=(0, 100_000),
              checkpoint_every=(0, 1_000_000), seed=(0, 2**31 - 1))

HELP = """\
**How to read the charts.** The loss is the mean squared error of the network's prediction
(of the noise ε, of x₀ or of v) at a random timestep per sample, so it is noisy: watch the
smoothed curve. The map below shows the loss per band of timesteps: at small t the input is
nearly clean and predicting the noise is hard (high loss); at large t the input is almost pure
noise and predicting it is easy. Samples are drawn every few steps with 20 DDIM steps from the
EMA weights; click the loss curve, or drag the slider, to see them at any earlier step.
"""


# --- choices --------------------------------------------------------------------------------

def dataset_choices() -> list[str]:
    return [*builtin_datasets(), DRAW, UPLOAD]


def kind_of(dataset: str) -> str:
    if dataset in (UPLOAD, DRAW):
        return "image" if dataset == UPLOAD else "points"
    return dataset_info(dataset).kind


def defaults_for(dataset: str) -> dict:
    """The starting settings for a dataset: the drawing's own, else its kind's."""
    return DEFAULTS["drawing"] if dataset == DRAW else DEFAULTS[kind_of(dataset)]


def presets_for(kind: str) -> list[str]:
    """Model presets that take samples of this kind of data."""
    return [name for name, shape in PRESET_SHAPES.items() if RANK_KIND[len(shape)] == kind]


def default_preset(dataset: str) -> str:
    kind = kind_of(dataset)
    return PRESET_FOR.get(dataset) or KIND_PRESET.get(kind) or presets_for(kind)[0]


COMPILE_CHOICES = ("off", "default", "reduce-overhead")  # the Train tab's torch.compile choices
FP32, BF16 = "fp32", "bf16 autocast"
PRECISIONS = (FP32, BF16)  # the net's arithmetic; the weights, AdamW and the EMA stay fp32 either way


def default_precision(device: str) -> str:
    """bf16 autocast on CUDA (as the CLI trains there), fp32 elsewhere (exact; the shipped models' own)."""
    return BF16 if str(device).startswith("cuda") else FP32


def precision_info(device: str) -> str:
    """What the precision setting does on this device, for the control's help line."""
    device = str(device)
    if device.startswith("cuda"):
        return "bf16 autocast: the net's arithmetic in bf16 (weights, AdamW and the EMA stay fp32)"
    if device.startswith("cpu"):
        if cpu_has_bf16():
            return ("this CPU has native bf16: faster steps, more so for larger convolutions (2x for a 32x32 "
                    "UNet, 1.1x for 8x8 digits), results within bf16's rounding of fp32")
        return "fp32 only: this CPU has no native bf16 (AVX512-BF16 or AMX), so bf16 would be emulated, slower"
    return f"fp32 only on {device}"


def precision_options(precision, device: str) -> tuple[bool, bool]:
    """(amp, cpu_bf16) for the chosen precision on `device`; ValueError where the device cannot do it."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    device = str(device)
    bf16 = precision == BF16
    if device.startswith("cuda"):
        return bf16, False
    if not bf16:
        return False, False
    if device.startswith("cpu") and cpu_has_bf16():
        return False, True
    why = "this CPU would emulate it, slower than fp32" if device.startswith("cpu") else f"{device} has none here"
    raise ValueError(f"{BF16} needs CUDA or a CPU with native bf16 (AVX512-BF16 or AMX); {why}: choose {FP32}")


# --- time estimate --------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def speed_table() -> dict:
    """Measured seconds per step per preset (benchmarks/train_speed.py), or {} if missing."""
    try:
        return json.loads(SPEED_FILE.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def estimate_seconds(preset: str, batch: int, steps: int, preview_every: int) -> float | None:
    """Rough wall time of a run on the machine the table was measured on (one torch thread)."""
    row = speed_table().get("presets", {}).get(preset)
    if row is None:
        return None
    per_step = row["base_s"] + row["per_sample_s"] * batch
    previews = steps // preview_every if preview_every else 0
    # A preview is 20 DDIM steps of a forward pass only (about a third of a training step's work).
    per_preview = 20 * (row["base_s"] + row["per_sample_s"] * 64) / 3
    return START_SECONDS + steps * per_step + previews * per_preview


def estimate_text(dataset: str, preset: str, batch, steps, preview_every, device: str = "cpu",
                  device_key: str | None = None, book: costs.SpeedBook | None = None,
                  compile_mode: str = "off", precision: str = FP32) -> str:
    """One line for the controls: how long the chosen run should take here, and a faster choice if long.

    From earlier runs of this model at this batch on this device (remembered in `book` under
    `device_key`, which names the precision where it is not the device's default); before the first
    one, from the table measured on a 2-core CPU in fp32. A compiled run is not estimated: compiling
    comes first, and its pace is not an eager run's.
    """
    try:
        batch, steps, preview_every = int(batch), int(steps), int(preview_every or 0)
    except (TypeError, ValueError):
        return ""
    if compile_mode in COMPILE_CHOICES and compile_mode != "off":
        return ("torch.compile compiles the net first: a minute or more (on a CPU it trains no faster; on a "
                "GPU reduce-overhead's CUDA graphs make small nets several times faster). The time left is "
                "shown once it trains.")
    model = PRESETS.get(preset)

    def measured_here(n_steps: int) -> float | None:
        if model is None or device_key is None or book is None:
            return None
        secs = costs.train_estimate(model, batch, n_steps, preview_every, device_key, book=book)
        return None if secs is None else START_SECONDS + secs

    def from_table(n_steps: int) -> float | None:
        return estimate_seconds(preset, batch, n_steps, preview_every)

    here, source = measured_here, "from earlier runs of this model at this batch on this device"
    if measured_here(steps) is None:
        if device.startswith("cpu") and precision == BF16:
            fp32 = from_table(steps)
            return ("The time left is shown once the run has started (measured live); this device's bf16 pace "
                    "is remembered after its first bf16 run" + (f" (fp32: about {format_seconds(fp32)})."
                                                                  if fp32 is not None else "."))
        if not device.startswith("cpu") or from_table(steps) is None:
            return "The time left is shown once the run has started (measured live)."
        here, source = from_table, (f"measured on a {speed_table().get('cpus')}-core CPU; this device's own time "
                                    f"is remembered after its first run")
    secs = here(steps)
    text = f"About **{format_seconds(secs)}** ({steps:,} steps of {batch}), {source}."
    if secs > costs.SAY_ABOVE_S and steps >= 20:
        fewer = max(10, steps // 4)
        text += f" Faster: {fewer:,} steps take about {format_seconds(here(fewer))}."
    return text + " The time left is shown while it trains."


# --- building a run -------------------------------------------------------------------------

def _whole(name: str, value) -> int:
    lo, hi = LIMITS[name]
    if value is None or not float(value).is_integer() or not lo <= int(value) <= hi:
        raise ValueError(f"{name.replace('_', ' ')} must be a whole number between {lo} and {hi}, got {value!r}")
    return int(value)


def make_config(dataset: str, upload_folder: str | None, preset: str, schedule: str, T, prediction: str,
                lr, batch, steps, preview_every, seed, image_size=32, channels: int = 3,
                points_path: str | None = None, compile_mode: str = "off", amp: bool = True) -> RunConfig:
    """The RunConfig for the controls' values; ValueError naming the first bad one.

    amp: bf16 autocast on CUDA (TrainConfig.amp; a CPU's bf16 is the job's option, see `precision_options`)."""
    if compile_mode not in COMPILE_CHOICES:
        raise ValueError(f"torch.compile must be one of {', '.join(COMPILE_CHOICES)}, got {compile_mode!r}")
    if dataset not in dataset_choices():
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {', '.join(dataset_choices())}")
    if preset not in PRESETS:
        raise ValueError(f"unknown model preset {preset!r}; choose one of {', '.join(PRESETS)}")
    kind = kind_of(dataset)
    if preset not in presets_for(kind):
        raise ValueError(f"preset {preset!r} is not for {kind} data; choose one of {', '.join(presets_for(kind))}")
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}")
    if prediction not in PREDICTIONS:
        raise ValueError(f"prediction must be one of {', '.join(PREDICTIONS)}, got {prediction!r}")
    if lr is None or not 0 < float(lr) <= 1:
        raise ValueError(f"learning rate must be in (0, 1], got {lr!r}")
    if dataset == UPLOAD:
        if not upload_folder:
            raise ValueError("upload your images (or a .zip of them) first")
        if int(image_size) not in UPLOAD_SIZES:
            raise ValueError(f"image size must be one of {UPLOAD_SIZES}, got {image_size!r}")
        data = DataConfig("image_folder", {"path": str(upload_folder), "size": int(image_size),
                                           "channels": int(channels)})
    elif dataset == DRAW:
        if not points_path or not Path(points_path).is_file():
            raise ValueError(f"no points yet: draw a shape on the canvas (at least {MIN_POINTS} pixels of ink), "
                             "or upload or paste a CSV of x,y")
        # the file's SHA-256 goes into the config: the checkpoint then reloads exactly these points
        data = DataConfig("points_file", {"path": str(Path(points_path).resolve()),
                                          "sha256": drawing.file_sha256(points_path)})
    else:
        data = DataConfig(dataset, {})
    steps = _whole("steps", steps)
    extra = {"ema_decay": DEFAULTS["drawing"]["ema_decay"]} if dataset == DRAW else {}
    train = TrainConfig(steps=steps, batch_size=_whole("batch", batch), lr=float(lr),
                        warmup_steps=min(100, max(1, steps // 10)), preview_every=_whole("preview_every", preview_every),
                        seed=_whole("seed", seed), log_every=10,
                        compile=False if compile_mode == "off" else compile_mode, amp=bool(amp), **extra)
    return RunConfig(model=PRESETS[preset], diffusion=DiffusionConfig(schedule, _whole("T", T), prediction),
                     data=data, train=train)


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
            run_dir = job.start(config, name=run_name(config, preset),
                                checkpoint_every=_whole("checkpoint_every", checkpoint_every or 0), cpu_bf16=cpu_bf16)
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
        html += f'<div style="color:#4b5563;margin-top:4px">{_escape(snap["message"])}</div>'
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


# --- layout and wiring ----------------------------------------------------------------------

def build(ctx) -> Restorer:
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
            with gr.Row(equal_height=True):
                loss_plot = gr.Plot(show_label=False, elem_id="tr-loss", scale=3)
                lr_plot = gr.Plot(show_label=False, elem_id="tr-lr-chart", scale=2)
            with gr.Row(equal_height=True, elem_classes=["de-secondary"]):
                per_t_plot = gr.Plot(show_label=False, elem_id="tr-per-t", scale=3)
                per_t_now = gr.Plot(show_label=False, elem_id="tr-per-t-now", scale=2)
            with gr.Row(equal_height=False):
                with gr.Column(scale=3):
                    preview = DataView("Samples", "tr-preview", kind0, height=384)
                with gr.Column(scale=2, min_width=240):
                    preview_step = gr.Slider(0, max(d0["steps"], 1), value=0, step=1, label="Previews",
                                             elem_id="tr-preview-step")
                    follow = gr.Checkbox(True, label="Follow the newest preview", elem_id="tr-follow")
                    ckpts = md(checkpoints_md(snap0), elem_id="tr-checkpoints")
                    md(HELP)

    seen = gr.State({})
    # Tick only while this tab is in view: a hidden tab's charts would still be sent and drawn each
    # second, taking the browser's time from the tab the user is looking at.
    tab = gr.context.Context.block  # the gr.Tab the app opened for this module (None in a bare build)
    tabs = tab.parent if isinstance(tab, gr.Tab) and isinstance(tab.parent, gr.Tabs) else None
    timer = gr.Timer(1.0, active=tabs is None)
    view = [status_box, loss_plot, lr_plot, per_t_plot, per_t_now, preview_step, *preview.outputs, ckpts]
    buttons = [start_btn, pause_btn, resume_btn, stop_btn, save_btn]
    upload_folder = gr.State(None)
    points = gr.State(None)  # {"path": the points' CSV file, "source"} or {"error": why not}
    quiet = dict(show_progress="hidden", api_visibility="private")

    timer.tick(poll, seen, [*view, *buttons, seen], queue=False, **quiet)
    if tabs is not None:
        def in_view(evt: gr.SelectData):
            return gr.Timer(active=evt.value == tab.label)

        tabs.select(in_view, None, timer, queue=False, **quiet)
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

    # A link, a lesson stop or a bundle opens this tab without a click, so the tab's select event (which
    # starts the ticking) never fires: the restorer starts or stops the ticking with the tab it opens.
    def tick_when_shown(values: dict, problems: list[str]) -> tuple:
        return (gr.Timer(active=values.get("tab") == "train") if tabs is not None and "tab" in values else gr.skip(),)

    return Restorer([timer], tick_when_shown)
