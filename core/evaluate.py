"""Evaluate a checkpoint: draw n samples and score them against real data, every figure with its floor.

    python -m core.evaluate --checkpoint DIR --n 1000 [--json] [--sampler ddim --steps 50 --seed 0 --device auto]

`evaluate_checkpoint(...)` returns plain JSON-able results grouped by figure. Each figure carries
its value, a bootstrap interval (resampling the generated set), its sample size n, its floor (the
same figure for several independent real sets of the same n, scored as the samples are: what a
perfect model would score, as mean and spread; see core.floors), the value against that floor with
an interval that counts both sides' noise and its plain reading, and warnings where n is too small
for the figure to mean much. `overall` reads the main figures together. Which figures apply depends on the data:
points get sliced Wasserstein / MMD in the plane, images FID / KID / IS in a feature network's
space, signals a log-spectral distance; all get the noise-prediction MSE per timestep,
precision/recall, diversity and memorisation.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .checkpoint import load, sampling_clip
from .config import RunConfig
from .data import dataset_info, load_dataset
from .device import pick_device
from .extractors import EXTRACTOR_CHOICES, FeatureExtractor, choose_extractor
from .fid import FID, KID, inception_score
from .floors import FLOOR_DRAWS, VERDICTS, compare, draw_seeds, drawable, fresh_draw, sliced_reference
from .metrics import (EvaluationCancelled, bootstrap, manifold_radii, mean_pairwise_distance, median_distance,
                      memorisation, mmd_rbf, noise_mse, precision_recall, sliced_wasserstein)
from .samplers import SAMPLERS, get_sampler, sampler_options
from .schedules import SPACINGS, make_schedule
from .progress import time_left  # noqa: F401  (re-exported: part of this module's API)
from .signal_features import Standardise, log_spectral_distance, signal_features
from .threads import add_threads_option, apply_threads

__all__ = ["evaluate_checkpoint", "evaluate_samples", "real_sets", "format_report", "EvaluationCancelled", "main"]

BATCH = {"points": 2000, "signal": 500, "image": 250}  # sampling batch sizes; fixed, so a seed fixes the samples
MIN_N, MAX_N = 10, 100_000
K_NN = 3                  # k of the k-NN manifolds (Kynkaanniemi et al. 2019 use 3)
FID_MIN_N = 1000          # below this FID is strongly biased high (Chong & Forsyth 2020)
MIN_N_PR = 1000           # k-NN manifolds are noisy below this
MIN_N_2D = 200            # SWD / MMD in the plane
MSE_N = 512               # held-out examples the noise MSE is measured on (at most)
MSE_BINS = 20
MAX_FEATURE_TRAIN = 10_000  # training examples run through the feature network for memorisation, at most
MAX_INCEPTION_TRAIN = 2_000  # the same for InceptionV3, ~1000x the cost of a shipped classifier per image
POSITIVE = (0.0, math.inf)  # range of figures that cannot be negative, for clipping their intervals

Progress = Callable[[float, str], None]


def _check(cancel) -> None:
    if cancel is not None and cancel():
        raise EvaluationCancelled("evaluation cancelled")


# ---------------------------------------------------------------------------------------------
# real data to compare with


def real_sets(config: RunConfig, n: int, seed: int = 0, draws: int = FLOOR_DRAWS) -> dict:
    """The training data, the real set generated samples are scored against, and real draws for the floor.

    Seeded datasets are drawn afresh: the real set and `draws` independent sets of n, each with its own
    seed (never the training seed); 2-D toys also get a 200,000-point reference for the sliced
    distance. File datasets with a train split use their test split, others (UCI digits, image
    folders) the training data: there the floor is one real draw disjoint from the real set, with
    `draws` bootstrap resamples of it for its spread (a `Resampled` list: the draw first).
    Returns {"train", "kind", "pool", "perm", "real", "draws", "independent", "reference", "held_out", "note"}.
    """
    name, params = config.data.name, dict(config.data.params)
    train = load_dataset(name, **params)
    full = dataset_info(name, **params).params
    perm_gen = torch.Generator().manual_seed(int(seed) + 1)
    if drawable(config):
        seeds = draw_seeds(config, seed, draws)
        try:
            pool = fresh_draw(config, max(n, MSE_N), seeds[0])
            sets = [fresh_draw(config, n, s) for s in seeds[1:]]
        except ValueError:  # more examples than the dataset allows: fall back to the training data
            pool = None
        if pool is not None:
            perm = torch.arange(pool.shape[0])
            reference = sliced_reference(config, seed) if train.kind == "points" and train.x.shape[1:] == (2,) \
                else None
            note = (f"real samples held out: {name} drawn afresh (seed {seeds[0]}); the floor is the mean of "
                    f"{draws} independent real draws (seeds {seeds[1]}-{seeds[-1]})")
            if reference is not None:
                note += f"; sliced Wasserstein against a {reference.size:,}-point real reference"
            return {"train": train.x, "kind": train.kind, "pool": pool, "perm": perm, "real": pool[:n],
                    "draws": sets, "independent": True, "reference": reference, "held_out": True, "note": note}
    if full.get("split") == "train":
        pool, held_out = load_dataset(name, **dict(full, split="test")).x, True
        note = f"real samples held out: the {name} test split"
    else:
        pool, held_out = train.x, False
        note = f"{name} has no held-out split: real samples are the training data the model saw"
    perm = torch.randperm(pool.shape[0], generator=perm_gen)
    m = min(n, pool.shape[0] // 2)
    # No fresh data to draw: one real draw of m, disjoint from the real set, and its spread from bootstrap
    # resamples of it. (Subsets of the rest of the pool overlapped almost wholly, 898 of 899 examples for
    # UCI digits at n = 1000: their spread was near zero and every small difference read "worse than data".)
    one = pool[perm[m:2 * m]]
    boot = torch.Generator().manual_seed(int(seed) * 1000 + 2)
    sets = Resampled([one, *(one[torch.randint(m, (m,), generator=boot)] for _ in range(draws))])
    note += (f"; the floor is one real draw of {m} not scored against, its spread from {draws} bootstrap "
             "resamples of it")
    return {"train": train.x, "kind": train.kind, "pool": pool, "perm": perm, "real": pool[perm[:m]],
            "draws": sets, "independent": False, "reference": None, "held_out": held_out, "note": note}


def floor_words(floor: dict) -> str:
    """What a result's floor ({"draws", "independent", "resampled", "size"}) was computed over, in words."""
    if floor.get("resampled"):
        return f"{floor['draws']} bootstrap resamples of one real draw of {floor['size']:,} (no fresh data to draw)"
    return f"{floor['draws']} {'independent ' if floor.get('independent') else ''}real draws of {floor['size']:,}"


