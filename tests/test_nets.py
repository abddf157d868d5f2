"""Denoisers: shapes, the step encoding, determinism, gradients, and every error path."""
import math

import numpy as np
import pytest
import torch

from core.config import ModelConfig
from core.nets import (
    NETS,
    PRESET_SHAPES,
    PRESETS,
    StepEmbedding,
    build_model,
    count_parameters,
    frequencies,
    net_params,
    preset_rows,
    preset_table,
    timestep_embedding,
)
from core.nets.embeddings import as_timesteps
from core.nets.unet import MIN_RESOLUTION, allowed_levels

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py

# Tiny versions of every net, so the shape tests stay fast.
TINY = {
    "unet": ({"base": 16, "channel_mult": [1, 2], "blocks": 1, "attn_resolutions": [4], "heads": 2}, (1, 8, 8)),
    "mlp": ({"width": 32, "blocks": 2, "fourier_features": 8, "step_dim": 16}, (2,)),
    "gru": ({"hidden": 16, "layers": 2, "step_dim": 16}, (1, 12)),
    "conv1d": ({"channels": 16, "blocks": 3, "dilations": [1, 2], "step_dim": 16}, (1, 12)),
}


def tiny(net, **over):
    params, shape = TINY[net]
    return build_model(ModelConfig(net, {**params, **over}), shape, seed=0), shape


# ---------------------------------------------------------------------------------------------
# the step encoding


def test_embedding_matches_hand_computation():
    dim, t = 8, 37
    got = timestep_embedding(torch.tensor([t]), dim)[0]
    half = dim // 2
    want = [math.sin(t * 10000 ** (-k / half)) for k in range(half)] + [
        math.cos(t * 10000 ** (-k / half)) for k in range(half)
    ]
    assert got.dtype == torch.float32
    assert torch.allclose(got, torch.tensor(want, dtype=torch.float32), atol=1e-6, rtol=0)


def test_embedding_large_t_keeps_phase():
    # t * w_0 = 999 rad: computed in float64, the float32 result equals the exactly rounded value.
    got = timestep_embedding(999, 2)
    assert got.shape == (2,)
    assert got[0].item() == pytest.approx(math.sin(999.0), abs=1e-7)
    assert got[1].item() == pytest.approx(math.cos(999.0), abs=1e-7)


def test_frequencies_formula_and_range():
    w = frequencies(16)
    assert w.shape == (8,)
    assert w[0].item() == 1.0
    assert torch.allclose(w, torch.tensor([10000 ** (-k / 8) for k in range(8)], dtype=torch.float64))
    for bad in (0, 3, 2.0, True):
        with pytest.raises(ValueError, match="even integer"):
            frequencies(bad)


def test_embedding_scalar_and_batch_agree():
    ts = torch.tensor([1, 10, 500])
    batch = timestep_embedding(ts, 32)
    for i, t in enumerate(ts.tolist()):
        assert torch.equal(timestep_embedding(t, 32), batch[i])
        assert torch.equal(timestep_embedding(torch.tensor(t), 32), batch[i])
    # sin^2 + cos^2 = 1 for every frequency
    assert torch.allclose(batch[:, :16] ** 2 + batch[:, 16:] ** 2, torch.ones(3, 16), atol=1e-6)


def test_step_embedding_module_uses_the_sinusoid():
    emb = StepEmbedding(8, 12)
    t = torch.tensor([3, 400])
    want = emb.mlp(timestep_embedding(t, 8))
    assert torch.allclose(emb(t), want)
    assert emb(t).shape == (2, 12)


def test_as_timesteps_broadcasts_and_validates():
    assert torch.equal(as_timesteps(5, 3), torch.tensor([5, 5, 5]))
    assert torch.equal(as_timesteps(torch.tensor(7), 2), torch.tensor([7, 7]))
    assert as_timesteps(torch.tensor([1, 2], dtype=torch.int32), 2).dtype == torch.long
    assert torch.equal(as_timesteps(np.int64(4), 2), torch.tensor([4, 4]))
    frac = as_timesteps(torch.tensor([2.5]), 1)  # the encoding is continuous: fractional steps pass through
    assert frac.dtype == torch.float32 and frac.item() == 2.5
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        as_timesteps(torch.tensor([1, 2]), 3)
    with pytest.raises(TypeError):
        as_timesteps("5", 3)


