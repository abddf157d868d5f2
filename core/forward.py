"""The forward (noising) process and the algebra that links eps, x0 and v predictions.

Notation follows Ho et al. 2020 (DDPM); t = 0 is the data, t = 1..T are noisy states.
All functions accept a per-sample timestep tensor t of shape (B,) (or a python int) and work on
any data rank: points (B, 2), signals (B, 1, L), images (B, C, H, W).
"""
from __future__ import annotations

import math

import torch

from .schedules import NoiseSchedule, broadcast, gather


def q_sample(schedule: NoiseSchedule, x0: torch.Tensor, t, noise: torch.Tensor) -> torch.Tensor:
    """Closed form q(x_t | x_0): x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps  (DDPM eq. 4)."""
    return schedule.coef("sqrt_alpha_bar", t, x0) * x0 + schedule.coef("sqrt_one_minus_alpha_bar", t, x0) * noise


def q_step(schedule: NoiseSchedule, x_prev: torch.Tensor, t, noise: torch.Tensor) -> torch.Tensor:
    """One step of the Markov chain q(x_t | x_{t-1}): x_t = sqrt(1 - beta_t) x_{t-1} + sqrt(beta_t) eps (DDPM eq. 2).

    This is the "noise addition layer": applied t times it reaches the same distribution as q_sample.
    """
    beta = schedule.coef("beta", t, x_prev)
    return (1.0 - beta).sqrt() * x_prev + beta.sqrt() * noise


def q_chain(schedule: NoiseSchedule, x0: torch.Tensor, t: int, generator: torch.Generator | None = None,
            keep: list[int] | None = None) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
    """Apply q_step for s = 1..t with fresh noise each step; returns x_t and the states at steps in `keep`."""
    t = schedule.check_t(t)
    keep_set = set(keep or ())
    kept = {0: x0.clone()} if 0 in keep_set else {}
    x = x0
    for s in range(1, t + 1):
        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device="cpu").to(x.device)
        x = q_step(schedule, x, s, noise)
        if s in keep_set:
            kept[s] = x.clone()
    return x, kept


def q_posterior(schedule: NoiseSchedule, x0: torch.Tensor, x_t: torch.Tensor, t, s=None):
    """Mean and variance of q(x_s | x_t, x_0) for s < t (s = t - 1 by default; DDPM eq. 6-7).

    For a jump t -> s the effective step has alpha_{t|s} = abar_t / abar_s and beta_{t|s} = 1 - alpha_{t|s}:
        mean = sqrt(abar_s) beta_{t|s} / (1 - abar_t) x_0 + sqrt(alpha_{t|s}) (1 - abar_s) / (1 - abar_t) x_t
        var  = (1 - abar_s) / (1 - abar_t) beta_{t|s}
    Returns (mean, variance) with the variance shaped to broadcast against x_t.
    """
    if s is None:
        s = t - 1
    # coefficients in float64: 1 - abar_t loses most of its digits in float32 near t = 1
    ab_t = gather(schedule.alpha_bar, t, x_t.shape[0])
    ab_s = gather(schedule.alpha_bar, s, x_t.shape[0])
    alpha_ts = ab_t / ab_s
    beta_ts = 1.0 - alpha_ts
    c0 = ab_s.sqrt() * beta_ts / (1.0 - ab_t)
    ct = alpha_ts.sqrt() * (1.0 - ab_s) / (1.0 - ab_t)
    var = (1.0 - ab_s) / (1.0 - ab_t) * beta_ts
    return broadcast(c0, x0) * x0 + broadcast(ct, x_t) * x_t, broadcast(var, x_t)


def posterior_coefficients(ab_t: float, ab_s: float) -> tuple[float, float, float]:
    """(c0, ct, var) of q(x_s | x_t, x_0) for a jump t -> s from abar_t and abar_s: mean = c0 x_0 + ct x_t.

    The formulas of q_posterior in Python floats (float64), for a sampler that multiplies by them
    without moving anything between host and device.
    """
    alpha_ts = ab_t / ab_s
    beta_ts = 1.0 - alpha_ts
    return (math.sqrt(ab_s) * beta_ts / (1.0 - ab_t), math.sqrt(alpha_ts) * (1.0 - ab_s) / (1.0 - ab_t),
            (1.0 - ab_s) / (1.0 - ab_t) * beta_ts)