class Resampled(list):
    """The floor's real sets where no fresh data can be drawn: the first is one real draw, the rest bootstrap
    resamples of it (`floor_values` turns their figures into the floor's draws)."""


def floor_values(fn, draws: list) -> list:
    """The floor's draws of a figure `fn` (a number, or a dict of numbers): `fn` of each real draw, or, for
    `Resampled` sets, the resamples' figures re-centred on the plain draw's (a resample repeats examples, which
    biases k-NN and distance figures; the re-centring keeps their spread and drops that bias, as the
    generated side's bootstrap interval does)."""
    values = [fn(d) for d in draws]
    if not isinstance(draws, Resampled):
        return values

    def centred(plain: float, reps: list[float]) -> list[float]:
        mid = float(np.median(reps))
        return [float(plain) + float(r) - mid for r in reps]

    if isinstance(values[0], dict):
        per = {k: centred(values[0][k], [v[k] for v in values[1:]]) for k in values[0]}
        return [{k: per[k][i] for k in per} for i in range(len(values) - 1)]
    return centred(values[0], values[1:])


# ---------------------------------------------------------------------------------------------
# one figure


def _figure(label: str, boot: dict, floor, n: int, n_floor: int | None, *, better: str, space: str,
            warnings: list[str] | None = None, how: str | None = None, **extra) -> dict:
    """A figure's record. better: "lower", "higher" or "closer to floor" (how to read value vs floor).

    floor: None, a fixed mark (a number), or the figure of several real draws (a list): then the floor
    is their mean, with its spread, and `vs_floor` compares the value with it (`how`: "ratio" or
    "difference"), its interval counting both the bootstrap of the samples and the spread of the draws.
    """
    out = {"label": label, "value": boot["value"], "interval": boot["interval"], "level": boot["level"],
           "floor": floor, "floor_sd": None, "n": n, "n_floor": n_floor, "better": better, "space": space,
           "warnings": list(warnings or []), "vs_floor": None}
    if isinstance(floor, (list, tuple)):
        c = compare(boot["value"], boot["replicates"], floor, how=how or "difference", better=better,
                    level=boot["level"])
        out.update(floor=c["floor"], floor_sd=c["floor_sd"], floor_draws=c["floor_draws"])
        if c["verdict"] is not None:
            out["vs_floor"] = {k: c[k] for k in ("how", "estimate", "interval", "verdict")}
            out["vs_floor"]["says"] = VERDICTS[c["verdict"]]
    out.update(extra)
    return out


def _small(n: int, need: int, what: str) -> list[str]:
    return [f"n={n} is below {need}: {what}"] if n < need else []


def _floor_n_warning(n: int, m: int, why: str) -> list[str]:
    return [f"the floor uses real sets of {m}, fewer than n={n} ({why}); it reads a little worse than "
            f"a floor at n={n} would"] if m < n else []


# ---------------------------------------------------------------------------------------------
# the figures of each kind of data


