"""Floors that mean something: real data scored against itself over several independent draws, and the
comparison of a model's figure with that floor whose interval counts the noise on both sides.

One real-vs-real draw at n = 2000 varies by 20-45 % of its own mean for a 2-D sliced Wasserstein
distance, so a ratio to a single draw is mostly noise. Here the floor is the mean and spread of
`FLOOR_DRAWS` real sets of the same size as the generated one, each scored exactly as the generated
set is (against the same reference). Where data can be drawn without limit (the seeded 2-D toys),
the sliced Wasserstein distance is measured against a `REFERENCE_POINTS` real reference, which
removes the noise of the reference side altogether.
"""
from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np
import torch

from .config import RunConfig
from .data import dataset_info, load_dataset

FLOOR_DRAWS = 8             # real sets the floor is the mean of
REFERENCE_POINTS = 200_000  # the large real reference of a drawable 2-D dataset
_REFERENCE_SEED = 1 << 40   # added to the data seed: the reference never coincides with a floor draw
_N_ANGLES = 180             # projection directions of the 2-D sliced distance (as metrics.sliced_wasserstein)
_ANGLE_CHUNK = 20           # directions sorted at once (200,000 x 20 float64 = 32 MB)

VERDICTS = {"same": "indistinguishable from data", "worse": "worse than data", "better": "beyond real data's own"}


def drawable(config: RunConfig) -> bool:
    """True when the dataset is generated from a seed, so fresh independent real sets can be drawn."""
    return "seed" in dataset_info(config.data.name, **dict(config.data.params)).params


def fresh_draw(config: RunConfig, n: int, seed: int) -> torch.Tensor:
    """n real examples of a drawable dataset, drawn with data seed `seed`: (n, ...)."""
    full = dict(dataset_info(config.data.name, **dict(config.data.params)).params)
    full["seed"] = int(seed)
    if "n" in full:
        full["n"] = int(n)
    x = load_dataset(config.data.name, **full).x
    if x.shape[0] < n:
        raise ValueError(f"{config.data.name} gave {x.shape[0]} examples, {n} were needed")
    return x[:n]


def draw_seeds(config: RunConfig, seed: int, draws: int = FLOOR_DRAWS) -> list[int]:
    """Data seeds of the held-out set (first) and of the floor draws: distinct from the training seed and
    from those of any other evaluation seed."""
    base = int(dict(dataset_info(config.data.name, **dict(config.data.params)).params).get("seed", 0))
    start = base + 1 + int(seed) * (draws + 1)
    return list(range(start, start + draws + 1))


# ---------------------------------------------------------------------------------------------
# the sliced Wasserstein-2 distance to a large reference, exactly


def _angles() -> torch.Tensor:
    a = torch.arange(_N_ANGLES, dtype=torch.float64) * (math.pi / _N_ANGLES)
    return torch.stack([torch.cos(a), torch.sin(a)], 1)


