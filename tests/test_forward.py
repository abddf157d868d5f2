import pytest
import torch

from core import forward as F
from core.schedules import make_schedule


@pytest.fixture(scope="module")
def sched():
    return make_schedule("linear", 100)


def test_q_sample_endpoints(sched):
    x0 = torch.randn(8, 3, 4, 4)
    eps = torch.randn_like(x0)
    assert torch.equal(F.q_sample(sched, x0, 0, eps), x0)  # t = 0 is the data itself
    t = torch.full((8,), 100)
    xt = F.q_sample(sched, x0, t, eps)
    a = sched.alpha_bar[100].sqrt().item()
    assert torch.allclose(xt, a * x0 + (1 - a * a) ** 0.5 * eps, atol=1e-6)


def test_markov_chain_and_closed_form_agree_in_distribution(sched):
    # x0 is a fixed non-trivial vector; over many independent chains, mean and variance of x_t
    # must match q(x_t | x_0) = N(sqrt(abar) x0, 1 - abar).
    g = torch.Generator().manual_seed(0)
    x0 = torch.linspace(-1, 1, 8).repeat(20000, 1)
    for t in (1, 10, 60):
        xt, _ = F.q_chain(sched, x0, t, generator=g)
        ab = sched.alpha_bar[t].item()
        assert torch.allclose(xt.mean(0), ab**0.5 * x0[0], atol=0.03)
        assert torch.allclose(xt.var(0), torch.full((8,), 1 - ab), rtol=0.05, atol=2e-3)


def test_q_chain_keeps_requested_states(sched):
    x0 = torch.zeros(2, 2)
    xt, kept = F.q_chain(sched, x0, 5, generator=torch.Generator().manual_seed(1), keep=[0, 2, 5])
    assert sorted(kept) == [0, 2, 5] and torch.equal(kept[5], xt) and torch.equal(kept[0], x0)
    with pytest.raises(ValueError, match="t must be between 0 and T=100"):
        F.q_chain(sched, x0, 101)


def test_posterior_matches_bayes_rule_and_ddpm_formula(sched):
    x0 = torch.randn(5, 3)
    xt = torch.randn(5, 3)
    t = torch.tensor([2, 10, 50, 99, 100])
    mean, var = F.q_posterior(sched, x0, xt, t)
    ab, ab_prev, beta = sched.alpha_bar[t], sched.alpha_bar[t - 1], sched.beta[t]
    c0 = (ab_prev.sqrt() * beta / (1 - ab)).float()[:, None]
    ct = ((1 - beta).sqrt() * (1 - ab_prev) / (1 - ab)).float()[:, None]
    assert torch.allclose(mean, c0 * x0 + ct * xt, atol=1e-6)
    assert torch.allclose(var.flatten(), ((1 - ab_prev) / (1 - ab) * beta).float(), rtol=1e-5)
    # Bayes: posterior precision = prior precision + likelihood precision
    prec = 1 / (1 - ab_prev) + (1 - beta) / beta
    assert torch.allclose(var.flatten().double(), 1 / prec, rtol=1e-5)


def test_posterior_at_t1_is_the_data(sched):
    x0, xt = torch.randn(4, 2), torch.randn(4, 2)
    mean, var = F.q_posterior(sched, x0, xt, 1)
    assert torch.allclose(mean, x0, atol=1e-6) and float(var.abs().max()) == 0


def test_prediction_conversions_round_trip(sched):
    x0 = torch.randn(6, 1, 8)
    eps = torch.randn_like(x0)
    t = torch.tensor([1, 5, 20, 50, 80, 100])
    xt = F.q_sample(sched, x0, t, eps)
    assert torch.allclose(F.x0_from_eps(sched, xt, t, eps), x0, atol=1e-3)
    assert torch.allclose(F.eps_from_x0(sched, xt, t, x0), eps, atol=1e-3)
    v = F.v_from(sched, x0, t, eps)
    x0_v, eps_v = F.x0_eps_from_v(sched, xt, t, v)
    assert torch.allclose(x0_v, x0, atol=1e-5) and torch.allclose(eps_v, eps, atol=1e-5)
    for pred in ("eps", "x0", "v"):
        out = F.target_for(pred, sched, x0, t, eps)
        a, b = F.predictions_from_output(sched, xt, t, out, pred)
        assert torch.allclose(a, x0, atol=1e-3) and torch.allclose(b, eps, atol=1e-3), pred
    with pytest.raises(ValueError, match="prediction must be"):
        F.target_for("score", sched, x0, t, eps)


def test_min_snr_weights(sched):
    like = torch.zeros(3, 2)
    t = torch.tensor([1, 50, 100])
    snr = sched.snr[t].float()
    w_eps = F.snr_weight(sched, t, "eps", 5.0, like).flatten()
    assert torch.allclose(w_eps, torch.clamp(snr, max=5) / snr)
    assert torch.allclose(F.snr_weight(sched, t, "x0", 5.0, like).flatten(), torch.clamp(snr, max=5))
