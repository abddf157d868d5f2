"""FID, Inception Score and KID through torchmetrics, computed on features extracted once.

A feature network (core.extractors) turns images into features and logits a single time; these
functions hand the stored features to torchmetrics through a pass-through module. That keeps the
arithmetic torchmetrics' own while the bootstrap reuses features instead of re-running the network.

Inputs: features (N, D) and logits (N, K) as tensors or arrays; outputs are plain floats.
"""
from __future__ import annotations

import warnings

import torch
from torch import nn

# torchmetrics (and the scipy.signal it pulls in) is imported where a figure is computed, not at import:
# it took 2-6 s of the app's start-up, for a tab that computes nothing until asked.

from .metrics import flat64


class Precomputed(nn.Module):
    """Pass-through "feature network": torchmetrics reads `num_features` and gets the features back."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = int(num_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _quiet(make):
    # IS and KID warn on construction that they keep every feature in memory; ours are small, by design
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
        return make()


class FID:
    """FID against fixed real features; call it with fake features (N, D) -> float. Reuse across rounds."""

    def __init__(self, real):
        real = flat64(real)
        if real.shape[0] < 2:
            raise ValueError("FID needs at least 2 real samples")
        self.dim = real.shape[1]
        from torchmetrics.image.fid import FrechetInceptionDistance

        self.metric = FrechetInceptionDistance(feature=Precomputed(self.dim), reset_real_features=False)
        self.metric.set_dtype(torch.float64)
        self.metric.update(real, real=True)

    def __call__(self, fake) -> float:
        fake = flat64(fake)
        if fake.shape[1] != self.dim:
            raise ValueError(f"fake features have {fake.shape[1]} dimensions, the real ones {self.dim}")
        if fake.shape[0] < 2:
            raise ValueError("FID needs at least 2 generated samples")
        self.metric.reset()  # keeps the real statistics (reset_real_features=False)
        self.metric.update(fake, real=False)
        return float(self.metric.compute())


def frechet_distance(real, fake) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (N, D), (M, D).

    d^2 = |mu_r - mu_f|^2 + tr(S_r + S_f - 2 (S_r S_f)^1/2) (Heusel et al. 2017), in squared feature units.
    """
    return FID(real)(fake)


def inception_score(logits, *, splits: int = 1, seed: int = 0) -> tuple[float, float]:
    """exp(E_x KL(p(y|x) || p(y))) from classifier logits (N, K): (mean, std over splits).

    One split (the default) uses all N samples for the marginal p(y), the least biased estimate;
    the conventional 10 splits give smaller, noisier marginals. Ranges from 1 to K.
    """
    logits = flat64(logits)
    if not 1 <= splits <= logits.shape[0]:
        raise ValueError(f"splits must be between 1 and the number of samples {logits.shape[0]}, got {splits}")
    from torchmetrics.image.inception import InceptionScore

    metric = _quiet(lambda: InceptionScore(feature=Precomputed(logits.shape[1]), splits=splits))
    metric.update(logits)
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*degrees of freedom.*")  # the std of one split
        torch.manual_seed(int(seed))  # torchmetrics shuffles with the global RNG before splitting
        mean, std = metric.compute()
    return float(mean), float(std) if splits > 1 else 0.0


class KID:
    """Kernel Inception Distance (unbiased MMD^2, cubic polynomial kernel) against fixed real features."""

    def __init__(self, real, *, subset_size: int | None = None, subsets: int | None = None, seed: int = 0):
        self.real = flat64(real)
        self.subset_size, self.subsets, self.seed = subset_size, subsets, int(seed)

    def __call__(self, fake) -> float:
        return self.with_std(fake)[0]

    def with_std(self, fake) -> tuple[float, float]:
        """(mean, std) over random subsets; with subset_size = the smaller set it is the full U-statistic."""
        fake = flat64(fake)
        if fake.shape[1] != self.real.shape[1]:
            raise ValueError(f"fake features have {fake.shape[1]} dimensions, the real ones {self.real.shape[1]}")
        m = min(self.real.shape[0], fake.shape[0])
        size = min(self.subset_size or 1000, m)
        if size < 2:
            raise ValueError("KID needs at least 2 samples in each set")
        # subsets only help when they are smaller than the sets; otherwise one subset is the whole set
        subsets = self.subsets or (1 if size == m else 50)
        from torchmetrics.image.kid import KernelInceptionDistance

        metric = _quiet(lambda: KernelInceptionDistance(feature=Precomputed(self.real.shape[1]),
                                                        subsets=subsets, subset_size=size))
        metric.update(self.real, real=True)
        metric.update(fake, real=False)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            mean, std = metric.compute()
        return float(mean), float(std)


def kernel_inception_distance(real, fake, *, subset_size: int | None = None, subsets: int | None = None,
                              seed: int = 0) -> tuple[float, float]:
    """KID between feature sets (N, D) and (M, D): (mean, std over subsets)."""
    return KID(real, subset_size=subset_size, subsets=subsets, seed=seed).with_std(fake)
