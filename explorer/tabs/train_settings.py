"""What a Train-tab run is: the datasets and presets it offers, their defaults, the precision and compile
choices, the time a run will take here, and the `RunConfig` its settings make (every value checked)."""
from __future__ import annotations

import functools
import json
from pathlib import Path

from core.config import PREDICTIONS, DataConfig, DiffusionConfig, RunConfig, TrainConfig
from core.data import dataset_info
from core.datafiles import MIN_POINTS
from core.device import cpu_has_bf16
from core.nets import PRESET_SHAPES, PRESETS
from core.schedules import SCHEDULES

from .. import costs, drawing
from ..inputs import builtin_datasets
from ..jobs import format_seconds

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

def whole_number(name: str, value) -> int:
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
    steps = whole_number("steps", steps)
    extra = {"ema_decay": DEFAULTS["drawing"]["ema_decay"]} if dataset == DRAW else {}
    train = TrainConfig(steps=steps, batch_size=whole_number("batch", batch), lr=float(lr),
                        warmup_steps=min(100, max(1, steps // 10)), preview_every=whole_number("preview_every", preview_every),
                        seed=whole_number("seed", seed), log_every=10,
                        compile=False if compile_mode == "off" else compile_mode, amp=bool(amp), **extra)
    return RunConfig(model=PRESETS[preset], diffusion=DiffusionConfig(schedule, whole_number("T", T), prediction),
                     data=data, train=train)
