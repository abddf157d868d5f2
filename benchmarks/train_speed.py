"""Training speed per model preset on this machine: steps/s in one process with one torch thread.

The Train tab estimates how long a run takes from these numbers (explorer/train_speed.json),
scaled by batch size, before the run starts; once it runs, the live steps/s replaces the guess.
The time of a step is fitted as a + b * batch from two batch sizes.

    python benchmarks/train_speed.py [PRESET ...] [--seconds 3] [--out explorer/train_speed.json]

Named presets are measured again and replace their rows; the other rows of the file stay as they are.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.config import DataConfig, DiffusionConfig, RunConfig, TrainConfig  # noqa: E402
from core.data import load_dataset  # noqa: E402
from core.nets import PRESETS  # noqa: E402
from core.training import Trainer  # noqa: E402

DATA_FOR = {"mlp-2d": "moons", "mlp-2d-small": "moons", "unet-digits": "digits", "unet-shapes": "shapes", "unet-small": "digits",
            "gru-signals": "signals", "conv1d-signals": "signals"}
PARAMS_FOR = {"unet-small": {"size": 16}}
BATCHES = {"mlp-2d": (64, 256), "mlp-2d-small": (64, 256), "gru-signals": (32, 128), "conv1d-signals": (32, 128)}
IMAGE_BATCHES = (16, 64)


def seconds_per_step(preset: str, batch: int, seconds: float) -> float:
    name = DATA_FOR[preset]
    data = load_dataset(name, **PARAMS_FOR.get(preset, {}))
    cfg = RunConfig(model=PRESETS[preset], diffusion=DiffusionConfig("linear", 1000, "eps"),
                    data=DataConfig(name, PARAMS_FOR.get(preset, {})),
                    train=TrainConfig(steps=100_000, batch_size=batch, preview_every=0))
    trainer = Trainer(cfg, data, "cpu")
    for _ in range(3):  # warm-up: first steps allocate
        trainer.step()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        trainer.step()
        n += 1
    return (time.perf_counter() - start) / n


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("presets", nargs="*", help="presets to measure (default: all)")
    p.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "explorer" / "train_speed.json"))
    args = p.parse_args(argv)
    unknown = [name for name in args.presets if name not in PRESETS]
    if unknown:
        p.error(f"unknown preset(s) {', '.join(unknown)}; known: {', '.join(PRESETS)}")
    torch.set_num_threads(args.threads)
    rows = {}
    if args.presets and Path(args.out).is_file():
        rows = json.loads(Path(args.out).read_text()).get("presets", {})
    for preset in args.presets or PRESETS:
        b1, b2 = BATCHES.get(preset, IMAGE_BATCHES)
        t1, t2 = seconds_per_step(preset, b1, args.seconds), seconds_per_step(preset, b2, args.seconds)
        slope = max((t2 - t1) / (b2 - b1), 0.0)
        rows[preset] = {"base_s": max(t1 - slope * b1, 0.0), "per_sample_s": slope,
                        f"steps_per_s_at_{b1}": 1 / t1, f"steps_per_s_at_{b2}": 1 / t2}
        print(f"{preset:16s} batch {b1:4d}: {1 / t1:7.1f} steps/s   batch {b2:4d}: {1 / t2:7.1f} steps/s", flush=True)
    doc = {"machine": f"{platform.machine()} {platform.processor() or ''}".strip(), "cpus": os.cpu_count(),
           "torch_threads": args.threads, "torch": torch.__version__,
           "presets": {name: rows[name] for name in PRESETS if name in rows}}
    Path(args.out).write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
