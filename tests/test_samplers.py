"""Samplers checked against exact (analytic) denoisers, where the right answer is known."""
import math

import pytest
import torch

from core.forward import eps_from_x0, target_for
from core.samplers import SAMPLERS, Step, final, get_sampler, sample, sampler_options
from core.schedules import broadcast, gather, make_schedule


class GaussianDenoiser(torch.nn.Module):
    """The exact eps-predictor for data ~ N(mu, std^2) per coordinate: E[x0 | x_t] in closed form."""

    def __init__(self, schedule, mu, std, prediction="eps"):
        super().__init__()
        self.s, self.mu, self.var, self.prediction = schedule, mu, std**2, prediction

    def forward(self, x, t):
        ab = broadcast(gather(self.s.alpha_bar, t, x.shape[0]), x)
        x0 = self.mu + ab.sqrt() * self.var / (ab * self.var + 1 - ab) * (x - ab.sqrt() * self.mu)
        eps = eps_from_x0(self.s, x, t, x0)
        return target_for(self.prediction, self.s, x0, t, eps)


class MixtureDenoiser(torch.nn.Module):
    """The exact E[x0 | x_t] for an isotropic 2-D Gaussian mixture (equal weights, small std)."""

    def __init__(self, schedule, means, std):
        super().__init__()
        self.s, self.means, self.var = schedule, means, std**2

    def forward(self, x, t):
        ab = broadcast(gather(self.s.alpha_bar, t, x.shape[0]), x)  # (B, 1)
        tot = ab * self.var + 1 - ab                               # marginal variance of each component
        diff = x[:, None, :] - ab.sqrt()[:, None, :] * self.means[None]  # (B, K, 2)
        logw = -(diff**2).sum(-1) / (2 * tot)
        w = torch.softmax(logw, dim=1)                              # posterior over components
        comp_x0 = self.means[None] + (ab.sqrt() * self.var / tot)[:, None, :] * diff
        x0 = (w[..., None] * comp_x0).sum(1)
        return eps_from_x0(self.s, x, t, x0)


@pytest.fixture(scope="module")
def sched():
    return make_schedule("linear", 1000)


@pytest.mark.parametrize("name,opts,steps", [
    ("ddpm", {}, 1000), ("ddpm", {"variance": "beta"}, 1000), ("ddpm", {}, 250),
    ("ddim", {"eta": 0.0}, 1000), ("ddim", {"eta": 0.0}, 50), ("ddim", {"eta": 1.0}, 250), ("dpm++2m", {}, 20),
    ("ddim", {"eta": 0.0, "spacing": "quadratic"}, 50), ("ddim", {"eta": 1.0, "spacing": "quadratic"}, 50),
    ("dpm++2m", {"spacing": "quadratic"}, 20), ("ddpm", {"spacing": "quadratic"}, 50),
    ("dpm++2m-sde", {}, 50), ("dpm++2m-sde", {"spacing": "quadratic"}, 50), ("dpm++2m-sde", {}, 20),
])
def test_gaussian_data_recovers_mean_and_variance(sched, name, opts, steps):
    # Few-step samplers end on a posterior mean and so shrink the variance a little; std = 0.6 keeps
    # that bias (a few %) inside the tolerance while a wrong coefficient would not be.
    mu, std = 0.7, 0.6
    model = GaussianDenoiser(sched, mu, std)
    x = sample(model, sched, (4000, 2), sampler=name, seed=0, steps=steps, **opts)
    assert x.mean().item() == pytest.approx(mu, abs=0.03)
    assert x.std().item() == pytest.approx(std, rel=0.08)


def test_ddpm_beta_is_ddpms_upper_bound_variance():
    sched = make_schedule("linear", 100)
    model = GaussianDenoiser(sched, 0.0, 0.5)
    a = sample(model, sched, (64, 2), sampler="ddpm-beta", seed=3, steps=100)
    b = sample(model, sched, (64, 2), sampler="ddpm", seed=3, steps=100, variance="beta")
    assert torch.equal(a, b)