def _pr_figures(real, draws, gen, *, space: str, boot_args: dict) -> dict:
    """precision, recall, density, coverage, each with its floor over the real draws (scored against `real`)."""
    radii = manifold_radii(real, K_NN)
    pr = lambda g: precision_recall(real, g, k=K_NN, real_radii=radii)  # noqa: E731
    res = bootstrap(pr, gen, **boot_args,
                    bounds={"precision": (0, 1), "recall": (0, 1), "coverage": (0, 1), "density": (0, math.inf)})
    floors = floor_values(pr, draws)
    n, m = gen.shape[0], draws[0].shape[0]
    warn = _small(n, MIN_N_PR, "k-NN manifold estimates are noisy; compare with the floor at the same n") + \
        _floor_n_warning(n, m, "the real pool is small")
    labels = {"precision": "Precision (k-NN)", "recall": "Recall (k-NN)", "density": "Density", "coverage": "Coverage"}
    return {key: _figure(labels[key], res[key], [f[key] for f in floors], n, m, better="higher", space=space,
                         warnings=warn, how="difference", k=K_NN) for key in labels}


def _diversity(draws, gen, *, space: str, boot_args: dict) -> dict:
    res = bootstrap(mean_pairwise_distance, gen, **boot_args, bounds=POSITIVE)
    floors = floor_values(mean_pairwise_distance, draws)
    fig = _figure("Diversity (mean pairwise distance)", res, floors, gen.shape[0], draws[0].shape[0],
                  better="closer to floor", space=space, how="ratio")
    fig["ratio"] = res["value"] / fig["floor"] if fig["floor"] else None
    return fig


def _memorisation(gen, train, reference, *, space: str, boot_args: dict, where: str,
                  train_index: torch.Tensor | None = None, warn: list[str] | None = None) -> dict:
    """train_index: the training-set row of each row of `train` when `train` is a subset of it."""
    mem = memorisation(gen, train, reference=reference)
    if train_index is not None:
        for c in mem["closest"]:
            c["train"] = int(train_index[c["train"]])
    ratio = torch.from_numpy(mem["ratio"])
    res = bootstrap(lambda r: float(r.median()), ratio, **boot_args, bounds=POSITIVE)
    warn = list(warn or [])
    if mem["copy_fraction"] > 0.05:
        warn.append(f"{mem['copy_fraction']:.1%} of samples lie closer to a training example than 99% of real "
                    "samples do: likely memorised copies (see closest)")
    return _figure(f"Memorisation, {where} (nearest / typical real)", res, 1.0, gen.shape[0],
                   len(mem["real_nn_distance"]), better="closer to floor", space=space, warnings=warn,
                   typical_real_distance=mem["typical_real_distance"], typical_from=mem["typical_from"],
                   copy_fraction=mem["copy_fraction"], copy_threshold=mem["copy_threshold"],
                   median_distance=float(np.median(mem["nn_distance"])), closest=mem["closest"],
                   note="ratio 1 = as close to the training set as a typical real sample; near 0 = copies")


def _points(gen, sets, boot_args) -> dict:
    real, draws, reference = sets["real"], sets["draws"], sets.get("reference")
    n, m = gen.shape[0], draws[0].shape[0]
    why = "the real pool is small"
    sigma = median_distance(real)
    small = _small(n, MIN_N_2D, "distances between sets are noisy")
    # SWD squares distances, so a few diverged samples can dominate it: count them and say so
    centre = real.mean(0)
    reach = 2 * float((real - centre).norm(dim=1).max())
    far = int(((gen - centre).norm(dim=1) > reach).sum())
    far_warn = [f"{far} of {n} samples lie more than twice as far from the data's centre as any real point; "
                "they dominate this figure"] if far else []
    if reference is not None:  # against the large reference: no noise on the real side
        swd = reference
        against = f"against {reference.size:,} real points"
    else:
        swd = lambda g: sliced_wasserstein(real, g)  # noqa: E731
        against = f"against {real.shape[0]} real points"
    mmd = lambda g: mmd_rbf(real, g, bandwidth=sigma)  # noqa: E731
    figs = {
        "swd": _figure("Sliced Wasserstein-2", bootstrap(swd, gen, **boot_args, bounds=POSITIVE),
                       floor_values(swd, draws), n, m, better="lower", space="plane", how="ratio",
                       warnings=small + far_warn + _floor_n_warning(n, m, why), outliers=far,
                       projections="180 evenly spaced angles", against=against),
        "mmd": _figure("MMD^2 (RBF)", bootstrap(mmd, gen, **boot_args), floor_values(mmd, draws), n, m,
                       better="lower", space="plane", how="difference",
                       warnings=small + _floor_n_warning(n, m, why), bandwidth=sigma,
                       note="unbiased estimate: can dip just below 0 when the sets match"),
    }
    figs.update(_pr_figures(real, draws, gen, space="plane", boot_args=boot_args))
    figs["diversity"] = _diversity(draws, gen, space="plane", boot_args=boot_args)
    ref_mem = draws[0] if sets["held_out"] else None
    figs["memorisation"] = _memorisation(gen, sets["train"], ref_mem, space="plane", boot_args=boot_args,
                                         where="plane")
    return figs


CONFIDENT_P = 0.9


def confident_fraction(logits: torch.Tensor, p: float = CONFIDENT_P) -> float:
    """Share of rows whose softmax puts at least p on one class (logits (N, classes))."""
    return float((torch.softmax(logits.double(), dim=1).max(dim=1).values >= p).double().mean())


