"""The GPU path, where a CUDA device is at hand (skipped elsewhere; CI has none).

What the CPU tests can only stand in for, checked on the device itself: the training step reads the
device only at logging steps (counted as device-to-host copies by the profiler, and as synchronising
calls by CUDA's sync debug mode), and torch.compile with CUDA graphs (reduce-overhead) trains and
samples like eager within bf16 tolerance.
"""
from __future__ import annotations

import warnings

import pytest
import torch

from core import checkpoint
from core.config import DataConfig, DiffusionConfig, ModelConfig, RunConfig, TrainConfig
from core.data import load_dataset
from core.sample import draw
from core.training import Trainer

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

SMALL_UNET = ModelConfig("unet", {"base": 16, "channel_mult": [1, 2], "blocks": 1, "attn_resolutions": [8],
                                  "groups": 8})


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def config(steps: int, log_every: int, compile=False) -> RunConfig:
    return RunConfig(model=SMALL_UNET, diffusion=DiffusionConfig("linear", 1000), data=DataConfig("digits"),
                     train=TrainConfig(steps=steps, batch_size=64, lr=1e-3, warmup_steps=5, preview_every=0,
                                       log_every=log_every, compile=compile))


def test_a_cuda_training_step_reads_the_device_only_at_logging_steps(digits):
    tr = Trainer(config(60, 25), digits, "cuda")
    for _ in range(5):  # the first steps set up the optimizer's state and cuDNN's choices
        tr.step()
    torch.cuda.synchronize()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU,
                                            torch.profiler.ProfilerActivity.CUDA]) as prof:
        for _ in range(50):  # steps 6-55: logging steps 25 and 50
            tr.step()
        torch.cuda.synchronize()
    d2h = [e for e in prof.events() if "Memcpy DtoH" in e.name or "Memcpy Device -> Pageable" in e.name
           or "Memcpy Device -> Pinned" in e.name]
    assert len(d2h) <= 2, [e.name for e in d2h]
    # and nothing else makes the host wait for the device in between (CUDA's own count of synchronising calls)
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for _ in range(4):  # steps 56-59: no logging step
                tr.step()
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert not [str(w.message) for w in caught if "synchroniz" in str(w.message)]


def test_compiled_cuda_training_matches_eager_within_bf16_and_saves_a_plain_checkpoint(digits, tmp_path):
    eager = Trainer(config(8, 4), digits, "cuda")
    compiled = Trainer(config(8, 4, compile="reduce-overhead"), digits, "cuda")
    a = [eager.step().loss for _ in range(6)]
    b = [compiled.step().loss for _ in range(6)]
    torch.testing.assert_close(torch.tensor(b), torch.tensor(a), rtol=3e-2, atol=1e-3)
    for p, q in zip(compiled.model.parameters(), eager.model.parameters()):
        torch.testing.assert_close(p, q, rtol=5e-2, atol=2e-3)
    compiled.save(tmp_path / "ck")
    model, cfg, _ = checkpoint.load(tmp_path / "ck")
    assert cfg.train.compile == "reduce-overhead"
    assert not any(k.startswith("_orig_mod") for k in model.state_dict())


def test_compiled_cuda_sampling_matches_eager(digits, tmp_path):
    tr = Trainer(config(20, 10), digits, "cuda")
    for _ in range(20):
        tr.step()
    tr.save(tmp_path / "ck")
    eager, _ = draw(tmp_path / "ck", sampler="ddim", steps=20, n=16, seed=3, device="cuda")
    compiled, _ = draw(tmp_path / "ck", sampler="ddim", steps=20, n=16, seed=3, device="cuda",
                       compile="reduce-overhead")
    assert torch.isfinite(compiled).all()
    torch.testing.assert_close(compiled, eager, rtol=2e-2, atol=2e-2)


def test_sampler_noise_on_the_gpu_is_the_cpu_draw_of_the_same_seed():
    from core.samplers import _randn

    for shape in ((64, 3, 32, 32), (7, 3)):  # a whole number of 16-value blocks, and a tail
        gpu = _randn(shape, torch.Generator().manual_seed(11), "cuda")
        cpu = _randn(shape, torch.Generator().manual_seed(11), "cpu")
        assert gpu.device.type == "cuda" and torch.equal(gpu.cpu(), cpu)
