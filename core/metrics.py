"""Sample-quality figures that need no feature network: distances between sample sets, k-NN
precision/recall, diversity, memorisation, bootstrap intervals, and the noise-prediction MSE.

Every set is a tensor (N, ...) that is flattened to (N, D) and compared in float64, so that
identical sets give exactly zero and a planted copy of a training example is found at distance 0.
Pairwise work is done in row chunks, so memory stays bounded for tens of thousands of samples.
FID, IS and KID (which do need a feature network) live in `core.fid`.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
import torch

from .device import autocast
from .forward import model_predictions, q_sample
from .schedules import NoiseSchedule

_CHUNK_ELEMENTS = 1 << 22  # distance-matrix entries computed at once (32 MB in float64)


class EvaluationCancelled(Exception):
    """Raised when the caller's cancel check returned True; nothing partial is returned."""


def flat64(x) -> torch.Tensor:
    """Any (N, ...) tensor or array -> (N, D) float64 CPU tensor."""
    return _flat(x).to(torch.float64)


def _flat(x) -> torch.Tensor:
    """(N, ...) -> (N, D) floating CPU tensor, without a copy where possible (large sets stay float32)."""
    x = torch.as_tensor(x)
    if x.ndim < 1 or x.shape[0] < 1:
        raise ValueError(f"expected a non-empty set of samples (N, ...), got shape {tuple(x.shape)}")
    x = x.detach().to("cpu").reshape(x.shape[0], -1)
    return x if x.is_floating_point() else x.double()


