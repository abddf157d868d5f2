import math

import pytest
import torch

from core.schedules import SCHEDULES, extract, make_schedule


@pytest.mark.parametrize("name", list(SCHEDULES))
@pytest.mark.parametrize("T", [1, 2, 10, 1000, 10_000])
def test_every_schedule_is_valid_for_any_T(name, T):
    s = make_schedule(name, T)
    assert s.T == T and s.beta.shape == (T + 1,)
    assert s.beta[0] == 0 and s.alpha_bar[0] == 1
    assert bool((s.beta[1:] > 0).all() and (s.beta[1:] <= 0.999).all())
    # alpha_bar is the running product of the alphas, exactly
    assert torch.equal(s.alpha_bar, torch.cumprod(1 - s.beta, 0))
    assert bool((s.alpha_bar[1:] < s.alpha_bar[:-1]).all())  # strictly more noise each step
    assert torch.allclose(s.snr[1:], s.alpha_bar[1:] / (1 - s.alpha_bar[1:]))
    assert torch.allclose(s.log_snr[1:], torch.log(s.snr[1:]))
    assert math.isinf(s.snr[0]) and math.isinf(s.log_snr[0])


def test_linear_matches_ddpm_definition():
    s = make_schedule("linear", 1000)
    ref = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float32)
    assert torch.equal(s.beta[1:].float(), ref)
    # scaled for other T as in improved-diffusion: beta ranges over (1000/T) * [1e-4, 0.02]
    s4 = make_schedule("linear", 4000)
    assert s4.beta[1].item() == pytest.approx(0.25e-4, rel=1e-6)
    assert s4.beta[-1].item() == pytest.approx(0.005, rel=1e-6)


def test_cosine_matches_nichol_dhariwal_formula():
    T, s_off = 1000, 0.008
    f = lambda t: math.cos((t / T + s_off) / (1 + s_off) * math.pi / 2) ** 2
    ref = [min(1 - f(i + 1) / f(i), 0.999) for i in range(T)]
    sched = make_schedule("cosine", T)
    assert torch.allclose(sched.beta[1:], torch.tensor(ref, dtype=torch.float64), rtol=1e-12, atol=1e-15)
    assert sched.beta[-1].item() == pytest.approx(0.999)  # the clip is active at the end


def test_against_diffusers_reference():
    diffusers = pytest.importorskip("diffusers")
    for ours, theirs in [("linear", "linear"), ("cosine", "squaredcos_cap_v2"), ("quadratic", "scaled_linear")]:
        ref = diffusers.DDPMScheduler(num_train_timesteps=1000, beta_schedule=theirs)
        s = make_schedule(ours, 1000)
        assert torch.allclose(s.beta[1:].float(), ref.betas, rtol=1e-6, atol=1e-9), ours
        assert torch.allclose(s.alpha_bar[1:].float(), ref.alphas_cumprod, rtol=1e-5, atol=1e-7), ours


def test_sigmoid_schedule_is_monotone_and_ends_near_pure_noise():
    s = make_schedule("sigmoid", 1000)
    assert s.alpha_bar[-1] < 1e-3 and s.alpha_bar[1] > 0.99


def test_logsnr_schedule_is_linear_in_log_snr():
    """alpha_bar_t is sigmoid(lambda(t/T)) over its value at t = 0 (the betas telescope), so logit(alpha_bar_t
    * sigmoid(lambda_max)) falls by exactly (lambda_max - lambda_min) / T per step."""
    lmax, lmin, T = 9.0, -11.0, 1000
    s = make_schedule("logsnr", T)
    t = torch.arange(T + 1, dtype=torch.float64)
    raw = s.alpha_bar * torch.sigmoid(torch.tensor(lmax, dtype=torch.float64))
    assert torch.allclose(torch.logit(raw), lmax + (lmin - lmax) * t / T, atol=1e-9)
    sigma = (1 - s.alpha_bar).sqrt()
    # many more steps at low noise than cosine: where fine structure is decided
    assert int((sigma < 0.03).sum()) > 5 * int(((1 - make_schedule("cosine", T).alpha_bar).sqrt() < 0.03).sum())
    bound = torch.sigmoid(torch.tensor([lmin, lmax], dtype=torch.float64))
    assert s.alpha_bar[-1].item() == pytest.approx((bound[0] / bound[1]).item(), rel=1e-9, abs=0)
    with pytest.raises(ValueError, match="lambda_max must be above lambda_min"):
        make_schedule("logsnr", T, lambda_max=-1.0, lambda_min=1.0)


@pytest.mark.parametrize("T", [0, -1, 10_001, 2.5, "5"])
def test_bad_T_is_a_clear_error(T):
    with pytest.raises(ValueError, match="T must be an integer between 1 and 10000"):
        make_schedule("linear", T)


