"""FID, IS and KID through torchmetrics on precomputed features, checked against closed forms."""
import numpy as np
import pytest
import scipy.linalg
import torch

from core.fid import FID, KID, Precomputed, frechet_distance, inception_score, kernel_inception_distance

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


def with_moments(n, mean, cov, seed):
    """n samples whose sample mean and (unbiased) covariance are exactly `mean` and `cov`."""
    d = len(mean)
    z = torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    z = z - z.mean(0)
    white = torch.linalg.cholesky(torch.cov(z.T))  # z = w L^T with cov(w) = I
    w = torch.linalg.solve_triangular(white, z.T, upper=False).T
    return w @ torch.linalg.cholesky(cov).T + mean


def closed_form(mu1, s1, mu2, s2):
    covmean = scipy.linalg.sqrtm(s1.numpy() @ s2.numpy()).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1.numpy() + s2.numpy() - 2 * covmean))


def test_fid_of_identical_sets_is_zero():
    x = torch.randn(500, 8, generator=torch.Generator().manual_seed(0))
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-8)


def test_fid_matches_the_closed_form_between_gaussians():
    g = torch.Generator().manual_seed(1)
    d = 5
    a = torch.randn(d, d, generator=g, dtype=torch.float64)
    b = torch.randn(d, d, generator=g, dtype=torch.float64)
    s1, s2 = a @ a.T + 0.5 * torch.eye(d, dtype=torch.float64), b @ b.T + 0.1 * torch.eye(d, dtype=torch.float64)
    mu1, mu2 = torch.zeros(d, dtype=torch.float64), torch.arange(d, dtype=torch.float64) / 3
    x, y = with_moments(400, mu1, s1, 2), with_moments(300, mu2, s2, 3)
    assert frechet_distance(x, y) == pytest.approx(closed_form(mu1, s1, mu2, s2), rel=1e-8)


def test_fid_of_a_shift_is_its_squared_length():
    x = torch.randn(300, 4, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    shift = torch.tensor([1.0, 2.0, 0.0, -2.0], dtype=torch.float64)
    assert frechet_distance(x, x + shift) == pytest.approx(9.0, rel=1e-8)


def test_fid_object_reuses_the_real_statistics():
    g = torch.Generator().manual_seed(5)
    real = torch.randn(400, 6, generator=g)
    fakes = [torch.randn(200, 6, generator=g) + k for k in range(3)]
    fid = FID(real)
    assert [fid(f) for f in fakes] == pytest.approx([frechet_distance(real, f) for f in fakes], rel=1e-10)
    with pytest.raises(ValueError, match="dimensions"):
        fid(torch.randn(10, 5))


def test_inception_score_extremes():
    k = 10
    sure = torch.full((100, k), -30.0)
    sure[torch.arange(100), torch.arange(100) % k] = 30.0  # confident and spread evenly over k classes
    assert inception_score(sure)[0] == pytest.approx(k, rel=1e-6)
    one_class = torch.zeros(100, k)
    one_class[:, 3] = 30.0
    assert inception_score(one_class)[0] == pytest.approx(1.0, abs=1e-6)
    assert inception_score(torch.zeros(50, k))[0] == pytest.approx(1.0)  # uniform predictions: no information


def test_inception_score_splits_are_seeded():
    logits = torch.randn(200, 10, generator=torch.Generator().manual_seed(6)) * 3
    a, b = inception_score(logits, splits=5, seed=1), inception_score(logits, splits=5, seed=1)
    assert a == b and a[1] > 0
    with pytest.raises(ValueError, match="splits"):
        inception_score(logits, splits=0)


def test_kid_is_the_unbiased_polynomial_mmd():
    g = torch.Generator().manual_seed(7)
    x = torch.randn(60, 4, generator=g, dtype=torch.float64)
    y = torch.randn(50, 4, generator=g, dtype=torch.float64) + 0.3
    k = lambda a, b: (a @ b.T / 4 + 1) ** 3  # noqa: E731
    m = 50  # one subset of the smaller size: torchmetrics draws m rows of each set
    kid, std = kernel_inception_distance(x, y, subset_size=m, subsets=1, seed=0)
    # with the whole smaller set and a random m-subset of the larger one, compare against the formula directly
    torch.manual_seed(0)
    xs = x[torch.randperm(60)[:m]]
    ys = y[torch.randperm(50)[:m]]
    kxx, kyy, kxy = k(xs, xs), k(ys, ys), k(xs, ys)
    want = ((kxx.sum() - kxx.trace() + kyy.sum() - kyy.trace()) / (m * (m - 1)) - 2 * kxy.sum() / m**2).item()
    assert kid == pytest.approx(want, rel=1e-9)
    assert std == 0.0


def test_kid_is_near_zero_for_one_distribution_and_grows_with_a_shift():
    g = torch.Generator().manual_seed(8)
    a, b = torch.randn(400, 8, generator=g), torch.randn(400, 8, generator=g)
    kid = KID(a, seed=0)
    assert abs(kid(b)) < 0.02
    assert kid(b + 1.0) > 0.2


def test_precomputed_module_passes_features_through():
    m = Precomputed(7)
    x = torch.randn(3, 7)
    assert m.num_features == 7 and m(x) is x
