"""Which checkpoints a tab can sample, and how they are named: shared by the Reverse and Evaluate tabs."""
from __future__ import annotations

from pathlib import Path

from core.nets.base import KINDS

RANK_KIND = {rank: kind for kind, rank in KINDS.items()}   # 1 -> points, 2 -> signal, 3 -> image


def kind_of(entry: dict) -> str:
    shape = entry.get("sample_shape") or []
    return RANK_KIND.get(len(shape), "image")


def checkpoint_label(entry: dict) -> str:
    """'gaussians8 · checkpoints' or 'my-run · digits · runs': name, dataset if it differs, folder."""
    parts = [entry["name"]]
    if entry.get("dataset") and entry["dataset"] != entry["name"]:
        parts.append(str(entry["dataset"]))
    if entry.get("root"):
        parts.append(Path(entry["root"]).name)
    return " · ".join(parts)


def sample_words(shape) -> str:
    """What one sample is, in words: '2-D points', '32×32 images, 1 channel', 'signals of 64 values,
    1 channel'; another shape as its sizes ('samples 5')."""
    shape = tuple(int(s) for s in shape)
    if shape == (2,):
        return "2-D points"
    if len(shape) == 3:
        c, h, w = shape
        return f"{h}×{w} images, {c} channel{'s' if c != 1 else ''}"
    if len(shape) == 2:
        c, n = shape
        return f"signals of {n} values, {c} channel{'s' if c != 1 else ''}"
    return "samples " + "×".join(map(str, shape))


def checkpoint_summary(config, meta: dict) -> str:
    """One markdown line about a checkpoint: dataset, net, sample shape, schedule, target, training.

    A run saved before its planned end (stopped, interrupted, saved mid-run) says so: its samples
    are those of a model still learning.
    """
    line = (f"**{meta.get('dataset', config.data.name)}** · {config.model.net} · "
            f"{sample_words(meta['sample_shape'])} · T = {config.diffusion.T} ({config.diffusion.schedule}) · "
            f"predicts {config.diffusion.prediction}")
    trained, planned = meta.get("steps"), config.train.steps
    if isinstance(trained, int):
        line += (f" · trained {trained:,} of {planned:,} planned steps" if trained < planned
                 else f" · trained {trained:,} steps")
    return line


class CheckpointPicker:
    """What every tab with a checkpoint dropdown needs: the app context and its samplable checkpoints."""

    def __init__(self, ctx):
        self.ctx = ctx

    def checkpoints(self, fresh: bool = False) -> list[dict]:
        """The checkpoints that can be sampled (the context rescans at most every couple of seconds, or `fresh`)."""
        return self.ctx.samplable_checkpoints(fresh)

    def choices(self, fresh: bool = False) -> list[tuple[str, str]]:
        """(label, path) pairs for a dropdown."""
        return [(checkpoint_label(e), e["path"]) for e in self.checkpoints(fresh)]