def _images(gen, sets, boot_args, extractor: FeatureExtractor | None, device, cancel, progress) -> dict:
    real, draws = sets["real"], sets["draws"]
    n, n_ref, m = gen.shape[0], real.shape[0], draws[0].shape[0]
    figs = {}
    reference = draws[0] if sets["held_out"] else None
    pixel_mem = _memorisation(gen, sets["train"], reference, space="pixels", boot_args=boot_args, where="pixels")
    if extractor is None:
        figs["diversity"] = _diversity(draws, gen, space="pixels", boot_args=boot_args)
        figs["memorisation_pixel"] = pixel_mem
        return figs
    _check(cancel)
    progress(0.80, f"extracting {extractor.name} features of {n_ref + len(draws) * m} real images")
    f_all, lg_all = extractor(torch.cat([real, *draws]), device=device, cancel=cancel)
    f_real = f_all[:n_ref]
    f_draws = type(draws)(f_all[n_ref + k * m:n_ref + (k + 1) * m] for k in range(len(draws)))
    lg_draws = type(draws)(lg_all[n_ref + k * m:n_ref + (k + 1) * m] for k in range(len(draws)))
    f_gen, lg_gen = extractor(gen, device=device, cancel=cancel)
    space = f"{extractor.name} features ({extractor.dim}-d)"
    why = "the real pool is small"
    floor_warn = _floor_n_warning(n, m, why)
    _check(cancel)
    progress(0.86, "FID")
    fid_warn = [] if n >= max(FID_MIN_N, extractor.dim) else [
        f"n={n} is below {max(FID_MIN_N, extractor.dim)}: FID is biased high at small n; read it against the floor"]
    fid = FID(f_real)
    figs["fid"] = _figure("FID", bootstrap(fid, f_gen, **boot_args, bounds=POSITIVE), floor_values(fid, f_draws), n, m,
                          better="lower", space=space, how="ratio", warnings=fid_warn + floor_warn)
    _check(cancel)
    progress(0.89, "KID")
    kid = KID(f_real, seed=boot_args["seed"])
    figs["kid"] = _figure("KID", bootstrap(kid, f_gen, **boot_args), floor_values(kid, f_draws), n, m,
                          better="lower", space=space, how="difference",
                          warnings=_small(n, 100, "KID is unbiased but very noisy") + floor_warn,
                          note="unbiased estimate: can dip just below 0 when the sets match")
    _check(cancel)
    progress(0.91, "Inception Score")
    classes = lg_gen.shape[1]
    score = lambda lg: inception_score(lg)[0]  # noqa: E731
    figs["is"] = _figure("Inception Score" if extractor.info.get("kind") == "inception" else
                         f"Inception Score ({extractor.name} classes)",
                         bootstrap(score, lg_gen, **boot_args, bounds=(1, classes)),
                         floor_values(score, lg_draws), n, m, better="closer to floor", space=space,
                         how="difference",
                         warnings=_small(n, 10 * classes, f"too few samples per class ({classes} classes)"),
                         classes=classes, note="the floor here is the real data's own score (an upper mark)")
    if extractor.info.get("kind") == "builtin":
        # the project's own classifier knows these classes: a recognisable sample gets one of them with p >= 0.9
        figs["confident"] = _figure(
            f"Confidently classified (p >= {CONFIDENT_P})",
            bootstrap(confident_fraction, lg_gen, **boot_args, bounds=(0.0, 1.0)),
            floor_values(confident_fraction, lg_draws), n, m, better="higher", space=space, how="difference",
            warnings=[], note="share of samples whose most likely class has probability >= 0.9")
    _check(cancel)
    progress(0.93, "precision / recall")
    figs.update(_pr_figures(f_real, f_draws, f_gen, space=space, boot_args=boot_args))
    figs["diversity"] = _diversity(f_draws, f_gen, space=space, boot_args=boot_args)
    _check(cancel)
    progress(0.96, "memorisation in feature space")
    train, pick, sub_warn = sets["train"], None, []
    cap = MAX_FEATURE_TRAIN if extractor.info.get("kind") != "inception" else MAX_INCEPTION_TRAIN
    if train.shape[0] > cap:  # a feature network over a whole large training set costs too much
        pick = torch.randperm(train.shape[0], generator=torch.Generator().manual_seed(boot_args["seed"]))
        pick = pick[:cap].sort().values
        train = train[pick]
        sub_warn = [f"searched a random {cap} of the {sets['train'].shape[0]} training examples"]
    f_train, _ = extractor(train, device=device, cancel=cancel)
    f_ref = f_draws[0] if sets["held_out"] else None
    figs["memorisation_pixel"] = pixel_mem
    figs["memorisation_feature"] = _memorisation(f_gen, f_train, f_ref, space=space, boot_args=boot_args,
                                                 where="features", train_index=pick, warn=sub_warn)
    return figs


