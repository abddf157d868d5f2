"""Tiny trained checkpoints of every data kind, for the Reverse tab's tests.

A few dozen training steps of a small net: far from a good model, but a real checkpoint written by
`core.training.Trainer` and `core.checkpoint.save`, loaded the same way the shipped ones are.
"""
from __future__ import annotations

from pathlib import Path

import torch

from core.config import DataConfig, DiffusionConfig, ModelConfig, RunConfig, TrainConfig
from core.data import load_dataset
from core.training import Trainer

# name -> (dataset, dataset params, net config, T)
SPECS = {
    "tiny-digits": ("digits", {}, ModelConfig("unet", {"base": 16, "channel_mult": [1, 2], "blocks": 1,
                                                       "attn_resolutions": []}), 200),
    "tiny-points": ("gaussians8", {"n": 2000, "seed": 0}, ModelConfig("mlp", {"width": 64, "blocks": 2,
                                                                               "fourier_features": 16}), 100),
    "tiny-signals": ("signals", {"n": 512, "length": 32, "seed": 0},
                     ModelConfig("conv1d", {"channels": 16, "blocks": 2, "dilations": [1, 2]}), 100),
}
TRAIN_STEPS = 30


def make_checkpoints(folder: str | Path, steps: int = TRAIN_STEPS) -> dict[str, Path]:
    """Train and save one tiny model per data kind under `folder`; returns {name: checkpoint path}."""
    folder = Path(folder)
    out = {}
    with torch.random.fork_rng(devices=[]):
        for name, (data_name, params, model, T) in SPECS.items():
            config = RunConfig(model=model, diffusion=DiffusionConfig("linear", T, "eps"),
                               data=DataConfig(data_name, params),
                               train=TrainConfig(steps=steps, batch_size=32, lr=2e-3, warmup_steps=5,
                                                 preview_every=0, log_every=10, seed=0))
            trainer = Trainer(config, load_dataset(data_name, **params), "cpu")
            for _ in range(steps):
                trainer.step()
            out[name] = trainer.save(folder / name, train_state=False)
    return out