def _chunks(n_rows: int, n_cols: int):
    step = max(1, min(4096, _CHUNK_ELEMENTS // max(1, n_cols)))
    for lo in range(0, n_rows, step):
        yield lo, min(n_rows, lo + step)


_BIG = 1 << 24     # a reference set with more entries than this (128 MB in float64) is searched in float32
_SPARE = 8         # extra float32 candidates per query, re-ranked exactly, so near ties cannot be missed
_BALL_RTOL = 1e-9  # ball tests allow this relative slack: a radius and a distance may come from different roundings


def _cdist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Euclidean distances (N, M) by the fast matmul form; in float64 its rounding (~1e-8 of the norms, far
    below any distance we report) is removed where exactness matters by recomputing directly."""
    return torch.cdist(a, b, compute_mode="use_mm_for_euclid_dist").clamp_min_(0.0)


def knn_distances(queries, reference, k: int = 1, *, exclude_self: bool = False,
                  exclude_index: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Distances and indices of the k nearest reference points of each query: (N, k) each, ascending.

    exclude_self: queries ARE the reference set (same rows); a point is not its own neighbour.
    exclude_index: (N,) the reference row that each query is (leave-one-out for a subset of rows).
    The returned distances are exact (computed directly in float64); large reference sets (a
    training set of images) are searched in their own float32 for candidates, then re-ranked.
    """
    q, r = _flat(queries), _flat(reference)
    work = torch.float64 if r.numel() <= _BIG else torch.float32
    if q.shape[1] != r.shape[1]:
        raise ValueError(f"queries have {q.shape[1]} features per sample but the reference has {r.shape[1]}")
    if exclude_self:
        if q.shape[0] != r.shape[0]:
            raise ValueError("exclude_self needs the queries to be the reference set itself")
        exclude_index = torch.arange(q.shape[0])
    if exclude_index is not None and exclude_index.shape != (q.shape[0],):
        raise ValueError(f"exclude_index must have one entry per query ({q.shape[0]}), "
                         f"got shape {tuple(exclude_index.shape)}")
    exclude_self = exclude_index is not None
    avail = r.shape[0] - (1 if exclude_self else 0)
    if not 1 <= k <= avail:
        raise ValueError(f"k must be between 1 and {avail} (reference size{' - 1' if exclude_self else ''}), got {k}")
    r_work = r.to(work)
    cand = k if work == torch.float64 else min(avail, k + _SPARE)
    dists, idxs = [], []
    for lo, hi in _chunks(q.shape[0], r.shape[0]):
        qc = q[lo:hi].to(torch.float64)
        d = _cdist(qc.to(work), r_work)
        if exclude_self:
            d[torch.arange(hi - lo), exclude_index[lo:hi]] = math.inf
        _, i = torch.topk(d, cand, dim=1, largest=False)
        # recompute the chosen distances directly: exact, so a copied example reads 0.0 and not 1e-8
        v = (qc[:, None, :] - r[i].to(torch.float64)).norm(dim=-1)
        v, order = v.sort(1)
        i = i.gather(1, order)
        dists.append(v[:, :k])
        idxs.append(i[:, :k])
    return torch.cat(dists), torch.cat(idxs)


# ---------------------------------------------------------------------------------------------
# distances between two sets (used for 2-D points and small feature vectors)


def _directions(dim: int, n: int | None, seed: int) -> torch.Tensor:
    """Unit projection directions (K, dim): evenly spaced angles in 2-D (exact averages), random otherwise."""
    if dim == 2 and n is None:
        a = torch.arange(180, dtype=torch.float64) * (math.pi / 180)
        return torch.stack([torch.cos(a), torch.sin(a)], 1)
    g = torch.Generator().manual_seed(int(seed))
    v = torch.randn(n or 128, dim, generator=g, dtype=torch.float64)
    return v / v.norm(dim=1, keepdim=True)


def _wasserstein_1d_pow(px: torch.Tensor, py: torch.Tensor, p: float) -> torch.Tensor:
    """W_p^p between the empirical laws of the columns of px (N, K) and py (M, K): (K,).

    Exact: integrates |F^-1(u) - G^-1(u)|^p over u in (0, 1), whose pieces end at every i/N and j/M.
    """
    px, py = px.sort(0).values, py.sort(0).values
    n, m = px.shape[0], py.shape[0]
    u = torch.unique(torch.cat([torch.arange(1, n + 1, dtype=torch.float64) / n,
                                torch.arange(1, m + 1, dtype=torch.float64) / m]))
    widths = torch.diff(u, prepend=u.new_zeros(1))
    mid = u - widths / 2
    ix = (mid * n).floor().long().clamp_max(n - 1)
    iy = (mid * m).floor().long().clamp_max(m - 1)
    return (widths[:, None] * (px[ix] - py[iy]).abs() ** p).sum(0)


def sliced_wasserstein(x, y, *, p: float = 2.0, n_projections: int | None = None, seed: int = 0) -> float:
    """Sliced Wasserstein distance SW_p = (E_theta W_p^p(theta.x, theta.y))^(1/p) between two sets.

    x: (N, D), y: (M, D), any N and M. In 2-D the directions are 180 evenly spaced angles (so a pure
    shift s gives exactly |s| / sqrt(2) for p = 2); in higher dimensions `n_projections` (default 128)
    random directions drawn from `seed`. Units: those of the data.
    """
    a, b = flat64(x), flat64(y)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"the sets have different dimensions: {a.shape[1]} and {b.shape[1]}")
    if not p >= 1:
        raise ValueError(f"p must be >= 1, got {p}")
    dirs = _directions(a.shape[1], n_projections, seed)
    return float(_wasserstein_1d_pow(a @ dirs.T, b @ dirs.T, p).mean() ** (1.0 / p))


def median_distance(x, max_points: int = 2000) -> float:
    """Median pairwise distance within a set (the median heuristic's bandwidth); the first max_points rows."""
    a = flat64(x)[:max_points]
    if a.shape[0] < 2:
        raise ValueError("the median heuristic needs at least 2 points")
    d = _cdist(a, a)
    iu = torch.triu_indices(a.shape[0], a.shape[0], offset=1)
    return float(d[iu[0], iu[1]].median())


def _kernel_sum(a: torch.Tensor, b: torch.Tensor, sigmas: Sequence[float], skip_diagonal: bool) -> float:
    total = 0.0
    for lo, hi in _chunks(a.shape[0], b.shape[0]):
        d2 = _cdist(a[lo:hi], b) ** 2
        k = sum(torch.exp(-d2 / (2.0 * s * s)) for s in sigmas)
        if skip_diagonal:
            k[torch.arange(hi - lo), torch.arange(lo, hi)] = 0.0
        total += float(k.sum())
    return total


def mmd_rbf(x, y, *, bandwidth: float | Sequence[float] | None = None) -> float:
    """Unbiased squared MMD (Gretton et al. 2012) with an RBF kernel k = sum_s exp(-|a - b|^2 / 2 s^2).

    x: (N, D) the reference (real) set, y: (M, D). bandwidth: one s, a list of s (summed kernels),
    or None for the median heuristic on x (so a data-vs-data floor uses the same kernel as long
    as it shares x). About 0 (it can dip just below) when both sets come from one distribution.
    """
    a, b = flat64(x), flat64(y)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"the sets have different dimensions: {a.shape[1]} and {b.shape[1]}")
    if a.shape[0] < 2 or b.shape[0] < 2:
        raise ValueError("the unbiased MMD needs at least 2 samples in each set")
    sigmas = [median_distance(a)] if bandwidth is None else list(np.atleast_1d(bandwidth).astype(float))
    if not all(s > 0 for s in sigmas):
        raise ValueError(f"bandwidths must be positive, got {sigmas}")
    n, m = a.shape[0], b.shape[0]
    kxx = _kernel_sum(a, a, sigmas, True) / (n * (n - 1))
    kyy = _kernel_sum(b, b, sigmas, True) / (m * (m - 1))
    kxy = _kernel_sum(a, b, sigmas, False) / (n * m)
    return kxx + kyy - 2.0 * kxy