# --- conversions between what a network may predict -----------------------------------------

def x0_from_eps(schedule, x_t, t, eps):
    """x_0 = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)."""
    return (x_t - schedule.coef("sqrt_one_minus_alpha_bar", t, x_t) * eps) / schedule.coef("sqrt_alpha_bar", t, x_t)


def eps_from_x0(schedule, x_t, t, x0):
    """eps = (x_t - sqrt(abar_t) x_0) / sqrt(1 - abar_t)."""
    return (x_t - schedule.coef("sqrt_alpha_bar", t, x_t) * x0) / schedule.coef("sqrt_one_minus_alpha_bar", t, x_t)


def v_from(schedule, x0, t, eps):
    """v = sqrt(abar_t) eps - sqrt(1 - abar_t) x_0 (Salimans & Ho 2022)."""
    return schedule.coef("sqrt_alpha_bar", t, x0) * eps - schedule.coef("sqrt_one_minus_alpha_bar", t, x0) * x0


def x0_eps_from_v(schedule, x_t, t, v):
    """Invert v: x_0 = sqrt(abar) x_t - sqrt(1 - abar) v, eps = sqrt(1 - abar) x_t + sqrt(abar) v."""
    a = schedule.coef("sqrt_alpha_bar", t, x_t)
    b = schedule.coef("sqrt_one_minus_alpha_bar", t, x_t)
    return a * x_t - b * v, b * x_t + a * v


def target_for(prediction: str, schedule, x0, t, eps) -> torch.Tensor:
    """The regression target of a network that predicts `prediction` ("eps", "x0" or "v")."""
    if prediction == "eps":
        return eps
    if prediction == "x0":
        return x0
    if prediction == "v":
        return v_from(schedule, x0, t, eps)
    raise ValueError(f"prediction must be 'eps', 'x0' or 'v', got {prediction!r}")


def predictions_from_output(schedule, x_t, t, output, prediction: str):
    """(x0, eps) implied by a network output that predicts `prediction`."""
    if prediction == "eps":
        return x0_from_eps(schedule, x_t, t, output), output
    if prediction == "x0":
        return output, eps_from_x0(schedule, x_t, t, output)
    if prediction == "v":
        return x0_eps_from_v(schedule, x_t, t, output)
    raise ValueError(f"prediction must be 'eps', 'x0' or 'v', got {prediction!r}")


def model_predictions(model, schedule, x_t, t, prediction: str = "eps", clip: float | None = None):
    """Run the denoiser once: returns (x0, eps), with x0 optionally clipped to [-clip, clip].

    When x0 is clipped, eps is recomputed from the clipped x0 so the two stay consistent.
    """
    # an int t stays an int for the coefficients (views of the schedule's table, no gather); the net gets (B,)
    tt = torch.full((x_t.shape[0],), t, dtype=torch.long, device=x_t.device) if isinstance(t, int) else t
    out = model(x_t, tt).to(x_t.dtype)
    x0, eps = predictions_from_output(schedule, x_t, t, out, prediction)
    if clip is not None:
        x0 = x0.clamp(-clip, clip)
        eps = eps_from_x0(schedule, x_t, t, x0)
    return x0, eps


def snr_weight(schedule, t, prediction: str, gamma: float, like: torch.Tensor) -> torch.Tensor:
    """Min-SNR-gamma loss weight (Hang et al. 2023), expressed for the given prediction target."""
    snr = schedule.coef("snr", t, like)
    clipped = torch.clamp(snr, max=gamma)
    if prediction == "eps":
        return clipped / snr
    if prediction == "x0":
        return clipped
    if prediction == "v":
        return clipped / (snr + 1.0)
    raise ValueError(f"prediction must be 'eps', 'x0' or 'v', got {prediction!r}")
