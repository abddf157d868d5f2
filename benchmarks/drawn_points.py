"""Draw your own 2-D data: is a drawn letter recognisable in the samples after 15 s of training?

    python benchmarks/drawn_points.py [--seconds 15] [--shape A] [--threads 1]

A shape is drawn as a person would on the Train tab's canvas: strokes of the canvas's brush width
on a white canvas of its size, then turned into points by the same code as the app (ink pixels ->
points -> a CSV file -> the `points_file` dataset). It is trained with the drawing preset exactly
as the Train tab builds it (make_config) for --seconds of wall-clock time on the CPU, in one torch
thread as the tab's training process runs (previews included, as there), then 2000 samples are
drawn with DDIM 50 (the Reverse tab's default) and scored against the drawing:

- near: the fraction of samples within R of the drawing's points (R = 0.1, about one brush width
  in the normalised units the data is scaled to; the drawing spans about 4 of them);
- chamfer: the symmetric Chamfer distance (mean nearest-point distance from samples to the drawing
  plus from the drawing to the samples): low only if the samples lie on the strokes AND cover them.

Beside the model: the same numbers for 2000 points of the drawing itself (the best possible),
for Gaussian noise N(0, I) (what the sampler starts from) and for a model trained the same way on
another shape (so a model that merely learned "some blob" scores badly). The samples are also
printed as a character picture. The machine's load (os.getloadavg) is recorded before and after.
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a clone without installing

from core.data import load_dataset  # noqa: E402
from core.samplers import sample  # noqa: E402
from core.training import Trainer  # noqa: E402
from explorer import drawing  # noqa: E402
from explorer.tabs.train_settings import DRAW, DEFAULTS, make_config  # noqa: E402

RADIUS = 0.1
N_SAMPLES = 2000


def strokes(shape: str) -> list[list[tuple[float, float]]]:
    """Polylines of a shape on the unit square (x right, y down, as on a canvas)."""
    if shape == "A":
        return [[(0.2, 0.85), (0.5, 0.12), (0.8, 0.85)], [(0.33, 0.55), (0.67, 0.55)]]
    if shape == "smiley":
        circle = lambda cx, cy, r, a0=0.0, a1=2 * math.pi, k=60: [
            (cx + r * math.cos(a0 + (a1 - a0) * i / k), cy + r * math.sin(a0 + (a1 - a0) * i / k)) for i in range(k + 1)]
        return [circle(0.5, 0.5, 0.38), circle(0.36, 0.4, 0.04, k=16), circle(0.64, 0.4, 0.04, k=16),
                circle(0.5, 0.52, 0.2, 0.15 * math.pi, 0.85 * math.pi, k=30)]
    raise ValueError(f"shape must be A or smiley, got {shape!r}")


def draw(shape: str) -> np.ndarray:
    """The shape drawn with the canvas's brush on a white canvas: a grey (H, W) uint8 image."""
    w, h = drawing.CANVAS
    im = Image.new("L", (w, h), 255)
    pen = ImageDraw.Draw(im)
    for line in strokes(shape):
        pen.line([(x * w, y * h) for x, y in line], fill=20, width=drawing.BRUSH, joint="curve")
    return np.asarray(im)


def dataset_for(shape: str, folder: Path):
    """The drawing through the app's own path: ink -> points -> stored CSV -> points_file dataset."""
    points = drawing.drawing_points(draw(shape))
    path = drawing.store_points(points, folder)
    return path, load_dataset("points_file", path=str(path))


def train(path: Path, data, seconds: float):
    d = DEFAULTS["drawing"]
    config = make_config(DRAW, None, "mlp-2d", "linear", 1000, "eps", d["lr"], d["batch"], d["steps"],
                         d["preview_every"], 0, points_path=str(path))
    trainer = Trainer(config, data, "cpu")
    start = time.perf_counter()
    while not trainer.done and time.perf_counter() - start < seconds:
        trainer.step()
    return trainer, time.perf_counter() - start


def nearest(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """For each row of a, the distance to its nearest row of b."""
    return torch.cat([torch.cdist(chunk, b).min(1).values for chunk in a.split(1024)])


def score(samples: torch.Tensor, target: torch.Tensor) -> tuple[float, float]:
    to_target, to_samples = nearest(samples, target), nearest(target, samples)
    return float((to_target < RADIUS).float().mean()), float(to_target.mean() + to_samples.mean())


def picture(points: torch.Tensor, width: int = 48, height: int = 22, lim: float = 2.5) -> str:
    """A character picture of a 2-D point cloud on [-lim, lim]^2 (y up)."""
    grid = np.zeros((height, width), dtype=int)
    p = points.numpy()
    cols = ((p[:, 0] + lim) / (2 * lim) * width).astype(int)
    rows = ((lim - p[:, 1]) / (2 * lim) * height).astype(int)
    ok = (cols >= 0) & (cols < width) & (rows >= 0) & (rows < height)
    np.add.at(grid, (rows[ok], cols[ok]), 1)
    shades = " .:oO@"
    top = max(1, np.percentile(grid[grid > 0], 90)) if (grid > 0).any() else 1
    return "\n".join("".join(shades[min(5, math.ceil(5 * v / top))] for v in row) for row in grid)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--shape", default="A", choices=["A", "smiley"])
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    other_shape = "smiley" if a.shape == "A" else "A"
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        path, data = dataset_for(a.shape, Path(tmp))
        other_path, other_data = dataset_for(other_shape, Path(tmp))
        trainer, spent = train(path, data, a.seconds)
        other, other_spent = train(other_path, other_data, a.seconds)
    load_after = os.getloadavg()

    kw = dict(sampler="ddim", steps=50, seed=0)
    with torch.no_grad():
        ours = sample(trainer.ema.module, trainer.schedule, (N_SAMPLES, 2), clip=trainer.x0_clip, **kw)
        theirs = sample(other.ema.module, other.schedule, (N_SAMPLES, 2), clip=other.x0_clip, **kw)
    target = data.x
    idx = torch.randperm(len(target), generator=torch.Generator().manual_seed(1))[:N_SAMPLES]
    rows = [("the drawing's own points (best possible)", target[idx]),
            (f"model trained on {a.shape!r}, {trainer.step_count} steps in {spent:.1f} s", ours),
            (f"model trained on {other_shape!r}, {other.step_count} steps in {other_spent:.1f} s", theirs),
            ("Gaussian noise N(0, I)", torch.randn(N_SAMPLES, 2, generator=torch.Generator().manual_seed(2)))]
    d = DEFAULTS["drawing"]
    print(f"# {a.shape!r} drawn on a {drawing.CANVAS[0]}x{drawing.CANVAS[1]} canvas, brush {drawing.BRUSH} px: "
          f"{len(target)} points")
    print(f"preset: mlp-2d, batch {d['batch']}, steps {d['steps']}, lr {d['lr']}, EMA {d['ema_decay']}, "
          f"previews every {d['preview_every']}; budget {a.seconds:.0f} s per model, {a.threads} torch thread(s)")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}; "
          f"load average (1, 5, 15 min) before {tuple(round(v, 2) for v in load_before)}, "
          f"after {tuple(round(v, 2) for v in load_after)}")
    print(f"\n| samples (2000, DDIM 50, seed 0) scored against {a.shape!r} | near (within {RADIUS}) | chamfer |")
    print("| --- | ---: | ---: |")
    for label, pts in rows:
        near, chamfer = score(pts, target)
        print(f"| {label} | {near:.3f} | {chamfer:.3f} |")
    print(f"\nsamples of the {a.shape!r} model:\n```\n{picture(ours)}\n```")


if __name__ == "__main__":
    main()