# ---------------------------------------------------------------------------------------------
# precision / recall on k-NN manifolds (Kynkaanniemi et al. 2019) and density / coverage (Naeem et al. 2020)


def manifold_radii(x, k: int = 3) -> torch.Tensor:
    """Distance from each point to its k-th nearest other point of the same set: (N,)."""
    return knn_distances(x, x, k, exclude_self=True)[0][:, -1]


def _ball_counts(queries: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor) -> torch.Tensor:
    """For each query, how many balls B(centre_i, radius_i) contain it: (N,) long."""
    out = []
    for lo, hi in _chunks(queries.shape[0], centres.shape[0]):
        out.append((_cdist(queries[lo:hi], centres) <= radii[None, :] * (1 + _BALL_RTOL)).sum(1))
    return torch.cat(out)


def precision_recall(real, fake, *, k: int = 3, real_radii: torch.Tensor | None = None) -> dict[str, float]:
    """Improved precision and recall, plus density and coverage, of `fake` against `real`: each (N, D).

    precision: share of fake samples inside the real manifold (union of balls reaching each real
    point's k-th neighbour); recall: share of real samples inside the fake manifold; density: mean
    number of real balls holding a fake sample, over k (about 1 for matching sets); coverage: share of
    real balls holding at least one fake sample. real_radii: precomputed `manifold_radii(real, k)`.
    """
    r, f = flat64(real), flat64(fake)
    if r.shape[1] != f.shape[1]:
        raise ValueError(f"the sets have different dimensions: {r.shape[1]} and {f.shape[1]}")
    radii_r = manifold_radii(r, k) if real_radii is None else real_radii
    radii_f = manifold_radii(f, k)
    in_real = _ball_counts(f, r, radii_r)
    nearest_fake = knn_distances(r, f, 1)[0][:, 0]
    return {
        "precision": float((in_real > 0).double().mean()),
        "recall": float((_ball_counts(r, f, radii_f) > 0).double().mean()),
        "density": float(in_real.double().sum() / (k * f.shape[0])),
        "coverage": float((nearest_fake <= radii_r * (1 + _BALL_RTOL)).double().mean()),
    }


# ---------------------------------------------------------------------------------------------
# diversity and memorisation


def mean_pairwise_distance(x) -> float:
    """Mean distance over all pairs i < j of a set (N, D): a plain diversity figure."""
    a = flat64(x)
    n = a.shape[0]
    if n < 2:
        raise ValueError("diversity needs at least 2 samples")
    total = 0.0
    for lo, hi in _chunks(n, n):
        total += float(_cdist(a[lo:hi], a).sum())
    return total / (n * (n - 1))  # the diagonal is zero, so the full sum counts each pair twice