def _signals(gen, sets, boot_args) -> dict:
    real, draws = sets["real"], sets["draws"]
    n, m = gen.shape[0], draws[0].shape[0]
    z = Standardise(signal_features(sets["train"]))
    space = "signal features (log power per frequency, std, peak; standardised)"
    lsd = lambda g: log_spectral_distance(real, g)  # noqa: E731
    figs = {"spectrum": _figure(
        "Log-spectral distance (dB)", bootstrap(lsd, gen, **boot_args, bounds=POSITIVE), floor_values(lsd, draws),
        n, m, better="lower", space="mean power spectrum", how="ratio",
        warnings=_small(n, MIN_N_2D, "mean spectra are noisy") + _floor_n_warning(n, m, "the real pool is small"))}
    fz = lambda x: z(signal_features(x))  # noqa: E731
    figs.update(_pr_figures(fz(real), type(draws)(fz(d) for d in draws), fz(gen), space=space, boot_args=boot_args))
    figs["diversity"] = _diversity(draws, gen, space="raw signal", boot_args=boot_args)
    reference = draws[0] if sets["held_out"] else None
    figs["memorisation_raw"] = _memorisation(gen, sets["train"], reference, space="raw signal", boot_args=boot_args,
                                             where="raw signal")
    figs["memorisation_feature"] = _memorisation(fz(gen), fz(sets["train"]), None if reference is None else
                                                 fz(reference), space=space, boot_args=boot_args, where="features")
    return figs


# the figures whose comparison with the floor decides the overall reading, per kind of data
MAIN_FIGURES = {"points": ("swd", "mmd", "precision", "recall"), "image": ("fid", "kid", "precision", "recall"),
                "signal": ("spectrum", "precision", "recall")}


def overall_verdict(metrics: dict, kind: str) -> dict:
    """The plain reading of the main figures: {"verdict": "same" | "worse" | None, "says", "same", "worse",
    "better" (figure keys)}. "worse" when any main figure's interval lies wholly on the worse side of its floor."""
    groups = {"same": [], "worse": [], "better": []}
    for key in MAIN_FIGURES[kind]:
        v = (metrics.get(key) or {}).get("vs_floor")
        if v:
            groups[v["verdict"]].append(key)
    if not any(groups.values()):
        return {"verdict": None, "says": "no figure with a floor to compare with", **groups}
    label = lambda keys: ", ".join(metrics[k]["label"] for k in keys)  # noqa: E731
    if groups["worse"]:
        verdict, says = "worse", f"distinguishable from data: worse than real data on {label(groups['worse'])}"
    else:
        verdict, says = "same", ("indistinguishable from data at this n: no main figure's interval lies on the worse "
                                 "side of its floor")
        if groups["better"]:  # a real draw can land here by chance; so can a model that copies its training set
            says += f" ({label(groups['better'])} beyond a fresh real draw's: see Memorisation)"
    return {"verdict": verdict, "says": says, **groups}


def evaluate_samples(gen: torch.Tensor, sets: dict, *, extractor: FeatureExtractor | None = None,
                     rounds: int = 30, level: float = 0.9, seed: int = 0, device="cpu",
                     progress: Progress | None = None, cancel=None) -> dict:
    """Every figure that applies to `gen` (N, ...) against `sets` (from `real_sets`): {name: figure}."""
    progress = progress or (lambda f, m: None)
    pool_n = sets["pool"].shape[0]
    if min(sets["real"].shape[0], sets["draws"][0].shape[0]) < K_NN + 1:  # each large enough for k-NN radii
        raise ValueError(f"need at least {2 * (K_NN + 1)} real samples to compare with, the dataset has {pool_n}")
    boot_args = {"rounds": rounds, "level": level, "seed": seed}
    gen = gen.detach().float().cpu()
    kind = sets["kind"]
    _check(cancel)
    if kind == "points":
        return _points(gen, sets, boot_args)
    if kind == "image":
        return _images(gen, sets, boot_args, extractor, device, cancel, progress)
    return _signals(gen, sets, boot_args)


# ---------------------------------------------------------------------------------------------
# the entry point


def sampler_words(r: dict, unit: str = " steps") -> str:
    """'ddim 50 steps, eta 1, quadratic spacing' from an evaluation's sampler fields (defaults left unsaid)."""
    words = f"{r['sampler']} {r['steps']}{unit}"
    if r.get("eta"):
        words += f", eta {r['eta']:g}"
    if r.get("spacing", "linear") != "linear":
        words += f", {r['spacing']} spacing"
    return words


def _generate(model, schedule, config, meta, shape, n, *, sampler, steps, seed, device, kind, progress, cancel, span,
              opts):
    fn = get_sampler(sampler)
    start = time.perf_counter()
    g = torch.Generator().manual_seed(int(seed))
    clip = sampling_clip(meta)  # predicted x0 is clipped to the range the model was trained for, as core.sample does
    batch = BATCH[kind]
    out = []
    done = 0
    for b0 in range(0, n, batch):
        bs = min(batch, n - b0)
        last = None
        for step in fn(model, schedule, (bs, *shape), steps=steps, generator=g, device=device,
                       prediction=config.diffusion.prediction, clip=clip, **opts):
            _check(cancel)
            last = step
            frac = (done + bs * (step.i + 1) / step.n) / n
            progress(span[0] + (span[1] - span[0]) * frac,
                     f"sampling {b0 + bs}/{n} ({sampler}, step {step.i + 1}/{step.n})"
                     f"{time_left(time.perf_counter() - start, frac)}")
        out.append(last.x_next.float().cpu())
        done += bs
    return torch.cat(out)