def test_the_lower_bound_variance_thins_fine_structure_and_the_upper_bound_keeps_it():
    # Data N(0, 0.03^2) and the exact denoiser: DDPM 1000 with the posterior's variance drops the posterior's
    # uncertainty about x0, which is not small while the noise is as wide as the data (0.93 of the spread
    # with the cosine schedule); sigma^2 = beta keeps the spread (1.00). 20,000 samples: the std is within 1%.
    sched = make_schedule("cosine", 1000)
    model = GaussianDenoiser(sched, 0.0, 0.03)
    lower = sample(model, sched, (20000, 1), sampler="ddpm", seed=0).std().item() / 0.03
    upper = sample(model, sched, (20000, 1), sampler="ddpm-beta", seed=0).std().item() / 0.03
    assert lower == pytest.approx(0.93, abs=0.02) and upper == pytest.approx(1.0, abs=0.02)


@pytest.mark.parametrize("prediction", ["x0", "v"])
def test_other_prediction_targets(sched, prediction):
    model = GaussianDenoiser(sched, -0.5, 0.6, prediction=prediction)
    x = sample(model, sched, (4000, 1), sampler="ddim", seed=1, steps=100, prediction=prediction)
    assert x.mean().item() == pytest.approx(-0.5, abs=0.03) and x.std().item() == pytest.approx(0.6, rel=0.08)


@pytest.mark.parametrize("name,steps", [("ddpm", 250), ("ddim", 50), ("dpm++2m", 25), ("dpm++2m-sde", 50)])
def test_mixture_samples_land_on_modes(sched, name, steps):
    angles = torch.arange(8) * (2 * math.pi / 8)
    means = 2.0 * torch.stack([angles.cos(), angles.sin()], 1)
    model = MixtureDenoiser(sched, means, 0.05)
    x = sample(model, sched, (2000, 2), sampler=name, seed=2, steps=steps)
    d = torch.cdist(x, means)
    nearest = d.min(1)
    assert (nearest.values < 0.25).float().mean() > 0.97          # on a mode, not between them
    counts = torch.bincount(nearest.indices, minlength=8).float()
    assert counts.min() > 0.5 * counts.mean()                      # every mode is found, roughly evenly


def test_ddim_with_eta1_is_ddpm(sched):
    # Song et al.: eta = 1 gives exactly the DDPM posterior variance, so the same noise gives the same path.
    model = GaussianDenoiser(sched, 0.1, 0.5)
    a = sample(model, sched, (64, 2), sampler="ddim", seed=3, steps=40, eta=1.0)
    b = sample(model, sched, (64, 2), sampler="ddpm", seed=3, steps=40)
    assert torch.allclose(a, b, atol=1e-5)


def test_ddim_eta0_is_deterministic_given_x_T(sched):
    model = GaussianDenoiser(sched, 0.0, 0.5)
    x_T = torch.randn(16, 3)
    a = final(SAMPLERS["ddim"](model, sched, (16, 3), steps=20, x_T=x_T, generator=torch.Generator().manual_seed(1)))
    b = final(SAMPLERS["ddim"](model, sched, (16, 3), steps=20, x_T=x_T, generator=torch.Generator().manual_seed(2)))
    assert torch.equal(a, b)


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_same_seed_same_result_and_step_records(sched, name):
    model = GaussianDenoiser(sched, 0.2, 0.4)
    a = sample(model, sched, (8, 1, 4), sampler=name, seed=5, steps=10)
    b = sample(model, sched, (8, 1, 4), sampler=name, seed=5, steps=10)
    assert torch.equal(a, b)
    steps = list(get_sampler(name)(model, sched, (8, 1, 4), steps=10, generator=torch.Generator().manual_seed(5)))
    assert len(steps) == 10 and all(isinstance(s, Step) for s in steps)
    assert [s.t for s in steps] == list(range(1000, 0, -100)) and steps[-1].t_next == 0
    for prev, nxt in zip(steps, steps[1:]):
        assert torch.equal(prev.x_next, nxt.x_t)                   # records chain together
    assert steps[0].x0.shape == steps[0].eps.shape == (8, 1, 4)


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_every_sampler_walks_the_spacing_it_is_given(sched, name):
    model = GaussianDenoiser(sched, 0.2, 0.4)
    steps = list(get_sampler(name)(model, sched, (4, 2), steps=10, spacing="quadratic",
                                   generator=torch.Generator().manual_seed(0)))
    assert [s.t for s in steps] == [1000, 810, 640, 490, 360, 250, 160, 90, 40, 10]
    assert [s.t_next for s in steps] == [810, 640, 490, 360, 250, 160, 90, 40, 10, 0]
    with pytest.raises(ValueError, match="unknown timestep spacing"):
        next(get_sampler(name)(model, sched, (4, 2), steps=10, spacing="log"))


