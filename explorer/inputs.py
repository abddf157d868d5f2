"""What a view starts from: a photo, a dataset sample or an upload, as one `Input` record.

Datasets made here are small display-sized copies of the built-in ones (those that need no files
on disk), made once and cached: they are read-only and shared by every user.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import torch

from core.data import dataset_info, list_datasets, load_dataset

from .images import load_image

DISPLAY_SIZE = {"points": 600, "image": 64, "signal": 64}  # how many samples to make for display


@dataclass(frozen=True, eq=False)
class Input:
    """Clean data x_0 as a batch: images (1, C, H, W), points (N, 2), signals (1, 1, L)."""

    kind: str  # "image", "points" or "signal"
    x0: torch.Tensor
    label: str

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.x0.shape)

    def __deepcopy__(self, memo) -> "Input":
        # Read-only: Gradio deep-copies a gr.State's start value into every session (0.8 MB each for a photo).
        return self


def builtin_datasets() -> list[str]:
    """Datasets that are made in code (no files needed), in registry order."""
    return [n for n in list_datasets() if "path" not in dataset_info(n).params]


@functools.lru_cache(maxsize=None)
def display_dataset(name: str):
    """A small copy of built-in dataset `name` (fixed seed), made once."""
    if name not in builtin_datasets():
        raise ValueError(f"unknown built-in dataset {name!r}; choose one of {', '.join(builtin_datasets())}")
    info = dataset_info(name)
    params = {"n": DISPLAY_SIZE[info.kind]} if "n" in info.params else {}
    return load_dataset(name, **params)


def dataset_size(name: str) -> int:
    return len(display_dataset(name))


def from_dataset(name: str, index: int = 0) -> Input:
    """Points: the whole cloud. Images and signals: sample number `index`."""
    data = display_dataset(name)
    if data.kind == "points":
        return Input("points", data.x, name)
    index = int(index)
    if not 0 <= index < len(data):
        raise ValueError(f"index must be between 0 and {len(data) - 1} for {name}, got {index}")
    label = f"{name} #{index}"
    if data.labels is not None and data.class_names:
        label += f" · {data.class_names[int(data.labels[index])]}"
    return Input(data.kind, data.x[index: index + 1], label)


def from_image_file(path: str | Path, label: str | None = None) -> Input:
    """A photo file (shipped or uploaded) as an image Input; ValueError for anything unreadable."""
    x = load_image(path)
    return Input("image", x[None], label or Path(path).stem)