def test_unknown_schedule_lists_known():
    with pytest.raises(ValueError, match="known: linear, cosine, sigmoid, quadratic, logsnr"):
        make_schedule("exponential", 100)


def test_timesteps_and_respacing():
    s = make_schedule("linear", 1000)
    ts = s.timesteps(10)
    assert ts.tolist() == [1000, 900, 800, 700, 600, 500, 400, 300, 200, 100, 0]
    assert s.timesteps(1000).tolist() == list(range(1000, -1, -1))
    r, orig = s.respace(10)
    assert r.T == 10 and orig.tolist() == list(range(0, 1001, 100))
    # q(x_t | x_0) is unchanged on the kept timesteps
    assert torch.allclose(r.alpha_bar, s.alpha_bar[orig], rtol=1e-12)
    for bad in (0, 1001):
        with pytest.raises(ValueError, match="steps must be an integer between 1 and T=1000"):
            s.timesteps(bad)


def test_quadratic_spacing_puts_steps_at_low_noise_and_never_repeats_one():
    s = make_schedule("linear", 1000)
    # the DDIM paper's t_k = T (k / steps)^2, exactly where rounding keeps the values distinct
    assert s.timesteps(10, "quadratic").tolist() == [1000, 810, 640, 490, 360, 250, 160, 90, 40, 10, 0]
    # at 50 steps round(1000 (1/50)^2) = 0 would repeat t = 0: the first k take the next free timesteps
    ts = s.timesteps(50, "quadratic").tolist()
    assert ts[-4:] == [4, 2, 1, 0] and ts[:3] == [1000, 960, 922]
    for steps in range(1, 1001):
        ts = s.timesteps(steps, "quadratic")
        assert len(ts) == steps + 1 and ts[0] == 1000 and ts[-1] == 0 and bool((ts[:-1] > ts[1:]).all()), steps
    assert s.timesteps(1000, "quadratic").tolist() == s.timesteps(1000).tolist()  # every step: nothing to choose
    r, orig = s.respace(10, "quadratic")
    assert orig.tolist() == [0, 10, 40, 90, 160, 250, 360, 490, 640, 810, 1000] and "quadratic" in r.name
    with pytest.raises(ValueError, match="unknown timestep spacing 'cubic'; known: linear, quadratic"):
        s.timesteps(10, "cubic")


def test_extract_broadcasts_per_sample():
    s = make_schedule("linear", 10)
    x = torch.zeros(3, 2, 4, 4)
    out = extract(s.alpha_bar, torch.tensor([0, 5, 10]), x)
    assert out.shape == (3, 1, 1, 1) and out.dtype == torch.float32
    assert out[0].item() == 1.0 and out[2].item() == pytest.approx(s.alpha_bar[10].item(), rel=1e-6)
    assert extract(s.beta, 3, torch.zeros(2, 2)).shape == (2, 1)


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_curves_are_computed_once_and_equal_their_formulas_exactly(name):
    s = make_schedule(name, 500)
    assert s.alpha_bar is s.alpha_bar and s.snr is s.snr  # cached: one cumprod per schedule, not one per access
    alpha = 1.0 - s.beta
    alpha_bar = torch.cumprod(alpha, 0)
    assert torch.equal(s.alpha, alpha) and torch.equal(s.alpha_bar, alpha_bar)
    assert torch.equal(s.snr, alpha_bar / (1.0 - alpha_bar))
    assert torch.equal(s.log_snr, torch.log(alpha_bar) - torch.log1p(-alpha_bar))
    assert torch.equal(s.sqrt_alpha_bar, alpha_bar.sqrt())
    assert torch.equal(s.sqrt_one_minus_alpha_bar, (1.0 - alpha_bar).sqrt())
    assert all(v.dtype == torch.float64 for v in (s.alpha_bar, s.snr, s.log_snr))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_tables_and_coef_equal_extract_exactly(dtype):
    s = make_schedule("cosine", 200)
    tab = s.table("sqrt_alpha_bar", "cpu", dtype)
    assert tab is s.table("sqrt_alpha_bar", torch.device("cpu"), dtype)  # made once per device and dtype
    assert torch.equal(tab, s.sqrt_alpha_bar.to(dtype))
    x = torch.zeros(5, 3, 4, 4, dtype=dtype)
    t = torch.tensor([1, 7, 50, 199, 200])
    for name in ("beta", "alpha_bar", "sqrt_alpha_bar", "sqrt_one_minus_alpha_bar", "snr"):
        want = extract(getattr(s, name), t, x)
        got = s.coef(name, t, x)
        assert got.shape == want.shape == (5, 1, 1, 1) and got.dtype == dtype and torch.equal(got, want), name
        assert torch.equal(s.coef(name, 7, x), extract(getattr(s, name), 7, x)), name  # an int t: views only
    assert torch.equal(s.coef("beta", torch.tensor(3), x[:2]), extract(s.beta, 3, x[:2]))