def test_sampler_options_give_eta_to_ddim_only():
    assert sampler_options("ddim", 1, "quadratic") == {"spacing": "quadratic", "eta": 1.0}
    assert sampler_options("ddim", None) == {"spacing": "linear", "eta": 0.0}
    assert sampler_options("ddpm", 0.5) == sampler_options("dpm++2m") == {"spacing": "linear"}


def test_bad_arguments_are_clear(sched):
    model = GaussianDenoiser(sched, 0, 1)
    with pytest.raises(ValueError, match="steps must be an integer between 1 and T=1000"):
        next(SAMPLERS["ddim"](model, sched, (2, 2), steps=0))
    with pytest.raises(ValueError, match="eta must be between 0 and 1"):
        next(SAMPLERS["ddim"](model, sched, (2, 2), steps=5, eta=1.5))
    with pytest.raises(ValueError, match="unknown sampler 'euler'; known: ddpm, ddpm-beta, ddim, dpm\\+\\+2m"):
        get_sampler("euler")
    with pytest.raises(ValueError, match="x_T has shape"):
        next(SAMPLERS["ddpm"](model, sched, (2, 2), steps=5, x_T=torch.zeros(3, 2)))


def test_ddim_matches_diffusers_reference(sched):
    """Our DDIM(eta=0) equals diffusers' DDIMScheduler with trailing spacing (its t = our t - 1)."""
    diffusers = pytest.importorskip("diffusers")
    model = GaussianDenoiser(sched, 0.3, 0.5)
    x_T = torch.randn(32, 2, generator=torch.Generator().manual_seed(0))
    ours = final(SAMPLERS["ddim"](model, sched, (32, 2), steps=25, x_T=x_T))
    ref = diffusers.DDIMScheduler(num_train_timesteps=1000, beta_schedule="linear", timestep_spacing="trailing",
                                  set_alpha_to_one=True, clip_sample=False)
    ref.set_timesteps(25)
    x = x_T.clone()
    for k in ref.timesteps:
        eps = model(x, torch.full((32,), int(k) + 1))
        x = ref.step(eps, k, x, eta=0.0).prev_sample
    assert torch.allclose(ours, x, atol=1e-4)


@pytest.mark.parametrize("steps", [10, 25])
def test_dpm_solver_matches_diffusers_reference(sched, steps):
    """Our DPM-Solver++(2M) equals diffusers' DPMSolverMultistepScheduler (trailing spacing, first-order final step)."""
    diffusers = pytest.importorskip("diffusers")
    model = GaussianDenoiser(sched, 0.3, 0.5)
    x_T = torch.randn(32, 2, generator=torch.Generator().manual_seed(0))
    ours = final(SAMPLERS["dpm++2m"](model, sched, (32, 2), steps=steps, x_T=x_T))
    ref = diffusers.DPMSolverMultistepScheduler(
        num_train_timesteps=1000, beta_schedule="linear", timestep_spacing="trailing", algorithm_type="dpmsolver++",
        solver_order=2, lower_order_final=True, final_sigmas_type="zero")
    ref.set_timesteps(steps)
    x = x_T.clone()
    for k in ref.timesteps:
        x = ref.step(model(x, torch.full((32,), int(k) + 1)), k, x).prev_sample
    assert torch.allclose(ours, x, atol=1e-5)


