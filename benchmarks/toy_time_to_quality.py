"""Time to reach the 2-D quality bar on swiss_roll: our Trainer (mlp-2d preset) beside a plain-PyTorch
baseline (a 3-layer MLP with the step concatenated, AdamW, EMA), in the same process and run.

    python benchmarks/toy_time_to_quality.py [--threads 2] [--budget 180]

The bar (from the project's quality goals): sliced Wasserstein within 1.5x the data-vs-data floor and
precision and recall both >= 0.9, on 2000 DDPM-1000 samples against 2000 held-out points. Evaluation
runs every `--every` steps and its time is NOT counted; only training time is.
"""
from __future__ import annotations

import argparse
import copy
import platform
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a clone without installing

from core.config import DataConfig, DiffusionConfig, RunConfig, TrainConfig
from core.data import load_dataset
from core.forward import q_sample
from core.metrics import precision_recall, sliced_wasserstein
from core.nets import PRESETS
from core.samplers import sample
from core.schedules import make_schedule
from core.training import Trainer


class PlainMLP(nn.Module):
    """The usual tutorial denoiser: [x, t/T] -> 3 x (Linear 128, ReLU) -> eps (about 35k parameters)."""

    def __init__(self, T, width=128):
        super().__init__()
        self.T = T
        self.net = nn.Sequential(nn.Linear(3, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                                 nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 2))

    def forward(self, x, t):
        return self.net(torch.cat([x, (t.float() / self.T)[:, None]], 1))


def quality(model, schedule, real, floor, clip):
    x = sample(model, schedule, (len(real), 2), sampler="ddpm", seed=1, steps=schedule.T, clip=clip)
    pr = precision_recall(real, x)
    ratio = sliced_wasserstein(x, real) / floor
    return ratio, pr["precision"], pr["recall"]


def reached(q):
    return q[0] <= 1.5 and q[1] >= 0.9 and q[2] >= 0.9


def run_ours(data, real, floor, every, budget):
    cfg = RunConfig(model=PRESETS["mlp-2d"], diffusion=DiffusionConfig("linear", 1000),
                    data=DataConfig("swiss_roll"), train=TrainConfig(steps=6000, batch_size=256, lr=2e-3,
                                                                     preview_every=0))
    tr = Trainer(cfg, data, "cpu")
    spent, log = 0.0, []
    while spent < budget and tr.step_count < cfg.train.steps:
        t0 = time.perf_counter()
        for _ in range(every):
            tr.step()
        spent += time.perf_counter() - t0
        q = quality(tr.ema.module, tr.schedule, real, floor, tr.x0_clip)
        log.append((tr.step_count, spent, *q))
        if reached(q):
            break
    return log


def run_plain(data, real, floor, every, budget, clip):
    torch.manual_seed(0)
    schedule = make_schedule("linear", 1000)
    model = PlainMLP(1000)
    ema = copy.deepcopy(model).requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    g = torch.Generator().manual_seed(0)
    spent, step, log = 0.0, 0, []
    while spent < budget and step < 20000:
        t0 = time.perf_counter()
        for _ in range(every):
            idx = torch.randint(0, len(data.x), (256,), generator=g)
            x0 = data.x[idx]
            t = torch.randint(1, 1001, (256,), generator=g)
            eps = torch.randn(x0.shape, generator=g)
            loss = (model(q_sample(schedule, x0, t, eps), t) - eps).pow(2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            with torch.no_grad():
                for pe, p in zip(ema.parameters(), model.parameters()):
                    pe.lerp_(p, 1 - 0.999)
            step += 1
        spent += time.perf_counter() - t0
        q = quality(ema, schedule, real, floor, clip)
        log.append((step, spent, *q))
        if reached(q):
            break
    return log


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--budget", type=float, default=180, help="training seconds allowed to each side")
    p.add_argument("--every", type=int, default=500, help="steps between quality checks")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    data = load_dataset("swiss_roll")
    real = load_dataset("swiss_roll", n=2000, seed=123).x
    floor = sliced_wasserstein(load_dataset("swiss_roll", n=2000, seed=456).x, real)
    print(f"device: CPU ({platform.machine()}, {a.threads} torch threads), torch {torch.__version__}")
    for name, log in [("ours (mlp-2d, Trainer)", run_ours(data, real, floor, a.every, a.budget)),
                      ("plain PyTorch MLP + EMA", run_plain(data, real, floor, a.every, a.budget, data.x0_clip()))]:
        print(f"\n{name}")
        print("| steps | train s | SWD / floor | precision | recall | bar met |")
        print("|---|---|---|---|---|---|")
        for s, t, r, pp, rr in log:
            print(f"| {s} | {t:.1f} | {r:.2f} | {pp:.3f} | {rr:.3f} | {'yes' if reached((r, pp, rr)) else 'no'} |")


if __name__ == "__main__":
    main()
