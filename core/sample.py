"""Draw samples from a checkpoint: `python -m core.sample --checkpoint DIR --sampler ddim --steps 50 --n 16 --out x.png`.

Writes an `.npz` of the samples for any model (key `samples`, plus the settings) and, for image
models, a PNG grid beside it.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import torch

from .checkpoint import load, sampling_clip
from .device import pick_device
from .samplers import SAMPLERS, sample
from .schedules import make_schedule


def to_uint8_grid(x: torch.Tensor, nrow: int | None = None, pad: int = 1) -> np.ndarray:
    """Images (N, C, H, W) in [-1, 1] to one uint8 grid (rows * H, cols * W, C) with `pad` px gaps."""
    if x.ndim != 4:
        raise ValueError(f"expected images of shape (N, C, H, W), got {tuple(x.shape)}")
    n, c, h, w = x.shape
    nrow = nrow or math.ceil(math.sqrt(n))
    ncol = math.ceil(n / nrow)
    img = ((x.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    grid = torch.full((c, ncol * (h + pad) + pad, nrow * (w + pad) + pad), 255, dtype=torch.uint8)
    for k in range(n):
        r, q = divmod(k, nrow)
        grid[:, pad + r * (h + pad): pad + r * (h + pad) + h, pad + q * (w + pad): pad + q * (w + pad) + w] = img[k]
    return grid.permute(1, 2, 0).numpy()


def draw(checkpoint, *, sampler="ddim", steps=50, n=16, seed=0, device="auto", eta=0.0) -> tuple[torch.Tensor, dict]:
    """Load a checkpoint and draw n samples; returns (samples on CPU, the checkpoint's meta)."""
    dev = pick_device(device)
    model, config, meta = load(checkpoint, device=dev)
    model.eval()
    schedule = make_schedule(config.diffusion.schedule, config.diffusion.T)
    if not 1 <= steps <= schedule.T:
        raise ValueError(f"steps must be between 1 and T={schedule.T}, got {steps}")
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    opts = {"eta": eta} if sampler == "ddim" else {}
    shape = (n, *meta["sample_shape"])
    clip = sampling_clip(meta)
    x = sample(model, schedule, shape, sampler=sampler, seed=seed, steps=steps, device=dev,
               prediction=config.diffusion.prediction, clip=clip, **opts)
    return x.cpu(), meta


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m core.sample", description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True, help="checkpoint directory (model.safetensors + config.json)")
    p.add_argument("--sampler", default="ddim", choices=list(SAMPLERS))
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--eta", type=float, default=0.0, help="DDIM only: 0 deterministic .. 1 DDPM-like")
    p.add_argument("--n", type=int, default=16, help="number of samples")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", required=True, help="output file: .png (image models; an .npz is written beside it) or .npz")
    a = p.parse_args(argv)
    out = Path(a.out)
    if out.suffix.lower() not in (".png", ".npz"):
        p.error(f"--out must end in .png or .npz, got {out.name!r}")
    try:
        x, meta = draw(a.checkpoint, sampler=a.sampler, steps=a.steps, n=a.n, seed=a.seed, device=a.device, eta=a.eta)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out.parent.mkdir(parents=True, exist_ok=True)
    npz = out.with_suffix(".npz")
    np.savez_compressed(npz, samples=x.numpy(), sampler=a.sampler, steps=a.steps, seed=a.seed)
    written = [npz]
    if out.suffix.lower() == ".png":
        if x.ndim != 4:
            print(f"note: {meta.get('dataset', 'this')} model makes {tuple(x.shape[1:])}-shaped samples, not images; "
                  f"wrote only {npz}", file=sys.stderr)
        else:
            from PIL import Image
            Image.fromarray(to_uint8_grid(x).squeeze(-1) if x.shape[1] == 1 else to_uint8_grid(x)).save(out)
            written.insert(0, out)
    print("wrote " + ", ".join(str(w) for w in written))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
