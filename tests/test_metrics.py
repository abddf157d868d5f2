"""Sample-set figures: exact values where the math gives them, planted cases where it does not."""
import math

import numpy as np
import pytest
import scipy.stats
import torch
from torch import nn

from core.forward import x0_from_eps
from core.metrics import (EvaluationCancelled, bootstrap, knn_distances, manifold_radii, mean_pairwise_distance,
                          median_distance, memorisation, mmd_rbf, noise_mse, precision_recall, sliced_wasserstein,
                          timestep_bins)
from core.schedules import linear
from core.signal_features import log_spectral_distance, signal_features

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


def gauss(n, d=2, seed=0, shift=0.0):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) + shift


# --- k nearest neighbours --------------------------------------------------------------------

def test_knn_matches_brute_force_and_excludes_self():
    x, y = gauss(50, 3, 1), gauss(70, 3, 2)
    d, i = knn_distances(x, y, 4)
    full = torch.cdist(x, y, compute_mode="donot_use_mm_for_euclid_dist")
    ref_d, ref_i = full.topk(4, largest=False)
    assert torch.allclose(d, ref_d, atol=1e-12) and torch.equal(i, ref_i)
    d_self, i_self = knn_distances(x, x, 1, exclude_self=True)
    assert (i_self[:, 0] != torch.arange(50)).all() and (d_self > 0).all()


def test_knn_on_a_large_reference_searches_in_float32_and_reports_exact_distances(monkeypatch):
    import core.metrics as metrics

    x, ref = gauss(40, 20, 1), gauss(500, 20, 2)
    ref[123] = x[7]
    want_d, want_i = knn_distances(x, ref, 3)
    monkeypatch.setattr(metrics, "_BIG", 100)  # pretend the reference is too big for float64
    d, i = knn_distances(x.float(), ref.float(), 3)
    assert torch.equal(i, want_i)
    assert torch.allclose(d, want_d, rtol=1e-6) and d[7, 0] == 0.0
    loo_d, loo_i = knn_distances(ref[[5, 123]], ref, 1, exclude_index=torch.tensor([5, 123]))
    assert 5 not in loo_i[0].tolist() and loo_i[1, 0] != 123 and (loo_d > 0).all()


def test_knn_errors():
    with pytest.raises(ValueError, match="features per sample"):
        knn_distances(gauss(5, 2), gauss(5, 3))
    with pytest.raises(ValueError, match="k must be between 1 and 4"):
        knn_distances(gauss(5), gauss(5), 5, exclude_self=True)


# --- sliced Wasserstein and MMD --------------------------------------------------------------

def test_swd_of_identical_sets_is_zero():
    x = gauss(300)
    assert sliced_wasserstein(x, x) == 0.0
    assert sliced_wasserstein(x, x.flip(0)) == pytest.approx(0.0, abs=1e-12)  # order does not matter
    assert sliced_wasserstein(x, torch.cat([x, x])) == pytest.approx(0.0, abs=1e-12)  # same empirical law


def test_swd_of_a_shift_is_its_length_over_sqrt2():
    # every 1-D projection is shifted by theta.s; the mean of (theta.s)^2 over evenly spaced angles is |s|^2 / 2
    x = gauss(400, seed=3)
    s = torch.tensor([3.0, -4.0], dtype=torch.float64)
    assert sliced_wasserstein(x, x + s) == pytest.approx(5.0 / math.sqrt(2), rel=1e-12)
    # for p = 1 the mean of |cos| over a half turn is 2 / pi
    assert sliced_wasserstein(x, x + s, p=1) == pytest.approx(5.0 * 2 / math.pi, rel=1e-3)


def test_swd_in_one_dimension_is_the_wasserstein_distance():
    # directions in 1-D are +-1, so every slice is the set itself: compare with scipy for unequal sizes
    a = torch.randn(37, 1, generator=torch.Generator().manual_seed(4))
    b = torch.randn(53, 1, generator=torch.Generator().manual_seed(5)) * 2 + 1
    want = scipy.stats.wasserstein_distance(a[:, 0].numpy(), b[:, 0].numpy())
    assert sliced_wasserstein(a, b, p=1, n_projections=6) == pytest.approx(want, rel=1e-9)


