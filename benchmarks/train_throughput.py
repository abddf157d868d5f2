"""Training throughput of every model preset at the batch size its shipped checkpoint is trained with.

    python benchmarks/train_throughput.py [--device cpu] [--seconds 3] [--threads 1 2] [--compile]

Times `Trainer.step()` (forward, backward, clipping, AdamW, EMA: everything a real step does,
previews off) after warm-up steps, once per torch thread count, and writes a Markdown table to
benchmarks/RESULTS-train.md naming the device. On a shared machine the load average is recorded
beside the numbers, since other processes slow every step.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from datetime import date
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.config import DataConfig, RunConfig, TrainConfig  # noqa: E402
from core.data import load_dataset  # noqa: E402
from core.device import pick_device  # noqa: E402
from core.nets import PRESETS, count_parameters  # noqa: E402
from core.training import Trainer  # noqa: E402

# preset -> (dataset, dataset params, batch size of assets/checkpoints/make_checkpoints.sh)
CASES = {
    "mlp-2d": ("swiss_roll", {}, 256),
    "unet-digits": ("digits", {}, 128),
    "unet-shapes": ("shapes", {"n": 1024}, 512),
    "unet-small": ("digits", {"size": 16}, 64),  # not shipped: the batch the UI suggests for images
    "gru-signals": ("signals", {"n": 2048}, 128),
    "conv1d-signals": ("signals", {"n": 2048}, 128),
}


def steps_per_second(preset: str, device: torch.device, seconds: float, min_steps: int = 2,
                     compile: bool = False) -> tuple[float, int]:
    """(steps/s, parameters) of training `preset` on its dataset; at least `min_steps` timed steps."""
    name, params, batch = CASES[preset]
    data = load_dataset(name, **params)
    cfg = RunConfig(model=PRESETS[preset], data=DataConfig(name, params),
                    train=TrainConfig(steps=100_000, batch_size=batch, preview_every=0, compile=compile))
    trainer = Trainer(cfg, data, device)
    for _ in range(3 if compile else 1):  # warm-up: the first step allocates (and compiles)
        trainer.step()
    trainer.wait()
    n, start = 0, time.perf_counter()
    while n < min_steps or time.perf_counter() - start < seconds:
        trainer.step()  # queued on the device; the numbers are read at logging steps only
        n += 1
    trainer.wait()  # so the clock sees finished work
    return n / (time.perf_counter() - start), count_parameters(trainer.model)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model or platform.processor() or platform.machine()} ({os.cpu_count()} logical CPUs)"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--seconds", type=float, default=3.0, help="minimum timed seconds per measurement")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch thread counts to try")
    p.add_argument("--presets", nargs="+", default=list(CASES), choices=list(CASES))
    p.add_argument("--compile", action="store_true", help="torch.compile the model, as core.train --compile does")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "RESULTS-train.md"))
    a = p.parse_args(argv)
    device = pick_device(a.device)

    rows = []
    for preset in a.presets:
        speeds = {}
        for threads in a.threads:
            torch.set_num_threads(threads)
            speeds[threads], n_params = steps_per_second(preset, device, a.seconds, compile=a.compile)
        rows.append((preset, n_params, CASES[preset][2], speeds))
        print(f"{preset:16s} batch {CASES[preset][2]:4d}  " +
              "  ".join(f"{t} thread(s): {s:7.2f} steps/s" for t, s in speeds.items()), flush=True)

    loads = os.getloadavg() if hasattr(os, "getloadavg") else None
    load = " / ".join(f"{v:.1f}" for v in loads) if loads else "n/a"
    busy = bool(loads) and loads[0] > (os.cpu_count() or 1)
    head = "| preset | parameters | batch | " + " | ".join(f"steps/s, {t} thread{'s' * (t > 1)}" for t in a.threads)
    lines = [
        "# Training throughput per preset",
        "",
        f"Device: {device_name(device)}, {device.type}. torch {torch.__version__}, Python {platform.python_version()}, "
        f"{date.today().isoformat()}. Load average at the end (1/5/15 min): {load}.",
        "",
        f"`python benchmarks/train_throughput.py --device {a.device} --seconds {a.seconds:g} "
        f"--threads {' '.join(map(str, a.threads))}{' --compile' * a.compile}`: full `Trainer.step()` (forward, "
        f"backward, clipping, fused AdamW, EMA{', bf16 autocast' * (device.type == 'cuda')}), previews off, "
        f"{'torch.compile, ' * a.compile}batch sizes of `assets/checkpoints/make_checkpoints.sh`.",
        "",
        *([f"The machine was busier than its {os.cpu_count()} CPUs (other processes running): read these as lower "
           "bounds, and note how extra torch threads then slow a step down rather than speed it up.", ""]
          if busy and device.type == "cpu" else []),
        head + " | samples/s (best) |",
        "| --- | ---: | ---: | " + " | ".join("---:" for _ in a.threads) + " | ---: |",
    ]
    for preset, n_params, batch, speeds in rows:
        best = max(speeds.values()) * batch
        cells = " | ".join(f"{s:.2f}" if s >= 1 else f"{s:.3g}" for s in speeds.values())  # 0.0474, not 0.05
        lines.append(f"| {preset} | {n_params:,} | {batch} | {cells} | {best:,.0f} |")
    Path(a.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
