"""The training engine: loss, LR schedule, EMA, per-t loss, previews, NaN guard, determinism, exact resume."""
from __future__ import annotations

import functools
import math
import shutil
import threading

import pytest
import torch

import core.samplers
import core.training
from core import checkpoint
from core.config import DataConfig, DiffusionConfig, ModelConfig, RunConfig, TrainConfig
from core.data import load_dataset
from core.forward import q_sample
from core.schedules import make_schedule
from core.training import (
    NonFiniteLossError,
    PerTimestepLoss,
    StepEvent,
    Trainer,
    _Series,
    diffusion_loss,
    ema_decay,
    ema_lerp_,
    lr_factor,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py

TINY_MLP = ModelConfig("mlp", {"width": 32, "blocks": 1, "fourier_features": 8})


@pytest.fixture(scope="module")
def points():
    return load_dataset("gaussians8", n=2000, seed=0)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def make_config(steps=20, model=TINY_MLP, data="gaussians8", prediction="eps", T=100, **train) -> RunConfig:
    train = {"batch_size": 64, "lr": 3e-3, "warmup_steps": 5, "preview_every": 0, "log_every": 5, **train}
    return RunConfig(model=model, diffusion=DiffusionConfig("linear", T, prediction), data=DataConfig(data),
                     train=TrainConfig(steps=steps, **train))


def losses(trainer: Trainer, n: int) -> list[float]:
    return [trainer.step().loss for _ in range(n)]


# --- the pieces -------------------------------------------------------------------------------


class Zero(torch.nn.Module):
    def forward(self, x, t):
        return torch.zeros_like(x)


@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
@pytest.mark.parametrize("gamma", [None, 5.0])
def test_diffusion_loss_is_the_weighted_mse_to_the_target(prediction, gamma):
    # A net that outputs 0 has loss = mean_b w_b * mean(target_b^2), with the targets written out by hand.
    sched = make_schedule("linear", 100)
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(6, 2, generator=g), torch.randn(6, 2, generator=g)
    t = torch.tensor([1, 5, 20, 50, 80, 100])
    ab = sched.alpha_bar[t].float()[:, None]
    target = {"eps": eps, "x0": x0, "v": ab.sqrt() * eps - (1 - ab).sqrt() * x0}[prediction]
    mse = target.pow(2).mean(1)
    snr = (ab / (1 - ab))[:, 0]
    w = {"eps": snr.clamp(max=gamma) / snr, "x0": snr.clamp(max=gamma),
         "v": snr.clamp(max=gamma) / (snr + 1)}[prediction] if gamma else torch.ones(6)
    loss, per_sample = diffusion_loss(Zero(), sched, x0, t, eps, prediction, gamma)
    torch.testing.assert_close(per_sample, mse)
    torch.testing.assert_close(loss, (w * mse).mean())


def test_diffusion_loss_feeds_the_net_q_sample_and_t():
    sched = make_schedule("cosine", 50)
    seen = {}

    class Spy(torch.nn.Module):
        def forward(self, x, t):
            seen["x"], seen["t"] = x, t
            return x

    x0, eps, t = torch.randn(4, 1, 8), torch.randn(4, 1, 8), torch.tensor([1, 2, 49, 50])
    diffusion_loss(Spy(), sched, x0, t, eps)
    torch.testing.assert_close(seen["x"], q_sample(sched, x0, t, eps))
    assert torch.equal(seen["t"], t)


def test_lr_factor_warms_up_linearly_then_decays_by_cosine_to_the_floor():
    assert [lr_factor(s, 4, 100, 0.1) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert lr_factor(4, 4, 100, 0.1) == 1.0
    assert lr_factor(52, 4, 100, 0.1) == pytest.approx(0.1 + 0.9 * 0.5)  # halfway through the cosine
    assert lr_factor(100, 4, 100, 0.1) == pytest.approx(0.1)
    assert lr_factor(5000, 4, 100, 0.1) == pytest.approx(0.1)  # training on past the end holds the floor
    assert lr_factor(0, 0, 10, 0.0) == 1.0


def test_ema_decay_warms_up_to_the_configured_value():
    assert ema_decay(0.999, 0) == pytest.approx(0.1)
    assert ema_decay(0.999, 10) == pytest.approx(11 / 20)
    assert ema_decay(0.9, 10_000) == 0.9


@pytest.mark.parametrize("per_tensor", [True, False], ids=["cpu-path", "gpu-path"])
def test_ema_lerp_moves_by_the_weight_and_reads_nothing(per_tensor):
    ema, raw = [torch.zeros(3), torch.ones(2, 2)], [torch.full((3,), 2.0), torch.full((2, 2), 5.0)]
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        ema_lerp_(ema, raw, torch.tensor(0.25), per_tensor)
    assert not [e for e in prof.events() if e.name == "aten::_local_scalar_dense"]
    assert torch.equal(ema[0], torch.full((3,), 0.5)) and torch.equal(ema[1], torch.full((2, 2), 2.0))
    ema_lerp_(ema, raw, torch.tensor(0.0), per_tensor)  # a skipped step moves nothing
    assert torch.equal(ema[0], torch.full((3,), 0.5))


def test_per_timestep_loss_bins_and_running_means():
    p = PerTimestepLoss(T=100, bins=4, decay=0.5)
    assert p.edges == (0, 25, 50, 75, 100) and p.centers == (12.5, 37.5, 62.5, 87.5)
    assert p.bin_of[[1, 25, 26, 50, 51, 100]].tolist() == [0, 0, 1, 1, 2, 3]
    v = p.update(torch.tensor([1, 25, 30]), torch.tensor([1.0, 3.0, 5.0]))
    assert v[:2] == (2.0, 5.0) and all(math.isnan(x) for x in v[2:])  # bins 2, 3 unseen yet
    v = p.update(torch.tensor([10, 100]), torch.tensor([8.0, 7.0]))
    # bin 0: sums 0.5 * 4 + 8 = 10, counts 0.5 * 2 + 1 = 2 -> 5; bin 3: 7
    assert v[0] == pytest.approx(5.0) and v[1] == pytest.approx(5.0) and v[3] == pytest.approx(7.0)
    assert PerTimestepLoss(T=10).bins == 10  # never more bins than timesteps


def test_series_thins_itself_but_always_spans_the_run():
    s = _Series(max_len=50)
    for step in range(1, 10_001):
        s.add(step, float(step))
    steps = [st for st, _ in s.items]
    assert len(steps) <= 50 and steps == sorted(steps)
    assert steps[0] <= 10_000 // 50 * 2 and steps[-1] > 10_000 - 2 * s.stride
    assert all(st % s.stride == 0 for st in steps)


# --- the trainer ------------------------------------------------------------------------------


def test_loss_decreases_on_a_2d_toy(points):
    cfg = make_config(steps=150, model=ModelConfig("mlp", {"width": 32, "blocks": 1, "fourier_features": 16}),
                      lr=5e-3, warmup_steps=10)
    tr = Trainer(cfg, points)
    ls = [e.loss for e in tr.run()]
    first, last = sum(ls[:10]) / 10, sum(ls[-30:]) / 30
    assert last < 0.7 * first, (first, last)
    assert tr.done and tr.step_count == 150


def test_events_carry_what_they_promise(points):
    cfg = make_config(steps=12, batch_size=32, T=100, preview_every=4, warmup_steps=3)
    logged = []
    tr = Trainer(cfg, points, log=logged.append)
    events = list(tr.run())
    assert [e.step for e in events] == list(range(1, 13))
    for e in events:
        assert isinstance(e, StepEvent)
        assert e.lr == pytest.approx(3e-3 * lr_factor(e.step - 1, 3, 12, cfg.train.min_lr_ratio))
        assert math.isfinite(e.loss) and e.loss > 0 and e.grad_norm > 0
        assert len(e.per_t_loss) == 20
        assert e.steps_per_s > 0 and e.samples_per_s == pytest.approx(e.steps_per_s * 32)
        assert (e.preview is not None) == (e.step % 4 == 0)
    assert [e.elapsed for e in events] == sorted(e.elapsed for e in events)
    assert events[-1].preview.shape == (512, 2) and events[-1].preview.device.type == "cpu"
    # log: every log_every (5) steps, every preview step, and the last step
    assert [e.step for e in logged] == [4, 5, 8, 10, 12]
    d = events[0].to_dict()
    assert "preview" not in d and d["step"] == 1 and len(d["per_t_loss"]) == 20
    snap = tr.snapshot()
    assert snap["step"] == 12 and snap["done"] and snap["last"]["step"] == 12
    assert [s for s, _ in snap["loss"]] == list(range(1, 13))
    assert sorted(snap["previews"]) == [4, 8, 12] and snap["last_preview"][0] == 12
    assert len(snap["t_bin_centers"]) == 20


def test_per_t_loss_has_nan_only_where_no_timestep_fell(points):
    tr = Trainer(make_config(batch_size=2, T=1000), points)
    tr.step()
    values = tr.last_event.per_t_loss
    assert sum(not math.isnan(v) for v in values) in (1, 2)  # two samples land in one or two bins


def test_preview_is_deterministic_and_does_not_disturb_training(points):
    base = losses(Trainer(make_config(steps=8), points), 8)
    tr = Trainer(make_config(steps=8, preview_every=3), points)
    assert losses(tr, 8) == base
    torch.testing.assert_close(tr.preview(), tr.preview(), rtol=0, atol=0)
    assert tr.preview(n=7).shape == (7, 2)


def test_image_previews_are_clipped_images(digits):
    model = ModelConfig("unet", {"base": 8, "channel_mult": [1, 2], "blocks": 1, "attn_resolutions": [], "groups": 4})
    cfg = make_config(steps=2, model=model, data="digits", T=50, batch_size=8, preview_every=2, preview_n=3)
    tr = Trainer(cfg, digits)
    e = list(tr.run())[-1]
    assert e.preview.shape == (3, 1, 8, 8) and e.preview.abs().max() <= 1.0


def test_same_seed_same_losses_other_seed_other_losses(points):
    a = losses(Trainer(make_config(), points), 6)
    torch.manual_seed(123)  # the global RNG must not matter
    b = losses(Trainer(make_config(), points), 6)
    c = losses(Trainer(make_config(seed=1), points), 6)
    assert a == b and a != c


def test_ema_follows_the_raw_weights_with_the_warm_decay_and_is_what_is_saved(points, tmp_path):
    cfg = make_config(steps=5, ema_decay=0.9)
    tr = Trainer(cfg, points)
    raw_after = []
    for _ in range(5):
        tr.step()
        raw_after.append({k: v.clone() for k, v in tr.model.state_dict().items()})
    expected = dict(raw_after[0])  # the first update copies
    for n, raw in enumerate(raw_after[1:], start=1):
        d = ema_decay(0.9, n)
        expected = {k: d * expected[k] + (1 - d) * raw[k] for k in expected}
    ema = tr.ema.module.state_dict()
    for k in expected:
        torch.testing.assert_close(ema[k], expected[k])
    assert any(not torch.equal(ema[k], raw_after[-1][k]) for k in ema)
    assert int(tr.ema.n_averaged) == 5

    tr.save(tmp_path / "ck")
    model, config, meta = checkpoint.load(tmp_path / "ck")
    assert config == cfg and meta["steps"] == 5 and meta["kind"] == "points"
    assert meta["x0_clip"] == tr.data.x0_clip() > 0
    assert meta["device"].startswith("cpu (")  # where it was trained, for the record
    for k, v in model.state_dict().items():
        assert torch.equal(v, ema[k])
    state = checkpoint.load_train_state(tmp_path / "ck")
    for k, v in state["model"].items():
        assert torch.equal(v, raw_after[-1][k])


def test_nan_loss_raises_keeps_the_weights_and_the_last_good_checkpoint(points, tmp_path):
    tr = Trainer(make_config(steps=10), points)
    losses(tr, 3)
    tr.save(tmp_path / "good")
    before = {k: v.clone() for k, v in tr.model.state_dict().items()}
    good_ema = {k: v.clone() for k, v in tr.ema.module.state_dict().items()}
    tr._x = torch.full_like(tr._x, float("nan"))  # the data goes bad
    with pytest.raises(NonFiniteLossError, match="loss became nan at step 4") as info:
        tr.step()
    assert info.value.step == 4 and tr.step_count == 3
    for k, v in tr.model.state_dict().items():
        assert torch.equal(v, before[k])
    model, _, meta = checkpoint.load(tmp_path / "good")
    assert meta["steps"] == 3
    for k, v in model.state_dict().items():
        assert torch.equal(v, good_ema[k]) and torch.isfinite(v).all()


def _state(tr: Trainer) -> dict:
    """Raw weights, EMA weights and the optimizer's moments and step counts, copied."""
    out = {f"raw.{k}": v.clone() for k, v in tr.model.state_dict().items()}
    out.update({f"ema.{k}": v.clone() for k, v in tr.ema.module.state_dict().items()})
    for i, p in enumerate(tr._params):
        out.update({f"opt.{i}.{k}": v.clone() for k, v in tr.optimizer.state[p].items()})
    return out


def test_a_non_finite_step_is_skipped_on_the_device_and_reported_at_the_next_logging_step(points, monkeypatch):
    tr = Trainer(make_config(log_every=5), points)
    tr.step()  # nobody reads the events: the trainer reads the device at logging steps only
    after_1, lr_2 = _state(tr), tr.optimizer.param_groups[0]["lr"]
    forward = tr.model.forward
    monkeypatch.setattr(tr.model, "forward", lambda x, t: forward(x, t) * float("inf"))
    for _ in range(3):
        tr.step()  # steps 2-4 are queued and skipped; nothing is known on the host yet
    assert tr.step_count == 4
    with pytest.raises(NonFiniteLossError, match="loss became inf at step 2") as info:
        tr.step()  # step 5 logs
    assert info.value.step == 2 and tr.step_count == 1 and tr.last_event.step == 1
    after = _state(tr)
    for k, v in after_1.items():  # weights, EMA, moments and AdamW's step counts are those after step 1
        assert torch.equal(after[k], v), k
    assert int(tr.ema.n_averaged) == 1 and tr.optimizer.param_groups[0]["lr"] == pytest.approx(lr_2)
    monkeypatch.undo()  # the run may go on from step 1
    assert tr.step().step == 2 and math.isfinite(tr.last_event.loss)

    # A save between a bad step and the next logging step reads first: it raises instead of saving.
    tr = Trainer(make_config(log_every=5), points)
    tr.step()
    monkeypatch.setattr(tr.model, "forward", lambda x, t: forward(x, t) * float("nan"))
    tr.step()
    with pytest.raises(NonFiniteLossError, match="at step 2"):
        tr.train_state()


def _inside(event, op: str) -> bool:
    while event is not None:
        if op in event.name:
            return True
        event = event.cpu_parent
    return False


@pytest.mark.parametrize("shards", [1, 2])
def test_a_step_reads_the_device_only_at_logging_steps(points, shards, monkeypatch):
    """50 steps logging every 25: two device->host reads (the two logging steps), none in between.

    On a CPU every tensor is host memory, so a profiler sees no device->host copies to count. What
    would be one on a GPU is counted instead at its two doors: Tensor methods that hand values to
    Python (item, tolist, numpy, cpu, bool/float/int/index), seen through a TorchFunctionMode, and
    aten::_local_scalar_dense, which every scalar read goes through, seen by the profiler (it also
    catches reads made inside torch's own C++, except those of the CPU kernel of fused AdamW, which
    reads its step count and guard flag from host memory where the CUDA kernel reads them on the
    device). The step draws its batch, timesteps and noise on the
    training device, so its only .to() calls target that device, never the host.
    """
    from torch.overrides import TorchFunctionMode

    reads = []

    class HostReads(TorchFunctionMode):
        NAMES = {"item", "tolist", "numpy", "cpu", "__bool__", "__float__", "__int__", "__index__"}

        def __torch_function__(self, func, types, args=(), kwargs=None):
            if getattr(func, "__name__", "") in self.NAMES:
                reads.append(func.__name__)
            return func(*args, **(kwargs or {}))

    tr = Trainer(make_config(steps=50, log_every=25), points, shards=shards)
    elsewhere = []  # reads on the shards' threads: a TorchFunctionMode and the profiler see only this thread's
    if shards > 1:
        for name in HostReads.NAMES:
            real = getattr(torch.Tensor, name)

            @functools.wraps(real)  # keeps the name, which the mode above reads
            def spy(self, *a, _real=real, _name=name, **k):
                if threading.current_thread() is not threading.main_thread():
                    elsewhere.append(_name)
                return _real(self, *a, **k)
            monkeypatch.setattr(torch.Tensor, name, spy)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof, HostReads():
        events = [tr.step() for _ in range(50)]
    monkeypatch.undo()
    scalar_reads = [e for e in prof.events() if e.name == "aten::_local_scalar_dense" and not _inside(e, "_fused_adamw_")]
    assert not elsewhere
    assert reads == ["tolist", "tolist"] and not scalar_reads and tr.host_reads == 2
    # the numbers of every step are there once read, and the history holds all of them
    assert [e.step for e in events] == list(range(1, 51)) and all(math.isfinite(e.loss) for e in events)
    assert [s for s, _ in tr.snapshot()["loss"]] == list(range(1, 51))
    with HostReads():  # the instrument sees a read when there is one: an event read before its logging step
        tr.step().loss
    assert reads[2:] == ["tolist"]


@pytest.mark.parametrize("model", [TINY_MLP, ModelConfig("mlp", {"width": 32, "blocks": 2, "dropout": 0.2})],
                         ids=["plain", "dropout"])
def test_resume_continues_exactly(points, tmp_path, model):
    n, m = 7, 6
    cfg = make_config(steps=n + m, model=model, warmup_steps=4)
    straight = Trainer(cfg, points)
    want = losses(straight, n + m)

    first = Trainer(cfg, points)
    got = losses(first, n)
    first.save(tmp_path / "ck")
    torch.manual_seed(99)  # other randomness in between must not matter
    second = Trainer.resume(tmp_path / "ck", points)
    assert second.step_count == n
    got += losses(second, m)
    assert got == pytest.approx(want, rel=1e-6, abs=1e-7)
    for k, v in second.ema.module.state_dict().items():
        torch.testing.assert_close(v, straight.ema.module.state_dict()[k])
    assert second.last_event.loss_avg == pytest.approx(straight.last_event.loss_avg)
    assert second.last_event.per_t_loss == pytest.approx(straight.last_event.per_t_loss, nan_ok=True)
    assert second.elapsed >= first.elapsed


def test_resume_from_a_dict_and_with_more_steps(points, tmp_path):
    cfg = make_config(steps=6)
    tr = Trainer(cfg, points)
    losses(tr, 6)
    other = Trainer(cfg, points)
    other.load_state(tr.train_state())
    assert losses(other, 2) == losses(tr, 2)
    tr.save(tmp_path / "ck")
    longer = Trainer.resume(tmp_path / "ck", points, config=make_config(steps=20))
    assert longer.step_count == 8 and not longer.done
    assert longer.optimizer.param_groups[0]["lr"] == pytest.approx(3e-3 * lr_factor(8, 5, 20, 0.05))
    with pytest.raises(ValueError, match="different model"):
        Trainer.resume(tmp_path / "ck", points, config=make_config(model=ModelConfig("mlp", {"width": 16})))


def test_resume_needs_a_train_state(points, tmp_path):
    tr = Trainer(make_config(), points)
    tr.step()
    tr.save(tmp_path / "slim", train_state=False)
    assert not checkpoint.has_train_state(tmp_path / "slim")
    with pytest.raises(checkpoint.CheckpointError, match="no training state"):
        Trainer.resume(tmp_path / "slim", points)


@pytest.mark.parametrize("prediction", ["x0", "v"])
def test_other_targets_and_min_snr_train(points, prediction):
    tr = Trainer(make_config(steps=40, prediction=prediction, min_snr_gamma=5.0, warmup_steps=2), points)
    ls = [e.loss for e in tr.run()]
    assert all(math.isfinite(v) for v in ls)
    assert sum(ls[-10:]) < sum(ls[:10])


def test_nets_must_fit_the_data(points):
    with pytest.raises(ValueError, match="cannot take samples"):
        Trainer(make_config(model=ModelConfig("unet", {})), points)


def test_grad_norm_is_reported_with_and_without_clipping(points):
    clipped = Trainer(make_config(grad_clip=1e-3), points).step()
    free = Trainer(make_config(grad_clip=0.0), points).step()
    assert clipped.grad_norm == pytest.approx(free.grad_norm, rel=1e-5)
    assert clipped.loss == free.loss


def test_resume_on_another_device_kind_and_memory_layout(points, tmp_path, monkeypatch):
    # A run saved on one kind of device may continue on another; the noise stream then restarts.
    tr = Trainer(make_config(steps=6), points)
    losses(tr, 3)
    tr.save(tmp_path / "ck")
    state = checkpoint.load_train_state(tmp_path / "ck")
    state["device_type"] = "elsewhere"
    state["rng"]["dev_gen"] = torch.zeros(16, dtype=torch.uint8)  # another generator's state size
    moved = Trainer(make_config(steps=6), points)
    moved.load_state(state)
    assert all(math.isfinite(v) for v in losses(moved, 3))
    # Moments saved contiguous are given the parameter's layout again (channels_last on CUDA).
    model = ModelConfig("unet", {"base": 8, "channel_mult": [1], "blocks": 1, "groups": 4})
    digits = load_dataset("digits")
    img = Trainer(make_config(steps=4, model=model, data="digits", batch_size=4), digits)
    img.model.to(memory_format=torch.channels_last)
    source = Trainer(make_config(steps=4, model=model, data="digits", batch_size=4), digits)
    source.step()
    img.load_state(source.train_state())
    conv = img.model.inp.weight
    assert img.optimizer.state[conv]["exp_avg"].stride() == conv.stride() != torch.empty(conv.shape).stride()


@pytest.mark.skipif(shutil.which("c++") is None and shutil.which("g++") is None,
                    reason="torch.compile on the CPU needs a C++ compiler")
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")  # torch's own
def test_compiled_training_matches_eager_and_saves_a_plain_checkpoint(points, tmp_path):
    """torch.compile (--compile) is an optimisation only: same losses, same weights, a checkpoint without
    the compiled wrapper's key prefixes that loads and resumes like any other. reduce-overhead (CUDA
    graphs on a GPU; on a CPU the default mode) runs the same graph-safe step."""
    eager = Trainer(make_config(steps=6), points)
    base = losses(eager, 4)
    tr = Trainer(make_config(steps=6, compile="reduce-overhead"), points)
    assert tr.net is not tr.model  # the compiled wrapper runs the steps; the raw module holds the weights
    torch.testing.assert_close(losses(tr, 4), base, rtol=1e-5, atol=1e-6)
    for a, b in zip(tr.model.parameters(), eager.model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    tr.save(tmp_path / "ck")
    model, config, meta = checkpoint.load(tmp_path / "ck")
    assert config.train.compile == "reduce-overhead" and meta["steps"] == 4
    assert not any(k.startswith("_orig_mod") for k in model.state_dict())
    resumed = Trainer.resume(tmp_path / "ck", points)
    torch.testing.assert_close(losses(resumed, 2), losses(eager, 2), rtol=1e-5, atol=1e-6)


def test_compile_modes_are_checked():
    assert TrainConfig(compile=True).compile_mode == "default" and TrainConfig().compile_mode is None
    assert TrainConfig(compile="reduce-overhead").compile_mode == "reduce-overhead"
    with pytest.raises(ValueError, match="compile must be true, false or one of default, reduce-overhead"):
        TrainConfig(compile="fast")


def test_channels_last_on_the_cpu_trains_like_the_default_layout(digits):
    model = ModelConfig("unet", {"base": 8, "channel_mult": [1, 2], "blocks": 1, "attn_resolutions": [4], "groups": 4})
    cfg = make_config(steps=4, model=model, data="digits", batch_size=8)
    plain, last = Trainer(cfg, digits), Trainer(cfg, digits, channels_last=True)
    assert not plain.channels_last and last.channels_last
    assert last.model.inp.weight.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(losses(last, 4), losses(plain, 4), rtol=1e-4, atol=1e-6)
    for a, b in zip(last.ema.module.parameters(), plain.ema.module.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)  # other kernels, other rounding


def test_dropout_draws_from_the_trainers_stream_and_rnns_keep_their_own_global_rng(points):
    drop = ModelConfig("mlp", {"width": 32, "blocks": 2, "dropout": 0.3})
    tr = Trainer(make_config(model=drop), points)
    assert tr._torch_rng is None  # nothing to swap around a step
    before = torch.get_rng_state()
    a = losses(tr, 3)
    assert torch.equal(torch.get_rng_state(), before)  # the global RNG was not touched
    torch.manual_seed(5)
    assert losses(Trainer(make_config(model=drop), points), 3) == a
    # An RNN's inter-layer dropout draws from the global RNG: the trainer keeps a copy of its own for it.
    signals = load_dataset("signals", n=64, length=16)
    gru = ModelConfig("gru", {"hidden": 16, "layers": 2, "dropout": 0.5})
    cfg = make_config(model=gru, data="signals", batch_size=8)
    first = Trainer(cfg, signals)
    assert first._torch_rng is not None
    b = losses(first, 3)
    torch.manual_seed(6)
    assert losses(Trainer(cfg, signals), 3) == b


def test_without_fused_adamw_the_guard_reads_the_flag_and_training_is_the_same(points, monkeypatch):
    """Where the fused kernel is missing, foreach AdamW runs and the flag is read on the host before each update."""
    fused = Trainer(make_config(), points)
    want = losses(fused, 4)
    monkeypatch.setattr(core.training, "_adamw", lambda params, lr, weight_decay: torch.optim.AdamW(
        params, lr=lr, weight_decay=weight_decay, foreach=True))
    tr = Trainer(make_config(), points)
    assert not tr._guard_on_device and not hasattr(tr.optimizer, "found_inf")
    torch.testing.assert_close(losses(tr, 4), want, rtol=1e-5, atol=1e-6)
    before = _state(tr)
    tr._x = torch.full_like(tr._x, float("nan"))
    with pytest.raises(NonFiniteLossError, match="at step 5"):
        tr.step()
    after = _state(tr)
    assert all(torch.equal(after[k], v) for k, v in before.items()) and tr.step_count == 4


def test_bf16_autocast_trains_and_previews_within_bf16_tolerance_of_float32(digits, monkeypatch):
    """The CUDA policy (bf16 autocast around the net) run under the CPU's autocast: same numbers within bf16 error."""
    model = ModelConfig("unet", {"base": 8, "channel_mult": [1, 2], "blocks": 1, "attn_resolutions": [4], "groups": 4})
    cfg = make_config(steps=3, model=model, data="digits", batch_size=8)
    plain = Trainer(cfg, digits)
    want, want_preview = losses(plain, 3), plain.preview(n=4, steps=5)
    bf16 = lambda device, enabled=True, cpu=False: torch.autocast("cpu", dtype=torch.bfloat16,  # noqa: E731
                                                                  enabled=enabled)
    monkeypatch.setattr(core.training, "autocast", bf16)
    monkeypatch.setattr(core.samplers, "autocast", bf16)
    torch.testing.assert_close(losses(Trainer(cfg, digits), 3), want, rtol=3e-2, atol=1e-3)
    diff = (plain.preview(n=4, steps=5) - want_preview).abs()  # the same weights sampled in bf16
    assert diff.mean() < 0.01 and diff.max() < 0.1, (diff.mean(), diff.max())


needs_cpu_bf16 = pytest.mark.skipif(not core.training.cpu_has_bf16(), reason="this CPU has no native bf16")


@needs_cpu_bf16
@pytest.mark.parametrize("shards", [1, 2])
def test_cpu_bf16_trains_within_bf16_tolerance_of_float32_and_says_so(digits, tmp_path, shards):
    cfg = make_config(steps=4, model=TINY_UNET, data="digits", batch_size=8, log_every=2)
    plain, bf16 = Trainer(cfg, digits, shards=shards), Trainer(cfg, digits, shards=shards, cpu_bf16=True)
    assert not plain.cpu_bf16 and bf16.cpu_bf16
    a, b = [plain.step() for _ in range(4)], [bf16.step() for _ in range(4)]
    torch.testing.assert_close([e.loss for e in b], [e.loss for e in a], rtol=3e-2, atol=1e-3)
    torch.testing.assert_close([e.grad_norm for e in b], [e.grad_norm for e in a], rtol=5e-2, atol=1e-3)
    assert [e.loss for e in b] != [e.loss for e in a]  # bf16 really ran: the rounding differs
    assert all(p.dtype == torch.float32 for p in bf16.model.parameters())  # the weights and AdamW stay in fp32
    # Adam moves a weight by about lr whatever its gradient's size, so compare what the nets predict
    x, t = torch.randn(8, *digits.x.shape[1:], generator=torch.Generator().manual_seed(1)), torch.arange(1, 97, 12)
    with torch.no_grad():
        want, got = plain.ema.module(x, t), bf16.ema.module(x, t)
    assert (got - want).abs().mean() < 0.03 * want.abs().mean(), ((got - want).abs().mean(), want.abs().mean())
    assert "bf16 autocast" in checkpoint.load_config(bf16.save(tmp_path / "run"))[1]["device"]
    for tr in (plain, bf16):
        tr.close()


def test_cpu_bf16_is_refused_where_the_cpu_would_emulate_it(digits, monkeypatch):
    cfg = make_config(model=TINY_UNET, data="digits", batch_size=8)
    monkeypatch.setattr(core.training, "cpu_has_bf16", lambda: False)
    with pytest.raises(ValueError, match="cpu_bf16 needs a CPU with native bf16 .AVX512-BF16 or AMX.; this one"):
        Trainer(cfg, digits, cpu_bf16=True)
    assert not Trainer(cfg, digits).cpu_bf16  # fp32 is the default on any CPU


# --- shards: a batch split over threads on the CPU -----------------------------------------------

TINY_UNET = ModelConfig("unet", {"base": 8, "channel_mult": [1, 2], "blocks": 1, "attn_resolutions": [4], "groups": 4})


@pytest.mark.parametrize("data_name, model, batch, shards", [
    ("gaussians8", TINY_MLP, 64, 2),
    ("gaussians8", TINY_MLP, 10, 3),   # shards of 4, 3 and 3 samples: each weighs by its size
    ("digits", TINY_UNET, 8, 2),
], ids=["mlp-2", "mlp-uneven-3", "unet-2"])
def test_a_batch_in_shards_trains_as_the_whole_batch(points, digits, data_name, model, batch, shards):
    data = points if data_name == "gaussians8" else digits
    cfg = make_config(steps=6, model=model, data=data_name, batch_size=batch, log_every=3)
    whole, split = Trainer(cfg, data, shards=1), Trainer(cfg, data, shards=shards)
    assert (whole.shards, split.shards) == (1, shards) and split._shards is not None
    a, b = [whole.step() for _ in range(6)], [split.step() for _ in range(6)]
    torch.testing.assert_close([e.loss for e in b], [e.loss for e in a], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close([e.grad_norm for e in b], [e.grad_norm for e in a], rtol=1e-4, atol=1e-6)
    assert b[-1].per_t_loss == pytest.approx(a[-1].per_t_loss, rel=1e-4, nan_ok=True)
    for p, q in zip(split.ema.module.parameters(), whole.ema.module.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)  # the same sums in another order
    again = Trainer(cfg, data, shards=shards)
    assert [again.step().loss for _ in range(6)] == [e.loss for e in b]  # and the same every run
    for tr in (whole, split, again):
        tr.close()


def test_shards_default_to_the_threads_for_image_models_only_and_bad_requests_say_what_is_allowed(points, digits):
    image_cfg = make_config(model=TINY_UNET, data="digits", batch_size=8)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert Trainer(image_cfg, digits).shards == 2
        assert Trainer(make_config(), points).shards == 1  # 2-D points: tiny steps, Python's work
        drop = make_config(model=ModelConfig("unet", {**TINY_UNET.params, "dropout": 0.1}), data="digits",
                           batch_size=8)
        assert Trainer(drop, digits).shards == 1  # dropout draws from one stream: the order must not vary
    finally:
        torch.set_num_threads(threads)
    assert Trainer(image_cfg, digits).shards == 1  # one thread: nothing to split over
    with pytest.raises(ValueError, match=r"shards must be between 1 and the batch size \(8\), got 0"):
        Trainer(image_cfg, digits, shards=0)
    with pytest.raises(ValueError, match=r"shards must be between 1 and the batch size \(8\), got 9"):
        Trainer(image_cfg, digits, shards=9)
    with pytest.raises(ValueError, match="shards=2 is not possible here: the net draws random numbers"):
        Trainer(make_config(model=ModelConfig("mlp", {"width": 32, "blocks": 2, "dropout": 0.2})), points, shards=2)


def test_a_non_finite_shard_is_skipped_and_reported_like_any_step(points, monkeypatch):
    tr = Trainer(make_config(log_every=5), points, shards=2)
    tr.step()
    after_1 = _state(tr)
    forward = tr.model.forward
    calls = []

    def bad_second_shard(x, t):  # only the shard that holds the batch's second half goes bad
        calls.append(x.shape[0])
        out = forward(x, t)
        return out * float("inf") if threading.current_thread() is tr._shards._threads[1] else out

    monkeypatch.setattr(tr.model, "forward", bad_second_shard)
    for _ in range(3):
        tr.step()
    with pytest.raises(NonFiniteLossError, match="at step 2"):
        tr.step()
    assert calls[:2] == [32, 32] and tr.step_count == 1
    after = _state(tr)
    for k, v in after_1.items():
        assert torch.equal(after[k], v), k
    tr.close()


def test_a_run_in_shards_resumes_exactly(points, tmp_path):
    cfg = make_config(steps=8, warmup_steps=3)
    straight = Trainer(cfg, points, shards=2)
    want = losses(straight, 8)
    first = Trainer(cfg, points, shards=2)
    got = losses(first, 5)
    first.save(tmp_path / "ck")
    assert "2 shards" in checkpoint.load_config(tmp_path / "ck")[1]["device"]
    second = Trainer.resume(tmp_path / "ck", points, shards=2)
    got += losses(second, 3)
    assert got == want
    for tr in (straight, first, second):
        tr.close()