def memorisation(generated, train, *, reference=None, top: int = 8, max_reference: int = 2000) -> dict:
    """How close each generated sample sits to its nearest training example, against real data's own habit.

    generated (N, ...), train (M, ...). The typical real distance is the median nearest-training
    distance of `reference` (held-out real samples), or, without one, of up to `max_reference`
    training examples to their nearest OTHER training example (leave-one-out). A generated sample is a
    near-copy when it is closer to a training example than 99% of those real samples are.
    Returns per-sample arrays (nn_distance, nn_index, ratio) and the `top` closest pairs.
    """
    g, t = _flat(generated), _flat(train)
    d, idx = knn_distances(g, t, 1)
    d, idx = d[:, 0], idx[:, 0]
    if reference is not None:
        real_d = knn_distances(reference, t, 1)[0][:, 0]
        how = "held-out real samples to their nearest training example"
    else:
        pick = torch.linspace(0, t.shape[0] - 1, min(max_reference, t.shape[0])).round().long().unique()
        real_d = knn_distances(t[pick], t, 1, exclude_index=pick)[0][:, 0]
        how = "training examples to their nearest other training example"
    typical = float(real_d.median())
    threshold = float(torch.quantile(real_d, 0.01))
    ratio = d / typical if typical > 0 else torch.full_like(d, math.inf)
    order = torch.argsort(d)[:top]
    return {
        "nn_distance": d.numpy(),
        "nn_index": idx.numpy(),
        "ratio": ratio.numpy(),
        "typical_real_distance": typical,
        "typical_from": how,
        "real_nn_distance": real_d.numpy(),
        "copy_threshold": threshold,
        "copy_fraction": float((d < threshold).double().mean()) if threshold > 0 else float((d == 0).double().mean()),
        "closest": [{"generated": int(i), "train": int(idx[i]), "distance": float(d[i]), "ratio": float(ratio[i])}
                    for i in order],
    }


# ---------------------------------------------------------------------------------------------
# bootstrap intervals


def _recentred(value: float, reps: np.ndarray, level: float, bounds: tuple[float, float]) -> list[float]:
    finite = reps[np.isfinite(reps)]
    if finite.size < 2 or not math.isfinite(value):
        return [value, value]
    lo, med, hi = np.quantile(finite, [(1 - level) / 2, 0.5, (1 + level) / 2])
    return [float(np.clip(value + lo - med, *bounds)), float(np.clip(value + hi - med, *bounds))]


def bootstrap(statistic: Callable[[torch.Tensor], float | dict], data, *, rounds: int = 30, level: float = 0.9,
              seed: int = 0, point: float | dict | None = None,
              bounds: tuple[float, float] | dict = (-math.inf, math.inf)) -> dict:
    """Bootstrap interval of `statistic(data)`, resampling the rows of `data` (N, ...) with replacement.

    Resampling with replacement duplicates samples, which biases set statistics such as FID, KID
    and k-NN recall (duplicates look like fewer distinct samples). So the interval is the bootstrap
    distribution's central `level` range re-centred on the point estimate: point + (q_lo - median,
    q_hi - median). It keeps the spread the data shows and drops the resampling bias.
    bounds: the statistic's possible range (e.g. (0, 1) for a share), to which the interval is clipped.
    Returns {"value", "interval": [lo, hi], "level", "rounds", "replicates"}; a statistic that
    returns a dict of floats gets one such record per key (and bounds may be a dict by key).
    """
    if not isinstance(rounds, int) or rounds < 2:
        raise ValueError(f"rounds must be an integer >= 2, got {rounds!r}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be between 0 and 1, got {level}")
    data = torch.as_tensor(data)
    n = data.shape[0]
    value = statistic(data) if point is None else point
    g = torch.Generator().manual_seed(int(seed))
    reps = [statistic(data[torch.randint(0, n, (n,), generator=g)]) for _ in range(rounds)]

    def record(v, r, b):
        r = np.array(r, dtype=float)
        return {"value": float(v), "interval": _recentred(float(v), r, level, b), "level": level, "rounds": rounds,
                "replicates": r.tolist()}

    if isinstance(value, dict):
        return {k: record(value[k], [rep[k] for rep in reps], bounds.get(k, (-math.inf, math.inf))
                          if isinstance(bounds, dict) else bounds) for k in value}
    return record(value, reps, bounds)