class SlicedReference:
    """SW_2 of any n-point 2-D set to a fixed (large) reference set, exact, in O(n) per projection.

    Along a direction the reference's quantile function G^-1 is a step function; with the cumulative
    integrals C1(u) = int_0^u G^-1 and C2(u) = int_0^u (G^-1)^2 at u = i/n, W_2^2 against an n-point
    set with sorted projections x_(i) is sum_i [x_(i)^2 / n - 2 x_(i) (C1(i/n) - C1((i-1)/n))
    + (C2(i/n) - C2((i-1)/n))]. The same 180 evenly spaced directions as `metrics.sliced_wasserstein`,
    so both give the same number for the same sets. The integrals are kept per n (a few MB).
    """

    def __init__(self, reference: torch.Tensor):
        ref = torch.as_tensor(reference).detach().to("cpu", torch.float64).reshape(reference.shape[0], -1)
        if ref.shape[1] != 2 or ref.shape[0] < 2:
            raise ValueError(f"a sliced reference needs (M >= 2, 2) points, got shape {tuple(ref.shape)}")
        self.reference = ref
        self.dirs = _angles()
        self._grids: OrderedDict[int, tuple[torch.Tensor, torch.Tensor]] = OrderedDict()

    @property
    def size(self) -> int:
        return self.reference.shape[0]

    def _grid(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-piece integrals (K, n) of G^-1 and (G^-1)^2 over ((i-1)/n, i/n]."""
        if n in self._grids:
            self._grids.move_to_end(n)
            return self._grids[n]
        m = self.size
        u = torch.arange(n + 1, dtype=torch.float64) / n
        j = (u * m).floor().long().clamp_max(m - 1)   # whole reference steps below u
        rest = u - j.double() / m                      # the part of step j + 1 that lies below u
        a_parts, b_parts = [], []
        for lo in range(0, self.dirs.shape[0], _ANGLE_CHUNK):
            # (k, m): each direction's projections contiguous, sorted along the last dimension
            # numpy's sort: 3-4x faster than torch's here on one thread (0.75 s against 2.1-3 s per chunk)
            proj = torch.from_numpy(np.sort((self.dirs[lo:lo + _ANGLE_CHUNK] @ self.reference.T).numpy(), axis=1))
            zero = proj.new_zeros(proj.shape[0], 1)
            s1 = torch.cat([zero, proj.cumsum(1)], 1) / m
            s2 = torch.cat([zero, (proj * proj).cumsum(1)], 1) / m
            step = proj[:, j]
            a_parts.append((s1[:, j] + rest * step).diff(dim=1))
            b_parts.append((s2[:, j] + rest * step * step).diff(dim=1))
        grid = (torch.cat(a_parts, 0), torch.cat(b_parts, 0))  # (K, n)
        self._grids[n] = grid
        while len(self._grids) > 4:
            self._grids.popitem(last=False)
        return grid

    def __call__(self, x) -> float:
        """SW_2 between the points x (n, 2) and the reference. Units: those of the data."""
        x = torch.as_tensor(x).detach().to("cpu", torch.float64).reshape(len(x), -1)
        if x.shape[1] != 2 or x.shape[0] < 1:
            raise ValueError(f"expected (n >= 1, 2) points, got shape {tuple(x.shape)}")
        n = x.shape[0]
        a, b = self._grid(n)
        px = torch.from_numpy(np.sort((self.dirs @ x.T).numpy(), axis=1))  # (K, n)
        w2 = (px * px / n - 2 * px * a + b).sum(1).clamp_min(0.0)
        return float(w2.mean().sqrt())


_REFERENCES: OrderedDict[tuple, SlicedReference] = OrderedDict()  # a read-only cache: a few datasets' references


def sliced_reference(config: RunConfig, seed: int = 0, size: int = REFERENCE_POINTS) -> SlicedReference:
    """The large real reference of a drawable 2-D dataset, cached per dataset and seed."""
    info = dataset_info(config.data.name, **dict(config.data.params))
    key = (config.data.name, tuple(sorted((k, repr(v)) for k, v in info.params.items())), int(seed), int(size))
    if key not in _REFERENCES:
        base = int(info.params.get("seed", 0))
        _REFERENCES[key] = SlicedReference(fresh_draw(config, size, base + _REFERENCE_SEED + int(seed)))
        while len(_REFERENCES) > 4:
            _REFERENCES.popitem(last=False)
    return _REFERENCES[key]


# ---------------------------------------------------------------------------------------------
# the floor and the comparison with it


def compare(value: float, replicates, floor_values, *, how: str, better: str, level: float = 0.9) -> dict:
    """A figure against its floor, with an interval that counts the noise of both sides.

    value: the model's figure; replicates: its bootstrap replicates; floor_values: the same figure for
    several independent real sets of the same size (each scored as the model's set is).
    how: "ratio" (value / floor mean: distances that are positive) or "difference" (value - floor mean).
    The interval is the central `level` range of every pairing of a (re-centred) bootstrap replicate
    with one real draw: a real set scored as if generated lands inside it, so an interval that covers
    1 (ratio) or 0 (difference) reads "indistinguishable from data" at this n.
    better: "lower", "higher" or "closer to floor", which way "worse than data" lies.
    Returns {"floor", "floor_sd", "floor_draws", "how", "estimate", "interval", "verdict"}.
    """
    if how not in ("ratio", "difference"):
        raise ValueError(f"how must be 'ratio' or 'difference', got {how!r}")
    f = np.asarray(floor_values, dtype=float)
    f = f[np.isfinite(f)]
    out = {"floor": float(f.mean()) if f.size else None, "floor_sd": float(f.std(ddof=1)) if f.size > 1 else None,
           "floor_draws": f.tolist(), "how": how, "estimate": None, "interval": None, "verdict": None}
    reps = np.asarray(replicates, dtype=float)
    reps = reps[np.isfinite(reps)]
    if f.size < 2 or reps.size < 2 or not math.isfinite(value) or (how == "ratio" and f.min() <= 0):
        return out
    g = value + reps - np.median(reps)  # the bootstrap's spread, centred on the point estimate
    pairs = g[:, None] / f[None, :] if how == "ratio" else g[:, None] - f[None, :]
    lo, hi = np.quantile(pairs, [(1 - level) / 2, (1 + level) / 2])
    null = 1.0 if how == "ratio" else 0.0
    estimate = value / f.mean() if how == "ratio" else value - f.mean()
    lo, hi = min(lo, estimate), max(hi, estimate)
    if lo <= null <= hi:
        verdict = "same"
    elif better == "lower":
        verdict = "worse" if lo > null else "better"
    elif better == "higher":
        verdict = "worse" if hi < null else "better"
    else:  # closer to the floor is better: off either way is a difference from the data
        verdict = "worse"
    out.update(estimate=float(estimate), interval=[float(lo), float(hi)], verdict=verdict)
    return out
