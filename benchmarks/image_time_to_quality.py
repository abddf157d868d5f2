"""Time for an image model (digits or shapes) to reach its quality bar, on the CPU or a GPU.

    python benchmarks/image_time_to_quality.py --dataset digits [--device cuda] [--every 250] [--budget 600]
        [--cpu-bf16]

The bar (from the project's quality goals): the project's own classifier for the dataset gives at
least 90 % of samples a class with probability >= 0.9, and the Inception Score in that classifier's
classes is within 10 % of the real data's at the same sample size. Every `--every` steps the EMA
weights draw `--n` samples (DDIM, `--sampler-steps` steps, the shipped checkpoints' evaluation
setting) and are scored; that time is NOT counted, only the training steps are (with the device
synchronised before each clock reading). --cpu-bf16 trains under bf16 autocast on a CPU with
native bf16 (the samples are drawn in fp32 either way). The run uses the same preset, batch size and learning rate
as the shipped checkpoint (assets/checkpoints/make_checkpoints.sh).
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a clone without installing

from core.data import load_dataset
from core.device import pick_device
from core.evaluate import CONFIDENT_P, confident_fraction
from core.extractors import builtin_extractor
from core.fid import inception_score
from core.samplers import sample
from core.train import build_config, parser
from core.training import Trainer

SHIPPED = {  # the core.train flags of the shipped checkpoints (assets/checkpoints/make_checkpoints.sh)
    "digits": "--dataset digits --preset unet-digits --steps 3000 --batch-size 128 --lr 1e-3 --seed 0",
    "shapes": "--dataset shapes --preset unet-shapes --steps 8000 --batch-size 128 --lr 1e-3 --seed 0",
}


def device_name(device: torch.device, threads: int, bf16: bool = False) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda})"
    return f"CPU ({platform.machine()}, {threads} torch threads{', bf16 autocast' if bf16 else ''})"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", choices=sorted(SHIPPED), default="digits")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--every", type=int, default=250, help="steps between quality checks")
    p.add_argument("--budget", type=float, default=600, help="training seconds allowed")
    p.add_argument("--steps", type=int, default=None, help="stop after this many steps (default: the shipped run's)")
    p.add_argument("--n", type=int, default=500, help="samples per quality check")
    p.add_argument("--sampler-steps", type=int, default=50)
    p.add_argument("--stop-at-bar", action="store_true", help="stop at the first check that meets the bar")
    p.add_argument("--cpu-bf16", action="store_true", help="train under bf16 autocast on a CPU with native bf16")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    device = pick_device(a.device)
    flags = parser().parse_args(SHIPPED[a.dataset].split() + (["--steps", str(a.steps)] if a.steps else []))
    data = load_dataset(a.dataset)
    cfg, label = build_config(flags, data.kind, tuple(data.x.shape[1:]))
    total = cfg.train.steps
    tr = Trainer(cfg, data, device, cpu_bf16=a.cpu_bf16)
    extractor = builtin_extractor(a.dataset, device=device)
    real = data.x[torch.randperm(len(data), generator=torch.Generator().manual_seed(1))[:a.n]]
    _, lg_real = extractor(real, device=device)
    is_real = inception_score(lg_real)[0]

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    print(f"device: {device_name(device, a.threads, tr.cpu_bf16)}, torch {torch.__version__}; "
          f"{tr.shards} shard(s) a batch; load {os.getloadavg()[0]:.1f}")
    print(f"{a.dataset}: python -m core.train {SHIPPED[a.dataset]} ({label}); checks every {a.every} steps on {a.n} samples "
          f"(DDIM {a.sampler_steps}); real data at n={a.n}: {confident_fraction(lg_real):.1%} confident, IS {is_real:.2f}")
    print("| steps | train s | steps/s | confident (p >= 0.9) | IS | IS / real | bar met |")
    print("|---|---|---|---|---|---|---|", flush=True)
    spent, first = 0.0, None
    while spent < a.budget and tr.step_count < total:
        sync()
        t0 = time.perf_counter()
        for _ in range(min(a.every, total - tr.step_count)):
            tr.step()
        sync()
        spent += time.perf_counter() - t0
        x = sample(tr.ema.module, tr.schedule, (a.n, *data.x.shape[1:]), sampler="ddim", seed=0,
                   steps=a.sampler_steps, device=device, prediction=cfg.diffusion.prediction, clip=tr.x0_clip)
        _, lg = extractor(x.float(), device=device)
        conf, is_gen = confident_fraction(lg), inception_score(lg)[0]
        met = conf >= CONFIDENT_P and abs(is_gen - is_real) <= 0.1 * is_real
        if met and first is None:
            first = (tr.step_count, spent)
        print(f"| {tr.step_count} | {spent:.1f} | {tr.step_count / spent:.1f} | {conf:.1%} | {is_gen:.2f} | "
              f"{is_gen / is_real:.3f} | {'yes' if met else 'no'} |", flush=True)
        if met and a.stop_at_bar:
            break
    print(f"\nbar first met at step {first[0]} after {first[1]:.1f} s of training" if first else
          f"\nbar not met within {tr.step_count} steps / {spent:.1f} s")
    print(f"load at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
