"""Simple, interpretable features of 1-D signals, and the log-spectral distance between two sets.

Signals have no trained feature network, so their precision/recall and memorisation use a small
hand-made description: the log power in each low frequency bin, the standard deviation and the
peak amplitude. Shapes: signals (N, C, L) -> features (N, C * (bins + 2)).
"""
from __future__ import annotations

import math

import torch

from .metrics import flat64

MAX_BINS = 16  # low-frequency bins kept as features; the built-in signals have at most 6 cycles per window
_FLOOR = 1e-8   # power floor before the log: silence maps to a finite value


def power_spectrum(x) -> torch.Tensor:
    """Power |FFT|^2 / L per frequency of each (mean-removed) signal: (N, C, L) -> (N, C, L // 2 + 1), float64."""
    x = torch.as_tensor(x).detach().to("cpu", torch.float64)
    if x.ndim != 3:
        raise ValueError(f"expected signals (N, C, L), got shape {tuple(x.shape)}")
    x = x - x.mean(-1, keepdim=True)
    return torch.fft.rfft(x, dim=-1).abs() ** 2 / x.shape[-1]


def signal_features(x) -> torch.Tensor:
    """(N, C, L) -> (N, C * (bins + 2)): log10 power of frequency bins 1..bins, std, peak |x|."""
    x = torch.as_tensor(x).detach().to("cpu", torch.float64)
    spec = power_spectrum(x)
    bins = min(MAX_BINS, spec.shape[-1] - 1)
    logp = torch.log10(spec[..., 1:bins + 1] + _FLOOR)
    extra = torch.stack([x.std(-1), x.abs().amax(-1)], -1)
    return torch.cat([logp, extra], -1).reshape(x.shape[0], -1)


class Standardise:
    """z-scores with the mean and std of a reference set, so every feature counts alike in distances."""

    def __init__(self, reference):
        r = flat64(reference)
        self.mean = r.mean(0)
        self.std = r.std(0).clamp_min(1e-8)

    def __call__(self, x) -> torch.Tensor:
        return (flat64(x) - self.mean) / self.std


def log_spectral_distance(a, b) -> float:
    """RMS over frequencies of the difference of the two sets' mean power spectra, in dB.

    a (N, C, L), b (M, C, L): 0 for sets with the same mean spectrum; 10 dB is a factor 10 in power.
    """
    pa, pb = power_spectrum(a).mean(0), power_spectrum(b).mean(0)
    if pa.shape != pb.shape:
        raise ValueError(f"the sets have different signal shapes: {tuple(pa.shape)} and {tuple(pb.shape)} spectra")
    diff = 10 * (torch.log10(pa[..., 1:] + _FLOOR) - torch.log10(pb[..., 1:] + _FLOOR))  # skip DC: removed
    return float(math.sqrt(float((diff ** 2).mean())))