# ---------------------------------------------------------------------------------------------
# every net: shapes, t broadcast, determinism, gradients


@pytest.mark.parametrize("net", sorted(NETS))
def test_output_shape_equals_input_shape(net):
    model, shape = tiny(net)
    x = torch.randn(3, *shape)
    y = model(x, torch.tensor([1, 50, 1000]))
    assert y.shape == x.shape
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("net", sorted(NETS))
def test_int_and_scalar_t_broadcast(net):
    model, shape = tiny(net)
    # Perturb the zero-initialised output layers so outputs actually depend on t.
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(1)))
    x = torch.randn(2, *shape)
    full = model(x, torch.tensor([17, 17]))
    assert torch.allclose(model(x, 17), full, atol=1e-6)
    assert torch.allclose(model(x, torch.tensor(17)), full, atol=1e-6)
    assert not torch.allclose(model(x, 900), full, atol=1e-4), "output must depend on t"


@pytest.mark.parametrize("net", sorted(NETS))
def test_same_seed_same_init(net):
    params, shape = TINY[net]
    a = build_model(ModelConfig(net, params), shape, seed=3)
    b = build_model(ModelConfig(net, params), shape, seed=3)
    c = build_model(ModelConfig(net, params), shape, seed=4)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert any(not torch.equal(sa[k], sc[k]) for k in sa)
    # the global RNG route: manual_seed before build_model
    torch.manual_seed(11)
    d = build_model(ModelConfig(net, params), shape)
    torch.manual_seed(11)
    e = build_model(ModelConfig(net, params), shape)
    assert all(torch.equal(v, e.state_dict()[k]) for k, v in d.state_dict().items())


def test_seeded_build_leaves_global_rng_alone():
    torch.manual_seed(5)
    before = torch.rand(1)
    torch.manual_seed(5)
    build_model(ModelConfig("mlp", TINY["mlp"][0]), (2,), seed=123)
    assert torch.equal(torch.rand(1), before)


@pytest.mark.parametrize("net", sorted(NETS))
def test_output_layer_starts_at_zero(net):
    model, shape = tiny(net)
    assert torch.count_nonzero(model(torch.randn(2, *shape), 10)) == 0


@pytest.mark.parametrize("net", sorted(NETS))
def test_gradient_reaches_every_parameter(net):
    model, shape = tiny(net)
    # Zero-initialised layers block gradients at init by design; perturb them to test the wiring.
    with torch.no_grad():
        g = torch.Generator().manual_seed(0)
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    x = torch.randn(4, *shape)
    model(x, torch.tensor([1, 2, 300, 999])).pow(2).mean().backward()
    dead = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()
            or p.grad.abs().sum() == 0]
    assert dead == []


def test_zero_init_net_learns_after_one_step():
    model, shape = tiny("unet")
    x = torch.randn(4, *shape)
    grads = []
    for _ in range(2):  # plain SGD by hand
        model.zero_grad()
        (model(x, 5) - x).pow(2).mean().backward()
        grads.append(model.inp.weight.grad.abs().sum().item())
        with torch.no_grad():
            for p in model.parameters():
                p -= 0.1 * p.grad
    assert grads[0] == 0  # at init only the zeroed output conv gets a gradient...
    assert grads[1] > 0  # ...and after one step it reaches the input conv


def test_unet_channels_last_matches():
    model, _ = tiny("unet")
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    x = torch.randn(2, 1, 8, 8)
    ref = model(x, 10)
    model = model.to(memory_format=torch.channels_last)
    out = model(x.to(memory_format=torch.channels_last), 10)
    assert torch.allclose(out, ref, atol=1e-5)