def _mse_figure(model, schedule, config: RunConfig, sets: dict, n: int, *, seed: int, device, bins: int,
                rounds: int, level: float, cancel=None) -> dict:
    """The noise-prediction MSE on up to MSE_N real examples (held out where the data has a split), per
    timestep bin and overall with its bootstrap interval: the figure both functions below report."""
    pool, perm = sets["pool"], sets["perm"]
    x_mse = pool[perm[:min(MSE_N, n, pool.shape[0])]]
    mse = noise_mse(model, schedule, x_mse, prediction=config.diffusion.prediction, bins=bins, seed=seed,
                    device=device, cancel=cancel)
    per = torch.from_numpy(mse["weights"] @ mse["per_sample"])
    warn = [] if sets["held_out"] else ["measured on training examples (no held-out split)"]
    return _figure("Noise-prediction MSE", bootstrap(lambda v: float(v.mean()), per, rounds=rounds, level=level,
                                                     seed=seed, bounds=POSITIVE),
                   None, int(x_mse.shape[0]), None, better="lower", space="noise (eps) per element",
                   warnings=warn, per_t={k: mse[k].tolist() for k in ("t", "t_lo", "t_hi", "mse", "sem")},
                   note="E||eps - eps_hat||^2 per element, t uniform over 1..T (stratified in "
                        f"{len(mse['t'])} bins); no real-vs-real floor exists for this figure")


def checkpoint_noise_mse(path, n: int, *, seed: int = 0, device="cpu", bins: int = MSE_BINS, rounds: int = 30,
                         level: float = 0.9) -> dict:
    """The noise-prediction MSE figure of a checkpoint directory alone, with no sampling: the same numbers
    `evaluate_checkpoint(path, n, seed=seed)` reports as metrics["mse"] (the same examples, noise and
    bootstrap), in a fraction of its time. For recording beside a shipped model."""
    if isinstance(n, bool) or not isinstance(n, int) or not MIN_N <= n <= MAX_N:
        raise ValueError(f"n must be an integer between {MIN_N} and {MAX_N}, got {n!r}")
    dev = pick_device(device) if isinstance(device, str) else torch.device(device)
    model, config, _ = load(path, device=dev)
    model.eval()
    schedule = make_schedule(config.diffusion.schedule, config.diffusion.T)
    return _mse_figure(model, schedule, config, real_sets(config, n, seed), n, seed=seed, device=dev, bins=bins,
                       rounds=rounds, level=level)


