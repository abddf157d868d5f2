"""Samplers: run the reverse process from pure noise to data, one `Step` record at a time.

Every sampler has the same signature and is a generator, so the UI can animate it and the
command line can simply run it to the end:

    sample(model, schedule, shape, *, steps, generator, device, prediction, x_T, clip, **opts)

It walks the timesteps `schedule.timesteps(steps, spacing)` = T > ... > 0 in pairs (t, s) (spacing
"linear" by default, or "quadratic": more steps at low noise) and yields, for
each pair, the state x_t it started from, the network's predicted x0 and eps at t, and x_s.
Noise is drawn on the CPU from `generator` and then moved, so a seed gives the same picture on
every device.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterator

import torch

from .device import autocast
from .forward import model_predictions, posterior_coefficients
from .schedules import NoiseSchedule


@dataclass(frozen=True)
class Step:
    """One reverse step t -> t_next (t_next < t; 0 is the data). Tensors are (B, ...) on the sampling device."""

    i: int                # step number, 0-based
    n: int                # total number of steps
    t: int
    t_next: int
    x_t: torch.Tensor     # state before the step
    x0: torch.Tensor      # predicted clean data at t
    eps: torch.Tensor     # predicted noise at t
    x_next: torch.Tensor  # state after the step (the sample itself when t_next == 0)


def _randn(shape, generator, device, dtype=torch.float32):
    """Standard normal noise drawn on the CPU from `generator` (the same numbers on every device), on `device`."""
    if torch.device(device).type == "cuda":
        # drawn straight into page-locked memory, so the copy to the GPU is queued without first copying the
        # draw there (pageable memory would make the copy wait for the stream); the same numbers as
        # torch.randn, which fills a new tensor with the same normal_
        z = torch.empty(shape, dtype=dtype, pin_memory=True).normal_(generator=generator)
        return z.to(device, non_blocking=True)
    return torch.randn(shape, generator=generator, dtype=dtype).to(device)


def _setup(schedule, shape, steps, generator, device, x_T, spacing="linear"):
    ts = schedule.timesteps(steps, spacing)
    if x_T is None:
        x = _randn(tuple(shape), generator, device)
    else:
        if tuple(x_T.shape) != tuple(shape):
            raise ValueError(f"x_T has shape {tuple(x_T.shape)}, expected {tuple(shape)}")
        x = x_T.to(device=device, dtype=torch.float32)
    return ts.tolist(), x


def _predict(model, schedule, x, t: int, prediction, clip, device):
    # t as a Python int: the schedule's coefficients are then views of its table on x's device, no gather.
    with torch.no_grad(), autocast(torch.device(device)):
        return model_predictions(model, schedule, x, t, prediction, clip)


def ddpm(model, schedule: NoiseSchedule, shape, *, steps: int | None = None, generator=None, device="cpu",
         prediction="eps", x_T=None, clip=None, variance: str = "posterior", spacing: str = "linear") -> Iterator[Step]:
    """Ancestral sampling (Ho et al. 2020, Algorithm 2) with jumps t -> s for fewer steps.

    variance="posterior": sigma^2 = beta-tilde (the posterior's own variance, DDPM's lower bound);
    variance="beta": sigma^2 = beta_{t|s} (the upper bound). Both were found to work in the paper. With
    an exact denoiser the lower bound still thins structure as fine as the noise that covers it, as it
    drops the posterior's uncertainty about x0 (1-D data N(0, 0.03^2), 1000 cosine steps: a spread of
    0.93x against the upper bound's 1.00x; benchmarks/RESULTS.md, rings).
    """
    if variance not in ("posterior", "beta"):
        raise ValueError(f"variance must be 'posterior' or 'beta', got {variance!r}")
    ts, x = _setup(schedule, shape, steps or schedule.T, generator, device, x_T, spacing)
    n = len(ts) - 1
    abar = schedule.alpha_bar.tolist()  # float64 as Python floats: the loop multiplies by them, moving nothing
    for i, (t, s) in enumerate(zip(ts[:-1], ts[1:])):
        x0, eps = _predict(model, schedule, x, t, prediction, clip, device)
        c0, ct, var = posterior_coefficients(abar[t], abar[s])
        if variance == "beta":
            var = 1.0 - abar[t] / abar[s]
        mean = c0 * x0 + ct * x
        x_next = mean + math.sqrt(var) * _randn(x.shape, generator, x.device) if s > 0 else mean
        yield Step(i, n, t, s, x, x0, eps, x_next)
        x = x_next


def ddim(model, schedule: NoiseSchedule, shape, *, steps: int = 50, generator=None, device="cpu",
         prediction="eps", x_T=None, clip=None, eta: float = 0.0, spacing: str = "linear") -> Iterator[Step]:
    """DDIM (Song et al. 2021, eq. 12). eta = 0 is the deterministic ODE-like sampler; eta = 1 matches DDPM."""
    if not 0.0 <= float(eta) <= 1.0:
        raise ValueError(f"eta must be between 0 and 1, got {eta}")
    ts, x = _setup(schedule, shape, steps, generator, device, x_T, spacing)
    n = len(ts) - 1
    abar = schedule.alpha_bar.tolist()  # float64 as Python floats: the loop multiplies by them, moving nothing
    for i, (t, s) in enumerate(zip(ts[:-1], ts[1:])):
        x0, eps = _predict(model, schedule, x, t, prediction, clip, device)
        ab_t, ab_s = abar[t], abar[s]
        sigma = eta * math.sqrt((1 - ab_s) / (1 - ab_t) * (1 - ab_t / ab_s))
        c_eps = math.sqrt(max(1 - ab_s - sigma**2, 0.0))
        x_next = math.sqrt(ab_s) * x0 + c_eps * eps
        if eta > 0 and s > 0:
            x_next = x_next + sigma * _randn(x.shape, generator, x.device)
        yield Step(i, n, t, s, x, x0, eps, x_next)
        x = x_next


def _dpm_solver_pp_2m(model, schedule: NoiseSchedule, shape, *, steps, generator, device, prediction, x_T, clip,
                      spacing, sde: bool) -> Iterator[Step]:
    """The loop both DPM-Solver++(2M) forms share; `sde` picks the update (see the two functions below)."""
    ts, x = _setup(schedule, shape, steps, generator, device, x_T, spacing)
    n = len(ts) - 1
    lam = (0.5 * schedule.log_snr).tolist()  # Python floats, like alpha-bar: nothing is read inside the loop
    abar = schedule.alpha_bar.tolist()
    x0_prev, h_prev = None, None
    for i, (t, s) in enumerate(zip(ts[:-1], ts[1:])):
        x0, eps = _predict(model, schedule, x, t, prediction, clip, device)
        if s == 0:
            x_next = x0
        else:
            h = lam[s] - lam[t]
            D = x0
            if x0_prev is not None:
                r = h_prev / h
                D = (1 + 1 / (2 * r)) * x0 - (1 / (2 * r)) * x0_prev
            sig_ratio = math.sqrt((1 - abar[s]) / (1 - abar[t]))
            alpha_s = math.sqrt(abar[s])
            if sde:
                x_next = sig_ratio * math.exp(-h) * x - alpha_s * math.expm1(-2 * h) * D \
                    + math.sqrt(1 - abar[s]) * math.sqrt(-math.expm1(-2 * h)) * _randn(x.shape, generator, x.device)
            else:
                x_next = sig_ratio * x - alpha_s * math.expm1(-h) * D
            h_prev = h
        yield Step(i, n, t, s, x, x0, eps, x_next)
        x0_prev, x = x0, x_next


def dpm_solver_pp_2m(model, schedule: NoiseSchedule, shape, *, steps: int = 20, generator=None, device="cpu",
                     prediction="eps", x_T=None, clip=None, spacing: str = "linear") -> Iterator[Step]:
    """DPM-Solver++(2M) (Lu et al. 2022, Algorithm 2): a second-order multistep solver of the probability-flow ODE.

    In half-log-SNR time lambda = log(alpha / sigma), with alpha = sqrt(abar), sigma = sqrt(1 - abar):
        x_s = (sigma_s / sigma_t) x_t - alpha_s (e^{-h} - 1) D,   h = lambda_s - lambda_t,
    where D is x0 at t (first step) or the extrapolation (1 + 1/2r) x0_t - (1/2r) x0_prev, r = h_prev / h.
    The last step (to t = 0, where lambda is infinite) returns D = x0 directly (first order, as k-diffusion does).
    """
    return _dpm_solver_pp_2m(model, schedule, shape, steps=steps, generator=generator, device=device,
                             prediction=prediction, x_T=x_T, clip=clip, spacing=spacing, sde=False)


def dpm_solver_pp_2m_sde(model, schedule: NoiseSchedule, shape, *, steps: int = 50, generator=None, device="cpu",
                         prediction="eps", x_T=None, clip=None, spacing: str = "linear") -> Iterator[Step]:
    """DPM-Solver++(2M) SDE (Lu et al. 2022, sec. 5; diffusers' "sde-dpmsolver++"): the second-order multistep
    solver of the reverse SDE instead of the ODE, fresh noise in every step as DDPM has.

    With h and D as in `dpm_solver_pp_2m` and z ~ N(0, I):
        x_s = (sigma_s / sigma_t) e^{-h} x_t + alpha_s (1 - e^{-2h}) D + sigma_s sqrt(1 - e^{-2h}) z.
    The noise corrects the errors of the network's score that a deterministic path integrates: on the
    shipped 2-D toys, 50 steps with quadratic spacing land about as close to the data as DDPM's 1000
    (benchmarks/RESULTS.md). The last step (to t = 0) returns x0, as the ODE solver's does.
    """
    return _dpm_solver_pp_2m(model, schedule, shape, steps=steps, generator=generator, device=device,
                             prediction=prediction, x_T=x_T, clip=clip, spacing=spacing, sde=True)


def ddpm_beta(model, schedule: NoiseSchedule, shape, **kwargs) -> Iterator[Step]:
    """DDPM with sigma^2 = beta_{t|s}, the upper bound of Ho et al. 2020 (`ddpm`'s variance="beta")."""
    return ddpm(model, schedule, shape, variance="beta", **kwargs)


SAMPLERS: dict[str, Callable[..., Iterator[Step]]] = {
    "ddpm": ddpm,
    "ddpm-beta": ddpm_beta,
    "ddim": ddim,
    "dpm++2m": dpm_solver_pp_2m,
    "dpm++2m-sde": dpm_solver_pp_2m_sde,
}

SAMPLER_LABELS = {
    "ddpm": "DDPM (ancestral, stochastic)",
    "ddpm-beta": "DDPM, σ² = β (upper-bound noise)",
    "ddim": "DDIM (deterministic at eta 0)",
    "dpm++2m": "DPM-Solver++ 2M (2nd-order ODE)",
    "dpm++2m-sde": "DPM-Solver++ 2M SDE (stochastic)",
}


ANCESTRAL = ("ddpm", "ddpm-beta")  # DDPM's two variances: made for all T steps, poor with few


def sampler_name(name: str) -> str:
    """The short name a sampler goes by in titles: 'DDIM', 'DPM-Solver++ 2M SDE' (its label without the gloss)."""
    return SAMPLER_LABELS.get(name, name.upper()).split(" (")[0]


def sampler_options(name: str, eta: float | None = 0.0, spacing: str = "linear") -> dict:
    """The keyword options sampler `name` takes from a setting: the spacing for every sampler, eta for DDIM."""
    return {"spacing": spacing, **({"eta": float(eta or 0.0)} if name == "ddim" else {})}


def get_sampler(name: str) -> Callable[..., Iterator[Step]]:
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; known: {', '.join(SAMPLERS)}")
    return SAMPLERS[name]


def final(steps: Iterator[Step]) -> torch.Tensor:
    """Run a sampler to the end and return the sample x_0."""
    last = None
    for last in steps:
        pass
    if last is None:
        raise ValueError("the sampler yielded no steps")
    return last.x_next


def sample(model, schedule, shape, *, sampler: str = "ddim", seed: int | None = 0, **kwargs) -> torch.Tensor:
    """Convenience: draw samples with a named sampler and an integer seed; returns x_0 (B, ...)."""
    g = torch.Generator().manual_seed(int(seed)) if seed is not None else None
    return final(get_sampler(sampler)(model, schedule, shape, generator=g, **kwargs))
