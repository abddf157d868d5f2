"""Draw samples from a checkpoint: `python -m core.sample --checkpoint DIR --sampler ddim --steps 50 --n 16 --out x.png`.

--out x.png writes a grid of the samples (image models; small images are scaled up with hard
pixels so the grid is at least 512 px wide), --out x.npz the raw samples of any model (key
`samples`, plus the settings). Progress and the time left go to stderr while it samples.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from .checkpoint import load, load_config, sampling_clip
from .config import COMPILE_MODES
from .device import describe_device, pick_device
from .progress import ProgressLine
from .samplers import SAMPLERS, final, get_sampler, sampler_options
from .schedules import SPACINGS, make_schedule
from .threads import add_threads_option, apply_threads

MIN_PNG_WIDTH = 512  # px: a grid of 8x8 digits is 73 px wide before scaling, too small to look at


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


def scale_up(grid: np.ndarray, min_width: int = MIN_PNG_WIDTH) -> np.ndarray:
    """Repeat each pixel by the smallest whole factor that makes the grid at least min_width wide (hard pixels)."""
    factor = max(1, math.ceil(min_width / grid.shape[1]))
    return grid.repeat(factor, axis=0).repeat(factor, axis=1)


class Compiled(torch.nn.Module):
    """torch.compile of a denoiser for sampling: the same shapes every step, so it compiles once.

    Each call starts a new CUDA-graph step and clones the output, which "reduce-overhead" would
    otherwise overwrite at the next call while a sampler's Step record still holds it.
    """

    def __init__(self, model: torch.nn.Module, mode: str = "default"):
        super().__init__()
        if mode not in COMPILE_MODES:
            raise ValueError(f"compile mode must be one of {', '.join(COMPILE_MODES)}, got {mode!r}")
        self.model = model
        self.fn = torch.compile(model, mode=None if mode == "default" else mode)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        torch.compiler.cudagraph_mark_step_begin()
        return self.fn(x, t).clone()


def draw(checkpoint, *, sampler="ddim", steps=50, n=16, seed=0, device="auto", eta=0.0, spacing="linear",
         progress=None, compile: str | None = None) -> tuple[torch.Tensor, dict]:
    """Load a checkpoint and draw n samples; returns (samples on CPU, the checkpoint's meta).

    progress: optional callable(fraction done, text) called after every sampler step;
    compile: a torch.compile mode (see COMPILE_MODES), or None for eager.
    """
    dev = pick_device(device)
    model, config, meta = load(checkpoint, device=dev)
    model.eval()
    if compile is not None:
        model = Compiled(model, compile)
    schedule = make_schedule(config.diffusion.schedule, config.diffusion.T)
    if not 1 <= steps <= schedule.T:
        raise ValueError(f"steps must be between 1 and T={schedule.T}, got {steps}")
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    opts = sampler_options(sampler, eta, spacing)
    shape = (n, *meta["sample_shape"])
    g = torch.Generator().manual_seed(int(seed))
    its = get_sampler(sampler)(model, schedule, shape, generator=g, steps=steps, device=dev,
                               prediction=config.diffusion.prediction, clip=sampling_clip(meta), **opts)
    if progress is not None:
        its = _reporting(its, progress)
    return final(its).cpu(), meta


def _reporting(steps, progress):
    for step in steps:
        progress((step.i + 1) / step.n, f"step {step.i + 1} of {step.n}")
        yield step


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m core.sample", description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True, help="checkpoint directory (model.safetensors + config.json)")
    p.add_argument("--sampler", default="ddim", choices=list(SAMPLERS), help="(default: ddim)")
    p.add_argument("--steps", type=int, default=50, help="sampler steps, 1..T (default: 50)")
    p.add_argument("--eta", type=float, default=0.0, help="DDIM only: 0 deterministic .. 1 DDPM-like (default: 0)")
    p.add_argument("--spacing", default="linear", choices=list(SPACINGS),
                   help="which timesteps a few-step sampler visits: " +
                        "; ".join(f"{k}: {v}" for k, v in SPACINGS.items()) + " (default: linear)")
    p.add_argument("--n", type=int, default=16, help="number of samples (default: 16)")
    p.add_argument("--seed", type=int, default=0, help="(default: 0)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps (default: auto)")
    p.add_argument("--compile", nargs="?", const="default", choices=COMPILE_MODES, metavar="MODE",
                   help=f"torch.compile the model; MODE: {', '.join(COMPILE_MODES)} (default when given: default)")
    add_threads_option(p)
    p.add_argument("--out", required=True, help="output file: .png (a grid; image models only) or .npz (any model)")
    a = p.parse_args(argv)
    out = Path(a.out)
    suffix = out.suffix.lower()
    if suffix not in (".png", ".npz"):
        p.error(f"--out must end in .png or .npz, got {out.name!r}")
    if a.eta and a.sampler != "ddim":  # as core.evaluate: an option the sampler would ignore is refused
        p.error(f"--eta is an option of ddim only, not of {a.sampler}: leave it out "
                "(ddpm and dpm++2m-sde add noise in every step already)")
    if not 0.0 <= a.eta <= 1.0:
        p.error(f"--eta must be between 0 and 1, got {a.eta:g}")
    try:
        apply_threads(a.threads)
        _, meta = load_config(a.checkpoint)
        shape = tuple(meta.get("sample_shape") or ())
        if suffix == ".png" and len(shape) != 3:
            raise ValueError(f"{meta.get('dataset', 'this')} model makes {shape}-shaped samples, not images: a PNG "
                             f"grid needs an image model; write the samples with --out {out.with_suffix('.npz')}")
        print(f"sampling {a.n} x {shape} with {a.sampler}, {a.steps} steps ({a.spacing} spacing), on "
              f"{describe_device(pick_device(a.device))}", file=sys.stderr, flush=True)
        line = ProgressLine()
        start = time.perf_counter()
        x, meta = draw(a.checkpoint, sampler=a.sampler, steps=a.steps, n=a.n, seed=a.seed, device=a.device,
                       eta=a.eta, spacing=a.spacing, progress=line, compile=a.compile)
        line.close()
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".npz":
        np.savez_compressed(out, samples=x.numpy(), sampler=a.sampler, steps=a.steps, eta=a.eta,
                            spacing=a.spacing, seed=a.seed)
    else:
        from PIL import Image

        grid = scale_up(to_uint8_grid(x))
        Image.fromarray(grid.squeeze(-1) if x.shape[1] == 1 else grid).save(out)
    print(f"wrote {out} ({time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
