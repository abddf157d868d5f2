"""Denoisers that take (x_t, t): the `NETS` registry, `build_model`, and named `PRESETS`.

Every net is built from a `ModelConfig` (a name in NETS plus keyword params) and the shape of one
sample, e.g. (2,) for points, (1, 64) for signals, (3, 32, 32) for images, and is called as
`model(x_t, t)` with x_t (B, *sample_shape) and t a LongTensor (B,) in 1..T (or an int), returning
a tensor shaped like x_t.
"""
from __future__ import annotations

import inspect
from contextlib import nullcontext
from typing import Sequence

import torch
from torch import nn

from ..config import ModelConfig
from .base import KINDS, Denoiser
from .conv1d import Conv1dDenoiser
from .embeddings import StepEmbedding, frequencies, timestep_embedding
from .gru import GRUDenoiser
from .mlp import MLPDenoiser
from .unet import UNet

NETS: dict[str, type[Denoiser]] = {
    "unet": UNet,
    "mlp": MLPDenoiser,
    "gru": GRUDenoiser,
    "conv1d": Conv1dDenoiser,
}

# Sizes chosen so CPU training is practical and each checkpoint (float32) stays a few MB.
PRESETS: dict[str, ModelConfig] = {
    "mlp-2d": ModelConfig("mlp", {"width": 128, "blocks": 4, "fourier_features": 64, "fourier_scale": 1.0}),
    # Half the blocks: each step costs about half as much, so a short run takes more of them. With the cosine
    # schedule, 1,600 steps of 384 bring swiss_roll to the 2-D quality goal in 9.3 s on 2 CPU cores
    # (benchmarks/toy_time_to_quality.py): the Train tab's 2-D default.
    "mlp-2d-small": ModelConfig("mlp", {"width": 128, "blocks": 2, "fourier_features": 64, "fourier_scale": 1.0}),
    "unet-digits": ModelConfig("unet", {"base": 32, "channel_mult": [1, 2], "blocks": 2, "attn_resolutions": [4]}),
    "unet-shapes": ModelConfig("unet", {"base": 32, "channel_mult": [1, 2, 2], "blocks": 2, "attn_resolutions": [8]}),
    "unet-small": ModelConfig("unet", {"base": 32, "channel_mult": [1, 2], "blocks": 1, "attn_resolutions": []}),
    "gru-signals": ModelConfig("gru", {"hidden": 128, "layers": 2}),
    "conv1d-signals": ModelConfig("conv1d", {"channels": 64, "blocks": 8, "dilations": [1, 2, 4, 8]}),
}

# The sample shape each preset is meant for (any shape of the right kind works; this one is for the table).
PRESET_SHAPES: dict[str, tuple[int, ...]] = {
    "mlp-2d": (2,),
    "mlp-2d-small": (2,),
    "unet-digits": (1, 8, 8),
    "unet-shapes": (3, 32, 32),
    "unet-small": (1, 16, 16),
    "gru-signals": (1, 64),
    "conv1d-signals": (1, 64),
}


def net_params(net: str) -> dict[str, object]:
    """The keyword params a net accepts, with their defaults."""
    cls = _net_class(net)
    sig = inspect.signature(cls.__init__)
    return {n: p.default for n, p in sig.parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}


def _net_class(net: str) -> type[Denoiser]:
    if net not in NETS:
        raise ValueError(f"unknown net {net!r}; known: {', '.join(NETS)}")
    return NETS[net]


def build_model(model_config: ModelConfig, sample_shape: Sequence[int], seed: int | None = None) -> nn.Module:
    """Build the net a ModelConfig names for samples of `sample_shape` (no batch axis).

    seed: if given, initialise from that seed without touching the global RNG; otherwise the
    global torch RNG is used (so `torch.manual_seed` before the call also makes it reproducible).
    """
    cls = _net_class(model_config.net)
    params = dict(model_config.params)
    allowed = net_params(model_config.net)
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ValueError(f"unknown params {unknown} for net {model_config.net!r}; allowed: {', '.join(allowed)}")
    shape = tuple(sample_shape)
    if len(shape) != KINDS[cls.kind]:
        fits = [name for name, c in NETS.items() if KINDS[c.kind] == len(shape)]
        raise ValueError(
            f"net {model_config.net!r} is for {cls.kind} data and cannot take samples of shape {shape}; "
            f"nets for that shape: {', '.join(fits) or 'none'}"
        )
    ctx = torch.random.fork_rng(devices=[]) if seed is not None else nullcontext()
    with ctx:
        if seed is not None:
            torch.manual_seed(seed)
        return cls(shape, **params)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of scalar parameters (buffers excluded)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def preset_rows() -> list[dict]:
    """One row per preset: name, net, sample shape, parameter count and float32 weight size in MB."""
    rows = []
    for name, cfg in PRESETS.items():
        model = build_model(cfg, PRESET_SHAPES[name], seed=0)
        n = count_parameters(model)
        size = sum(t.numel() * t.element_size() for t in model.state_dict().values())
        rows.append({"preset": name, "net": cfg.net, "sample_shape": PRESET_SHAPES[name], "params": n,
                     "megabytes": size / 1e6})
    return rows


def preset_table() -> str:
    """The presets as a Markdown table (for the README and the UI)."""
    lines = ["| preset | net | sample shape | parameters | weights (MB, float32) |", "| --- | --- | --- | ---: | ---: |"]
    for r in preset_rows():
        shape = "(" + ", ".join(map(str, r["sample_shape"])) + (",)" if len(r["sample_shape"]) == 1 else ")")
        lines.append(f"| {r['preset']} | {r['net']} | {shape} | {r['params']:,} | {r['megabytes']:.1f} |")
    return "\n".join(lines)


__all__ = [
    "NETS", "PRESETS", "PRESET_SHAPES", "build_model", "count_parameters", "net_params", "preset_rows",
    "preset_table", "timestep_embedding", "frequencies", "StepEmbedding", "UNet", "MLPDenoiser",
    "GRUDenoiser", "Conv1dDenoiser",
]