@pytest.mark.parametrize("shape,mult", [((3, 16, 16), [1, 2, 2]), ((3, 64, 64), [1, 2]), ((1, 12, 20), [1, 2])])
def test_unet_other_sizes(shape, mult):
    model = build_model(ModelConfig("unet", {"base": 8, "channel_mult": mult, "blocks": 1, "groups": 4}), shape, seed=0)
    x = torch.randn(2, *shape)
    assert model(x, 3).shape == x.shape


def test_unet_levels_allowed_by_size():
    assert MIN_RESOLUTION == 4
    assert [allowed_levels(s, s) for s in (4, 8, 16, 32, 64)] == [1, 2, 3, 4, 5]
    assert allowed_levels(12, 12) == 2  # 12 -> 6 -> (3 is odd and < 4)
    with pytest.raises(ValueError, match=r"at most 2 level\(s\).*channel_mult=\[1, 2\]"):
        build_model(ModelConfig("unet", {"channel_mult": [1, 2, 2, 2]}), (1, 8, 8))


def test_unet_attention_resolution_must_exist():
    with pytest.raises(ValueError, match=r"attn_resolutions \[16\].*sides \[8, 4\]"):
        build_model(ModelConfig("unet", {"channel_mult": [1, 2], "attn_resolutions": [16]}), (1, 8, 8))


def test_unet_attention_is_where_asked():
    from core.nets.unet import Attention

    def count(attn, mid):
        m = build_model(ModelConfig("unet", {"base": 8, "channel_mult": [1, 2], "blocks": 1, "groups": 4,
                                             "heads": 2, "attn_resolutions": attn, "mid_attn": mid}), (1, 8, 8))
        return sum(isinstance(mod, Attention) for mod in m.modules())

    assert count([], False) == 0
    assert count([], True) == 1
    assert count([4], False) == 1 + 2  # one encoder block and blocks + 1 decoder blocks at 4x4
    assert count([8, 4], True) == 1 + 3 + 1 + 2


def test_unet_add_injection_variant():
    model = build_model(ModelConfig("unet", {**TINY["unet"][0], "scale_shift": False}), (1, 8, 8), seed=0)
    assert model(torch.randn(2, 1, 8, 8), 4).shape == (2, 1, 8, 8)


def test_sequence_nets_take_any_length():
    for net in ("gru", "conv1d"):
        model, _ = tiny(net)
        for length in (5, 33):
            x = torch.randn(2, 1, length)
            assert model(x, 9).shape == x.shape