def test_swd_errors():
    with pytest.raises(ValueError, match="different dimensions"):
        sliced_wasserstein(gauss(5, 2), gauss(5, 3))
    with pytest.raises(ValueError, match="p must be >= 1"):
        sliced_wasserstein(gauss(5), gauss(5), p=0.5)


def test_mmd_matches_the_u_statistic_and_is_zero_for_identical_sets():
    x, y = gauss(40, seed=6), gauss(30, seed=7, shift=0.5)
    s = 0.8
    k = lambda a, b: torch.exp(-torch.cdist(a, b) ** 2 / (2 * s * s))  # noqa: E731
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    want = ((kxx.sum() - kxx.trace()) / (40 * 39) + (kyy.sum() - kyy.trace()) / (30 * 29) - 2 * kxy.mean()).item()
    assert mmd_rbf(x, y, bandwidth=s) == pytest.approx(want, rel=1e-9)
    # identical sets: the unbiased estimate is 2 (mean off-diagonal k - 1) / n: just below 0, within 2/n
    x = gauss(500, seed=8)
    assert -2 / 500 <= mmd_rbf(x, x) <= 0


def test_mmd_separates_distributions_and_uses_the_median_heuristic():
    a, b, c = gauss(400, seed=1), gauss(400, seed=2), gauss(400, seed=3, shift=1.0)
    same, shifted = mmd_rbf(a, b), mmd_rbf(a, c)
    assert abs(same) < 0.01 and shifted > 0.1
    assert mmd_rbf(a, c) == mmd_rbf(a, c, bandwidth=median_distance(a))
    with pytest.raises(ValueError, match="positive"):
        mmd_rbf(a, b, bandwidth=[1.0, -1.0])


# --- precision / recall ----------------------------------------------------------------------

def test_precision_recall_of_a_set_against_itself():
    x = gauss(500, 4)
    pr = precision_recall(x, x, k=3)
    assert pr["precision"] == 1.0 and pr["recall"] == 1.0 and pr["coverage"] == 1.0
    # each ball B(x_i, r_i) holds x_i and its k nearest neighbours: density = (k + 1) / k
    assert pr["density"] == pytest.approx(4 / 3)


def test_precision_drops_for_off_manifold_samples():
    real = gauss(400, seed=1)
    fake = torch.cat([gauss(200, seed=2), gauss(200, seed=3, shift=50.0)])  # half far from any real point
    pr = precision_recall(real, fake)
    assert pr["precision"] == pytest.approx(0.5, abs=0.05)
    assert pr["precision"] <= 0.5


def test_recall_drops_for_a_dropped_mode():
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[-10.0, 0.0], [10.0, 0.0]], dtype=torch.float64)
    real = centres[torch.arange(600) % 2] + torch.randn(600, 2, generator=g, dtype=torch.float64)
    fake = centres[0] + torch.randn(600, 2, generator=g, dtype=torch.float64)  # only the left mode
    pr = precision_recall(real, fake)
    assert pr["precision"] > 0.9
    assert 0.35 < pr["recall"] <= 0.5 and 0.35 < pr["coverage"] <= 0.5


def test_manifold_radii_are_kth_neighbour_distances():
    x = torch.tensor([[0.0], [1.0], [3.0], [7.0]], dtype=torch.float64)
    assert manifold_radii(x, 1).tolist() == [1.0, 1.0, 2.0, 4.0]
    assert manifold_radii(x, 2).tolist() == [3.0, 2.0, 3.0, 6.0]


# --- diversity and memorisation --------------------------------------------------------------