def evaluate_checkpoint(path_or_loaded, n: int, *, sampler: str = "ddim", steps: int = 50, seed: int = 0,
                        eta: float = 0.0, spacing: str = "linear", device="cpu", progress: Progress | None = None,
                        cancel: Callable[[], bool] | None = None,
                        extractor: str = "auto", download_inception: bool = False, rounds: int = 30,
                        level: float = 0.9, mse_bins: int = MSE_BINS, return_samples: bool = False):
    """Draw n samples from a checkpoint and compute every figure that applies. Plain JSON-able dict.

    path_or_loaded: a checkpoint directory, or the (model, config, meta) that `core.checkpoint.load` gives.
    eta (DDIM only) and spacing (see core.schedules.SPACINGS) are the sampler's options.
    progress(fraction, message) is called as work proceeds; cancel() returning True stops the work
    with EvaluationCancelled. extractor: "auto" (InceptionV3 if usable, else the dataset's shipped
    classifier), "inception" or "builtin". rounds, level: bootstrap rounds and interval level.
    Result: {"checkpoint", "dataset", "kind", "n", "sampler", "steps", "eta", "spacing", "seed", "device",
    "extractor", "real_data", "bootstrap", "metrics": {name: {"label", "value", "interval", "level", "floor", "n",
    "n_floor", "better", "space", "warnings", ...}}, "warnings", "notes", "timings"}.
    With return_samples=True: (result, samples tensor (n, ...) on the CPU).
    """
    progress = progress or (lambda f, m: None)
    if isinstance(n, bool) or not isinstance(n, int) or not MIN_N <= n <= MAX_N:
        raise ValueError(f"n must be an integer between {MIN_N} and {MAX_N}, got {n!r}")
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; known: {', '.join(SAMPLERS)}")
    if spacing not in SPACINGS:
        raise ValueError(f"unknown timestep spacing {spacing!r}; known: {', '.join(SPACINGS)}")
    if sampler != "ddim" and eta:
        raise ValueError(f"eta is an option of DDIM only, not of {sampler!r}: leave it at 0")
    if not 0.0 <= float(eta) <= 1.0:
        raise ValueError(f"eta must be between 0 and 1, got {eta}")
    opts = sampler_options(sampler, eta, spacing)
    if extractor not in EXTRACTOR_CHOICES:
        raise ValueError(f"extractor must be one of {', '.join(EXTRACTOR_CHOICES)}, got {extractor!r}")
    t0 = time.perf_counter()
    dev = pick_device(device) if isinstance(device, str) else torch.device(device)
    progress(0.0, "loading the checkpoint")
    if isinstance(path_or_loaded, (str, Path)):
        model, config, meta = load(path_or_loaded, device=dev)
        where = str(path_or_loaded)
    else:
        model, config, meta = path_or_loaded
        model = model.to(dev)
        where = None
    model.eval()
    schedule = make_schedule(config.diffusion.schedule, config.diffusion.T)
    if not isinstance(steps, int) or not 1 <= steps <= schedule.T:
        raise ValueError(f"steps must be between 1 and T={schedule.T}, got {steps!r}")
    sets = real_sets(config, n, seed)
    kind = sets["kind"]
    shape = tuple(meta.get("sample_shape") or sets["train"].shape[1:])
    if tuple(sets["train"].shape[1:]) != shape:
        raise ValueError(f"the checkpoint makes samples of shape {shape} but its dataset {config.data.name!r} "
                         f"has shape {tuple(sets['train'].shape[1:])}")
    notes, warnings = [sets["note"]], []
    ext = None
    if kind == "image":
        ext, ext_notes = choose_extractor(config.data.name, extractor, download=download_inception, device=dev)
        notes += ext_notes
        if ext is None:
            warnings.append("no feature extractor: FID, KID, IS, precision/recall and feature-space memorisation "
                            "were skipped (" + "; ".join(ext_notes) + ")")
    _check(cancel)

    t1 = time.perf_counter()
    span = (0.02, 0.70)
    gen = _generate(model, schedule, config, meta, shape, n, sampler=sampler, steps=steps, seed=seed, device=dev,
                    kind=kind, progress=progress, cancel=cancel, span=span, opts=opts)
    t2 = time.perf_counter()
    metrics = {}

    progress(0.70, "noise-prediction error per timestep")
    metrics["mse"] = _mse_figure(model, schedule, config, sets, n, seed=seed, device=dev, bins=mse_bins,
                                 rounds=rounds, level=level, cancel=cancel)
    t3 = time.perf_counter()
    metrics.update(evaluate_samples(gen, sets, extractor=ext, rounds=rounds, level=level, seed=seed, device=dev,
                                    progress=progress, cancel=cancel))
    t4 = time.perf_counter()
    for name, fig in metrics.items():
        warnings += [f"{fig['label']}: {w}" for w in fig["warnings"]]
    progress(1.0, "done")
    resampled = isinstance(sets["draws"], Resampled)  # then the first draw is the one the resamples come from
    result = _jsonable({
        "checkpoint": where,
        "dataset": config.data.name,
        "data_params": dict(config.data.params),
        "kind": kind,
        "sample_shape": list(shape),
        "n": n,
        "sampler": sampler,
        "steps": steps,
        "eta": float(eta) if sampler == "ddim" else None,
        "spacing": spacing,
        "seed": seed,
        "x0_clip": sampling_clip(meta),
        "device": str(dev),
        "train_steps": meta.get("steps"),
        "extractor": None if ext is None else {"name": ext.name, "dim": ext.dim, **ext.info},
        "real_data": {"held_out": sets["held_out"], "pool": int(sets["pool"].shape[0]),
                      "train": int(sets["train"].shape[0])},
        "bootstrap": {"rounds": rounds, "level": level, "resampled": "generated samples",
                      "interval": "percentile interval re-centred on the point estimate"},
        "floor": {"draws": len(sets["draws"]) - resampled, "independent": sets["independent"],
                  "resampled": resampled, "size": int(sets["draws"][0].shape[0]),
                  "reference": None if sets["reference"] is None else sets["reference"].size,
                  "vs_floor": "ratio (or difference) to the mean of the real draws; its interval pairs every "
                              "bootstrap replicate with every real draw, so it counts both sides' noise"},
        "metrics": metrics,
        "overall": overall_verdict(metrics, kind),
        "warnings": warnings,
        "notes": notes,
        "timings": {"load_s": t1 - t0, "sampling_s": t2 - t1, "mse_s": t3 - t2, "metrics_s": t4 - t3,
                    "total_s": time.perf_counter() - t0},
    })
    return (result, gen) if return_samples else result