def test_conv1d_receptive_field_is_exact():
    model, _ = tiny("conv1d")
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    # GroupNorm statistics see the whole signal; drop them to measure the convolutions' reach alone.
    for block in model.blocks:
        block.norm1 = block.norm2 = torch.nn.Identity()
    model.out[0] = torch.nn.Identity()
    length = 101
    x = torch.randn(1, 1, length, requires_grad=True)
    model(x, 10)[0, 0, length // 2].backward()
    seen = (x.grad[0, 0] != 0).nonzero().flatten()
    assert int(seen.max() - seen.min() + 1) == model.receptive_field  # k=3, dilations 1,2,1: 2*(2+2+3+2)+1 = 19
    assert model.receptive_field == 19


def test_mlp_fourier_frequencies_are_saved_weights():
    model, _ = tiny("mlp")
    assert "freqs" in model.state_dict()
    assert model.freqs.shape == (2, 8)
    raw = build_model(ModelConfig("mlp", {**TINY["mlp"][0], "fourier_features": 0}), (2,))
    assert raw.features(torch.randn(3, 2)).shape == (3, 2)


# ---------------------------------------------------------------------------------------------
# registry, presets and errors


def test_presets_build_and_run():
    for name, cfg in PRESETS.items():
        shape = PRESET_SHAPES[name]
        model = build_model(cfg, shape, seed=0)
        x = torch.randn(2, *shape)
        with torch.no_grad():
            assert model(x, torch.tensor([1, 1000])).shape == x.shape, name


def test_preset_parameter_counts():
    rows = preset_rows()
    counts = {r["preset"]: r["params"] for r in rows}
    print("\n" + preset_table())
    assert 500_000 <= counts["unet-digits"] <= 2_000_000
    assert 1_000_000 <= counts["unet-shapes"] <= 4_000_000
    assert counts["unet-small"] < counts["unet-digits"]
    assert 100_000 <= counts["mlp-2d"] <= 1_000_000
    for name in ("gru-signals", "conv1d-signals"):
        assert 100_000 <= counts[name] <= 2_000_000
    assert all(r["megabytes"] <= 12 for r in rows)
    table = preset_table()
    assert table.count("\n") == len(PRESETS) + 1 and f"{counts['mlp-2d']:,}" in table


def test_count_parameters_by_hand():
    model = torch.nn.Linear(3, 4)
    assert count_parameters(model) == 16
    model.bias.requires_grad_(False)
    assert count_parameters(model, trainable_only=True) == 12


def test_unknown_net_lists_known():
    with pytest.raises(ValueError, match=r"unknown net 'transformer'; known: unet, mlp, gru, conv1d"):
        build_model(ModelConfig("transformer"), (2,))


def test_unknown_param_lists_allowed():
    with pytest.raises(ValueError, match=r"unknown params \['depth'\] for net 'mlp'; allowed: width, blocks"):
        build_model(ModelConfig("mlp", {"depth": 3}), (2,))
    assert set(net_params("gru")) == {"hidden", "layers", "bidirectional", "step_dim", "dropout"}


@pytest.mark.parametrize("net,shape,fits", [
    ("unet", (2,), "mlp"),
    ("unet", (1, 64), "gru, conv1d"),
    ("mlp", (1, 8, 8), "unet"),
    ("gru", (3, 8, 8), "unet"),
    ("conv1d", (2,), "mlp"),
])
def test_wrong_data_kind(net, shape, fits):
    with pytest.raises(ValueError, match=rf"net '{net}' is for .* data and cannot take samples of shape .*nets for that shape: {fits}"):
        build_model(ModelConfig(net, TINY[net][0]), shape)


@pytest.mark.parametrize("params,match", [
    ({"base": 0}, "base must be an integer >= 1"),
    ({"channel_mult": "12"}, "channel_mult must be a list"),
    ({"channel_mult": []}, "non-empty list"),
    ({"dropout": 1.5}, r"dropout must be a number in \[0, 1\)"),
    ({"heads": 3, "base": 16}, "heads=3 must divide"),
    ({"step_dim": 7}, "step_dim must be an even integer"),
])
def test_unet_bad_params(params, match):
    with pytest.raises(ValueError, match=match):
        build_model(ModelConfig("unet", {"channel_mult": [1, 2], "attn_resolutions": [4], **params}), (1, 8, 8))


def test_sequence_and_mlp_bad_params():
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        build_model(ModelConfig("conv1d", {"kernel_size": 4}), (1, 16))
    with pytest.raises(ValueError, match="fourier_scale must be a positive number"):
        build_model(ModelConfig("mlp", {"fourier_scale": 0}), (2,))
    with pytest.raises(ValueError, match="layers must be an integer >= 1"):
        build_model(ModelConfig("gru", {"layers": 0}), (1, 16))


def test_wrong_input_shape_at_call_time():
    model, _ = tiny("unet")
    with pytest.raises(ValueError, match=r"built for samples of shape \(1, 8, 8\)"):
        model(torch.randn(2, 3, 8, 8), 1)
    model, _ = tiny("gru")
    with pytest.raises(ValueError, match=r"expects \(B, 1, L\)"):
        model(torch.randn(2, 2, 8), 1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("net", sorted(NETS))
def test_cuda_matches_cpu(net):
    model, shape = tiny(net)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
        x, t = torch.randn(3, *shape), torch.tensor([1, 40, 900])
        ref = model.eval()(x, t)
        got = model.cuda()(x.cuda(), t.cuda()).cpu()
    assert torch.allclose(got, ref, atol=1e-3, rtol=1e-3)