# ---------------------------------------------------------------------------------------------
# noise-prediction error


def timestep_bins(T: int, bins: int) -> list[tuple[int, int]]:
    """`bins` contiguous ranges [lo, hi] of timesteps that together cover 1..T once."""
    if not isinstance(bins, int) or not 1 <= bins <= T:
        raise ValueError(f"bins must be an integer between 1 and T={T}, got {bins!r}")
    edges = np.linspace(0, T, bins + 1).round().astype(int)
    return [(int(edges[i]) + 1, int(edges[i + 1])) for i in range(bins)]


@torch.no_grad()
def noise_mse(model, schedule: NoiseSchedule, x0, *, prediction: str = "eps", bins: int | None = 20,
              t_values: Sequence[int] | None = None, seed: int = 0, batch_size: int = 256,
              device="cpu", cancel: Callable[[], bool] | None = None) -> dict:
    """E ||eps - eps_hat(x_t, t)||^2 (mean over elements) on data x0 (N, ...), per timestep and overall.

    With `t_values`, each listed t is measured exactly. Otherwise 1..T is cut into `bins` equal
    ranges and every sample gets a t drawn uniformly inside each range (stratified sampling), so the
    width-weighted mean over ranges is an unbiased estimate of the training loss under uniform t
    (for eps-prediction; x0 and v nets are scored on the eps they imply).
    Returns plain arrays: t (centre), t_lo, t_hi, mse, sem, per_sample (bins, N), and overall.
    """
    x0 = torch.as_tensor(x0).float()
    T = schedule.T
    if t_values is not None:
        ranges = [(schedule.check_t(t), schedule.check_t(t)) for t in t_values]
        if any(lo < 1 for lo, _ in ranges):
            raise ValueError("t_values must lie in 1..T (t = 0 is the clean data, which has no noise to predict)")
    else:
        ranges = timestep_bins(T, bins)
    g = torch.Generator().manual_seed(int(seed))
    dev = torch.device(device)
    was_training = model.training
    model.eval()
    per = np.zeros((len(ranges), x0.shape[0]))
    try:
        for j, (lo, hi) in enumerate(ranges):
            for s in range(0, x0.shape[0], batch_size):
                if cancel is not None and cancel():
                    raise EvaluationCancelled("cancelled while measuring the noise-prediction error")
                xb = x0[s:s + batch_size]
                t = torch.randint(lo, hi + 1, (xb.shape[0],), generator=g)
                eps = torch.randn(xb.shape, generator=g)
                x_t = q_sample(schedule, xb, t, eps).to(dev)
                with autocast(dev):
                    _, eps_hat = model_predictions(model, schedule, x_t, t.to(dev), prediction)
                err = (eps_hat.float().cpu() - eps) ** 2
                per[j, s:s + xb.shape[0]] = err.reshape(err.shape[0], -1).mean(1).double().numpy()
    finally:
        model.train(was_training)
    widths = np.array([hi - lo + 1 for lo, hi in ranges], dtype=float)
    mse = per.mean(1)
    sem = per.std(1, ddof=1) / math.sqrt(per.shape[1]) if per.shape[1] > 1 else np.full(len(ranges), np.nan)
    weights = widths / widths.sum()
    return {
        "t": np.array([(lo + hi) / 2 for lo, hi in ranges]),
        "t_lo": np.array([lo for lo, _ in ranges]),
        "t_hi": np.array([hi for _, hi in ranges]),
        "mse": mse,
        "sem": sem,
        "per_sample": per,
        "weights": weights,
        "overall": float((weights * mse).sum()),
        "n": int(x0.shape[0]),
    }