def _jsonable(obj):
    """numpy / torch scalars and arrays -> Python numbers and lists; NaN and inf -> None."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.ndarray, torch.Tensor)):
        return _jsonable(obj.tolist())
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    return obj


# ---------------------------------------------------------------------------------------------
# the command line


def _num(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, int):
        return str(v)
    a = abs(v)
    return f"{v:.4g}" if a == 0 or 1e-3 <= a < 1e5 else f"{v:.3e}"


def format_report(r: dict) -> str:
    """The result of evaluate_checkpoint as a readable table."""
    lines = [f"Evaluation of {r['checkpoint'] or 'a model in memory'}: {r['dataset']} ({r['kind']}, "
             f"{'x'.join(map(str, r['sample_shape']))}), trained {r['train_steps'] or '?'} steps",
             f"n={r['n']} samples, {sampler_words(r)}, seed {r['seed']}, device {r['device']}; "
             f"{round(r['bootstrap']['level'] * 100)}% bootstrap intervals from {r['bootstrap']['rounds']} rounds"]
    if r["extractor"]:
        e = r["extractor"]
        acc = f", held-out accuracy {e['held_out_accuracy']:.2%}" if "held_out_accuracy" in e else ""
        lines.append(f"feature extractor: {e['name']} ({e['dim']}-d{acc})")
    lines.append("")
    fl = r.get("floor") or {}
    if fl:
        lines.append(f"floor (real vs real): mean +/- sd over {floor_words(fl)}"
                     + (f"; sliced Wasserstein against a {fl['reference']:,}-point real reference"
                        if fl.get("reference") else ""))
    head = (f"{'figure':<48} {'value':>10}  {'interval':<23} {'floor (real vs real)':<24} {'vs floor [interval]':<26} "
            f"{'n':>6}  reading")
    lines += [head, "-" * len(head)]
    for name, f in r["metrics"].items():
        lo, hi = f["interval"]
        floor = "-" if f["floor"] is None else _num(f["floor"]) + (
            f" +/- {_num(f['floor_sd'])}" if f.get("floor_sd") is not None else "")
        v = f.get("vs_floor")
        vs = "-" if not v else (f"{'x' if v['how'] == 'ratio' else '+'}{_num(v['estimate'])} "
                                f"[{_num(v['interval'][0])}, {_num(v['interval'][1])}]")
        lines.append(f"{f['label'][:48]:<48} {_num(f['value']):>10}  " + f"[{_num(lo)}, {_num(hi)}]".ljust(24)
                     + f"{floor:<24} {vs:<26} {f['n']:>6}  " + (v["says"] if v else f"{f['better']} is better"))
    if r.get("overall"):
        lines += ["", f"overall: {r['overall']['says']}"]
    mse = r["metrics"].get("mse")
    if mse:
        pts = ", ".join(f"t~{round(t)}: {_num(v)}" for t, v in zip(mse["per_t"]["t"], mse["per_t"]["mse"]))
        lines += ["", f"noise MSE per timestep bin: {pts}"]
    for name, f in r["metrics"].items():
        if name.startswith("memorisation") and f["closest"]:
            pairs = ", ".join(f"#{c['generated']}~train#{c['train']} ({_num(c['distance'])})" for c in f["closest"][:5])
            lines.append(f"closest to training ({f['space']}): {pairs}; typical real distance "
                         f"{_num(f['typical_real_distance'])}, near-copies {f['copy_fraction']:.1%}")
    if r["notes"]:
        lines += ["", "notes:"] + [f"  - {s}" for s in r["notes"]]
    if r["warnings"]:
        lines += ["", "warnings:"] + [f"  - {s}" for s in r["warnings"]]
    t = r["timings"]
    lines += ["", f"time: sampling {t['sampling_s']:.1f} s, noise MSE {t['mse_s']:.1f} s, "
                  f"figures {t['metrics_s']:.1f} s, total {t['total_s']:.1f} s"]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m core.evaluate", description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True, help="checkpoint directory (model.safetensors + config.json)")
    p.add_argument("--n", type=int, default=1000, help=f"number of samples to draw ({MIN_N}..{MAX_N})")
    p.add_argument("--json", action="store_true", help="print the result as JSON instead of a table")
    p.add_argument("--sampler", default="ddim", choices=list(SAMPLERS))
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--eta", type=float, default=0.0, help="DDIM only: 0 deterministic .. 1 DDPM-like (default: 0)")
    p.add_argument("--spacing", default="linear", choices=list(SPACINGS),
                   help="timesteps a few-step sampler visits: linear, or quadratic (more at low noise)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--extractor", default="auto", choices=list(EXTRACTOR_CHOICES),
                   help="feature network for image figures: auto = InceptionV3 if usable, else the built-in one")
    p.add_argument("--download-inception", action="store_true", help="allow downloading the InceptionV3 weights")
    p.add_argument("--rounds", type=int, default=30, help="bootstrap rounds")
    p.add_argument("--level", type=float, default=0.9, help="bootstrap interval level")
    add_threads_option(p)
    a = p.parse_args(argv)
    try:
        apply_threads(a.threads)
    except ValueError as e:
        p.error(str(e))

    def progress(frac, msg):
        if not a.json:
            print(f"\r[{frac:4.0%}] {msg:<60}", end="", file=sys.stderr, flush=True)

    try:
        r = evaluate_checkpoint(a.checkpoint, a.n, sampler=a.sampler, steps=a.steps, seed=a.seed, eta=a.eta,
                                spacing=a.spacing, device=a.device,
                                progress=progress, extractor=a.extractor, download_inception=a.download_inception,
                                rounds=a.rounds, level=a.level)
    except (ValueError, FileNotFoundError) as e:
        print(f"\nerror: {e}", file=sys.stderr)
        return 2
    if not a.json:
        print(file=sys.stderr)
    print(json.dumps(r, indent=2) if a.json else format_report(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