def test_mean_pairwise_distance():
    x = torch.tensor([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]])
    assert mean_pairwise_distance(x) == pytest.approx((5 + 10 + 5) / 3)
    assert mean_pairwise_distance(torch.ones(10, 3)) == 0.0
    with pytest.raises(ValueError, match="at least 2"):
        mean_pairwise_distance(torch.ones(1, 3))


def test_memorisation_finds_planted_copies():
    train = gauss(300, 16, seed=1)
    gen = gauss(50, 16, seed=2)
    gen[7], gen[31] = train[5], train[123]  # two exact copies of training examples
    mem = memorisation(gen, train, top=3)
    first, second = mem["closest"][:2]
    assert {(first["generated"], first["train"]), (second["generated"], second["train"])} == {(7, 5), (31, 123)}
    assert first["distance"] == 0.0 and second["distance"] == 0.0
    assert 2 / 50 <= mem["copy_fraction"] <= 4 / 50  # the copies, and at most a chance neighbour or two
    assert mem["nn_index"][7] == 5 and mem["ratio"][31] == 0.0
    # fresh draws from the training distribution sit at about the typical real distance
    assert 0.7 < np.median(np.delete(mem["ratio"], [7, 31])) < 1.3
    # images: many features take the fast matmul path; copies must still read exactly 0
    big_train, big_gen = gauss(100, 3072, seed=4), gauss(20, 3072, seed=5)
    big_gen[3] = big_train[42]
    big = memorisation(big_gen, big_train, top=1)
    assert big["closest"] == [{"generated": 3, "train": 42, "distance": 0.0, "ratio": 0.0}]
    # a held-out reference set gives the typical distance instead of leave-one-out
    held = memorisation(gen, train, reference=gauss(100, 16, seed=3))
    assert held["typical_from"].startswith("held-out")
    assert held["typical_real_distance"] > 0


# --- bootstrap -------------------------------------------------------------------------------

def test_bootstrap_interval_contains_the_estimate_and_is_reproducible():
    x = gauss(200, 1, seed=4)[:, 0]
    res = bootstrap(lambda v: float(v.mean()), x, rounds=40, level=0.9, seed=1)
    lo, hi = res["interval"]
    assert lo <= res["value"] <= hi
    assert res["value"] == pytest.approx(float(x.mean()))
    assert hi - lo == pytest.approx(2 * 1.645 / math.sqrt(200), rel=0.5)  # about the normal interval's width
    assert bootstrap(lambda v: float(v.mean()), x, rounds=40, seed=1) == res


def test_bootstrap_of_a_biased_statistic_is_recentred():
    # resampling with replacement shrinks the count of distinct values; the interval must still hold the estimate
    x = torch.arange(100, dtype=torch.float64)
    res = bootstrap(lambda v: float(len(torch.unique(v))), x, rounds=30, seed=0)
    assert res["value"] == 100 and res["interval"][0] <= 100 <= res["interval"][1]
    assert max(res["replicates"]) < 80  # the raw bootstrap values never reach the estimate


def test_bootstrap_dict_statistics_and_bounds():
    real, fake = gauss(200, seed=1), gauss(200, seed=2)
    res = bootstrap(lambda f: precision_recall(real, f), fake, rounds=10, bounds={"precision": (0, 1)})
    assert set(res) == {"precision", "recall", "density", "coverage"}
    assert 0 <= res["precision"]["interval"][0] <= res["precision"]["value"] <= res["precision"]["interval"][1] <= 1
    with pytest.raises(ValueError, match="rounds"):
        bootstrap(lambda v: 0.0, real, rounds=1)
    with pytest.raises(ValueError, match="level"):
        bootstrap(lambda v: 0.0, real, level=1.5)


# --- noise-prediction MSE --------------------------------------------------------------------

