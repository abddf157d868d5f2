"""Run configuration: a few frozen dataclasses that round-trip through JSON.

The JSON form sits beside every checkpoint, so a checkpoint says exactly how it was made.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

PREDICTIONS = ("eps", "x0", "v")
# torch.compile modes; "reduce-overhead" adds CUDA graphs on a GPU (the same as "default" on a CPU)
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


@dataclass(frozen=True)
class ModelConfig:
    """Which denoiser (a name in `core.nets.NETS`) and its keyword arguments."""

    net: str = "mlp"
    params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class DiffusionConfig:
    """The noise schedule (a name in `core.schedules.SCHEDULES`), its length T, and what the net predicts."""

    schedule: str = "linear"
    T: int = 1000
    prediction: str = "eps"

    def __post_init__(self):
        if self.prediction not in PREDICTIONS:
            raise ValueError(f"prediction must be one of {PREDICTIONS}, got {self.prediction!r}")
        if not isinstance(self.T, int) or not 1 <= self.T <= 10_000:
            raise ValueError(f"T must be an integer between 1 and 10000, got {self.T!r}")


@dataclass(frozen=True)
class DataConfig:
    """A dataset name in `core.data.DATASETS` and its keyword arguments (e.g. a path on disk)."""

    name: str = "swiss_roll"
    params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings. Defaults suit the small built-in datasets on a laptop CPU."""

    steps: int = 2000
    batch_size: int = 256
    lr: float = 2e-3
    warmup_steps: int = 100           # linear warm-up, then cosine decay to lr * min_lr_ratio
    min_lr_ratio: float = 0.05
    weight_decay: float = 0.0
    grad_clip: float = 1.0            # max global grad norm; 0 disables
    ema_decay: float = 0.999
    min_snr_gamma: float | None = None  # Hang et al. 2023 loss weighting; None = plain MSE
    seed: int = 0
    preview_every: int = 200          # steps between sample previews (0 = never)
    preview_n: int = 16
    log_every: int = 10
    checkpoint_every: int = 0         # steps between checkpoints in the CLI (0 = only at the end)
    compile: bool | str = False       # torch.compile the model: False, True (= "default") or a COMPILE_MODES name
    amp: bool = True                  # bf16 autocast on CUDA; ignored elsewhere

    def __post_init__(self):
        if self.steps < 1:
            raise ValueError(f"steps must be at least 1, got {self.steps}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if not isinstance(self.compile, bool) and self.compile not in COMPILE_MODES:
            raise ValueError(f"compile must be true, false or one of {', '.join(COMPILE_MODES)}; got {self.compile!r}")

    @property
    def compile_mode(self) -> str | None:
        """The torch.compile mode this config asks for, or None for eager."""
        if self.compile is False:
            return None
        return "default" if self.compile is True else self.compile


@dataclass(frozen=True)
class RunConfig:
    """Everything needed to rebuild a model and its diffusion process."""

    model: ModelConfig = field(default_factory=ModelConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunConfig":
        parts = {"model": ModelConfig, "diffusion": DiffusionConfig, "data": DataConfig, "train": TrainConfig}
        unknown = set(d) - set(parts)
        if unknown:
            raise ValueError(f"unknown config sections {sorted(unknown)}; allowed: {sorted(parts)}")
        kwargs = {}
        for key, kind in parts.items():
            section = d.get(key, {})
            if not isinstance(section, dict):
                raise ValueError(f"config section {key!r} must be an object, got {type(section).__name__}")
            names = {f.name for f in dataclasses.fields(kind)}
            bad = set(section) - names
            if bad:
                raise ValueError(f"unknown keys {sorted(bad)} in config section {key!r}; allowed: {sorted(names)}")
            kwargs[key] = kind(**section)
        return cls(**kwargs)

    @classmethod
    def from_json(cls, text: str) -> "RunConfig":
        return cls.from_dict(json.loads(text))

    def replace(self, **sections) -> "RunConfig":
        return dataclasses.replace(self, **sections)