@pytest.mark.parametrize("steps", [10, 50])
def test_dpm_solver_sde_matches_diffusers_reference(sched, steps):
    """Our DPM-Solver++(2M) SDE equals diffusers' "sde-dpmsolver++" step for step, given the same noise: both
    draw it on the CPU from one generator, one draw per step (diffusers draws one more on its last step,
    where it is multiplied by zero)."""
    diffusers = pytest.importorskip("diffusers")
    model = GaussianDenoiser(sched, 0.3, 0.5)
    x_T = torch.randn(32, 2, generator=torch.Generator().manual_seed(0))
    ours = final(SAMPLERS["dpm++2m-sde"](model, sched, (32, 2), steps=steps, x_T=x_T,
                                         generator=torch.Generator().manual_seed(5)))
    ref = diffusers.DPMSolverMultistepScheduler(
        num_train_timesteps=1000, beta_schedule="linear", timestep_spacing="trailing",
        algorithm_type="sde-dpmsolver++", solver_order=2, lower_order_final=True, final_sigmas_type="zero")
    ref.set_timesteps(steps)
    g = torch.Generator().manual_seed(5)
    x = x_T.clone()
    for k in ref.timesteps:
        x = ref.step(model(x, torch.full((32,), int(k) + 1)), k, x, generator=g).prev_sample
    assert torch.allclose(ours, x, atol=1e-5)
    # and the noise matters: another generator gives other samples
    other = final(SAMPLERS["dpm++2m-sde"](model, sched, (32, 2), steps=steps, x_T=x_T,
                                          generator=torch.Generator().manual_seed(6)))
    assert not torch.allclose(ours, other, atol=1e-3)


def test_posterior_coefficients_are_those_of_q_posterior_exactly(sched):
    from core.forward import posterior_coefficients, q_posterior

    x0, x_t = torch.randn(4, 3), torch.randn(4, 3)
    for t, s in ((1000, 980), (500, 499), (21, 1), (1, 0)):
        c0, ct, var = posterior_coefficients(float(sched.alpha_bar[t]), float(sched.alpha_bar[s]))
        mean, want_var = q_posterior(sched, x0, x_t, t, s)
        assert torch.equal(c0 * x0 + ct * x_t, mean)
        assert torch.equal(torch.full_like(want_var, var), want_var)


def test_noise_drawn_into_a_new_tensor_is_torch_randns_draw():
    """On a GPU the samplers draw their noise straight into page-locked memory with normal_ (core.samplers._randn);
    the numbers must be torch.randn's of the same seed, as every device shows the same picture for a seed."""
    for shape in ((64, 3, 32, 32), (7, 3), (1,)):  # whole 16-value blocks of the vectorised kernel, and tails
        a = torch.randn(shape, generator=torch.Generator().manual_seed(11))
        b = torch.empty(shape).normal_(generator=torch.Generator().manual_seed(11))
        assert torch.equal(a, b)


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_a_sampler_step_moves_nothing_but_its_noise_between_host_and_device(sched, name):
    """Coefficients are Python floats or views of the schedule's table on x's device: no gather, no read.

    Counted: Tensor methods that hand values to Python, and .to() calls naming a device (dtype casts
    stay where they are).
    """
    from torch.overrides import TorchFunctionMode

    calls = []

    class Watch(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            name = getattr(func, "__name__", "")
            moves = name == "to" and any(isinstance(a, (str, torch.device)) for a in (*args, *(kwargs or {}).values()))
            if moves or name in {"item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__"}:
                calls.append(name)
            return func(*args, **(kwargs or {}))

    net = GaussianDenoiser(sched, 0.5, 0.3)
    net.forward = lambda x, t: torch.zeros_like(x)  # the sampler's own work only
    x_T = torch.randn(8, 2)
    it = SAMPLERS[name](net, sched, x_T.shape, steps=10, x_T=x_T, generator=torch.Generator().manual_seed(0))
    next(it)  # setup (x_T moved to the device once)
    with Watch():
        for _ in range(5):
            next(it)
    # DDPM and the SDE solver draw their noise on the CPU (the same picture on every device) and move it:
    # one .to per step
    assert calls == (["to"] * 5 if name in ("ddpm", "ddpm-beta", "dpm++2m-sde") else []), calls