class Oracle(nn.Module):
    """The exact denoiser of data that is one point c: eps = (x_t - sqrt(abar_t) c) / sqrt(1 - abar_t)."""

    def __init__(self, schedule, c, predict="eps"):
        super().__init__()
        self.schedule, self.c, self.predict = schedule, c, predict

    def forward(self, x, t):
        if self.predict == "x0":
            return self.c.expand_as(x)
        ab = self.schedule.alpha_bar[t].to(x.dtype).reshape(-1, *[1] * (x.ndim - 1))
        return (x - ab.sqrt() * self.c) / (1 - ab).sqrt()


class Zero(nn.Module):
    def forward(self, x, t):
        return torch.zeros_like(x)


def test_timestep_bins_cover_every_t_once():
    bins = timestep_bins(1000, 7)
    covered = [t for lo, hi in bins for t in range(lo, hi + 1)]
    assert covered == list(range(1, 1001))
    with pytest.raises(ValueError, match="bins must be"):
        timestep_bins(10, 11)


@pytest.mark.parametrize("predict", ["eps", "x0"])
def test_noise_mse_of_the_exact_denoiser_is_zero(predict):
    sched = linear(100)
    c = torch.tensor([0.5, -1.0])
    x0 = c.repeat(64, 1)
    res = noise_mse(Oracle(sched, c, predict), sched, x0, prediction=predict, bins=5)
    assert res["mse"].shape == (5,) and res["per_sample"].shape == (5, 64)
    assert res["overall"] < 1e-6


def test_noise_mse_of_a_zero_net_is_the_noise_variance():
    sched = linear(50)
    x0 = torch.randn(2000, 4, generator=torch.Generator().manual_seed(0))
    res = noise_mse(Zero(), sched, x0, t_values=[1, 25, 50])
    assert res["t"].tolist() == [1, 25, 50]
    assert np.allclose(res["mse"], 1.0, atol=0.06)  # E eps^2 = 1, 8000 draws per t
    assert res["overall"] == pytest.approx(res["mse"].mean())
    assert noise_mse(Zero(), sched, x0, t_values=[1, 25, 50])["overall"] == res["overall"]  # seeded
    with pytest.raises(ValueError, match="t_values must lie in 1..T"):
        noise_mse(Zero(), sched, x0, t_values=[0])


def test_noise_mse_can_be_cancelled():
    with pytest.raises(EvaluationCancelled):
        noise_mse(Zero(), linear(10), torch.zeros(8, 2), bins=2, cancel=lambda: True)


def test_x0_from_eps_round_trip_used_by_the_oracle():
    sched = linear(100)
    c = torch.tensor([[0.5, -1.0]])
    t = torch.tensor([40])
    eps = torch.randn(1, 2)
    x_t = sched.alpha_bar[40].sqrt().float() * c + (1 - sched.alpha_bar[40]).sqrt().float() * eps
    assert torch.allclose(x0_from_eps(sched, x_t, t, Oracle(sched, c)(x_t, t)), c, atol=1e-5)


# --- signals ---------------------------------------------------------------------------------

def test_log_spectral_distance():
    t = torch.arange(64) / 64
    x = torch.stack([torch.sin(2 * math.pi * f * t + f) for f in (1, 2, 3, 4)])[:, None] \
        + 0.01 * torch.randn(4, 1, 64, generator=torch.Generator().manual_seed(0))
    assert log_spectral_distance(x, x) == 0.0
    assert log_spectral_distance(x, 10 * x) == pytest.approx(20.0, rel=1e-4)  # 100x the power is 20 dB
    f = signal_features(x)
    assert f.shape == (4, 16 + 2)
    assert f[:, -2].tolist() == pytest.approx(x[:, 0].double().std(-1).tolist())


def test_confident_fraction_counts_rows_with_a_sure_class():
    from core.evaluate import confident_fraction

    logits = torch.tensor([[10.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 3.0, 0.0], [5.0, 5.0, -5.0]])
    # softmax maxima: ~1.0, 1/3, e^3/(e^3+2) ~ 0.909, ~0.5
    assert confident_fraction(logits) == 0.5
    assert confident_fraction(logits, p=0.95) == 0.25
