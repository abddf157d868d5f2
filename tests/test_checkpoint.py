"""Checkpoints: round trips, atomic replacement, validation on load, pickle refusal, listing, resume state."""
import json
import os
import pickle

import pytest
import safetensors.torch
import torch

from core import __version__, checkpoint
from core.checkpoint import (
    FORMAT,
    CheckpointError,
    flatten_state,
    list_checkpoints,
    load,
    load_config,
    load_train_state,
    save,
    unflatten_state,
)
from core.config import DataConfig, DiffusionConfig, ModelConfig, RunConfig, TrainConfig
from core.nets import build_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py

MLP = ModelConfig("mlp", {"width": 32, "blocks": 2, "fourier_features": 8, "step_dim": 16})
UNET = ModelConfig("unet", {"base": 8, "channel_mult": [1, 2], "blocks": 1, "groups": 4, "heads": 2,
                            "attn_resolutions": [4]})


def perturbed(model, seed=0):
    """Nets start with zero output layers; give every weight a nudge so outputs are informative."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g))
    return model


def run_config(model_cfg=MLP, data="swiss_roll"):
    return RunConfig(model=model_cfg, diffusion=DiffusionConfig("cosine", 200, "v"), data=DataConfig(data),
                     train=TrainConfig(steps=10, batch_size=8))


def mlp_model(seed=0):
    return perturbed(build_model(MLP, (2,), seed=seed), seed)


# ---------------------------------------------------------------------------------------------
# round trips


def test_round_trip_gives_identical_outputs(tmp_path):
    model = mlp_model()
    cfg = run_config()
    out = save(tmp_path / "ck", model, cfg, meta={"steps": 10, "metrics": {"mse": 0.25}})
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors"]
    loaded, cfg2, meta = load(out)
    assert cfg2 == cfg
    assert not loaded.training
    x, t = torch.randn(5, 2), torch.tensor([1, 20, 50, 100, 200])
    assert torch.equal(loaded(x, t), model.eval()(x, t))
    assert meta["steps"] == 10 and meta["metrics"] == {"mse": 0.25}
    assert meta["dataset"] == "swiss_roll" and meta["prediction"] == "v" and meta["net"] == "mlp"
    assert meta["sample_shape"] == [2]
    assert meta["versions"]["core"] == __version__ and meta["versions"]["torch"] == torch.__version__
    assert "python" in meta["versions"] and meta["created"].endswith("+00:00")


def test_config_json_layout(tmp_path):
    save(tmp_path / "ck", mlp_model(), run_config())
    doc = json.loads((tmp_path / "ck" / "config.json").read_text())
    assert set(doc) == {"format", "config", "meta"}
    assert doc["format"] == FORMAT == "diffusion-explorer/1"
    assert RunConfig.from_dict(doc["config"]) == run_config()
    cfg, meta = load_config(tmp_path / "ck")
    assert cfg == run_config() and meta == doc["meta"]


def test_unet_round_trip_channels_last(tmp_path):
    model = perturbed(build_model(UNET, (3, 8, 8), seed=0)).to(memory_format=torch.channels_last)
    save(tmp_path / "u", model, run_config(UNET, "shapes"))
    loaded, _, meta = load(tmp_path / "u")
    x = torch.randn(2, 3, 8, 8)
    saved = model.state_dict()
    for name, value in loaded.state_dict().items():  # the weights come back bit for bit
        torch.testing.assert_close(value, saved[name], rtol=0, atol=0)
    # The outputs agree to float32 rounding only: convolutions over channels_last memory may sum in
    # another order than over the contiguous copy (oneDNN picks the kernel at run time).
    torch.testing.assert_close(loaded(x, 7), model.eval()(x, 7), rtol=1e-4, atol=1e-5)
    assert meta["sample_shape"] == [3, 8, 8]


def test_half_precision_weights(tmp_path):
    model = mlp_model()
    save(tmp_path / "h", model, run_config(), dtype=torch.float16)
    raw = safetensors.torch.load_file(str(tmp_path / "h" / "model.safetensors"))
    assert raw["inp.weight"].dtype == torch.float16
    loaded, _, meta = load(tmp_path / "h")
    assert meta["weights_dtype"] == "float16"
    assert loaded.inp.weight.dtype == torch.float32
    assert torch.equal(loaded.inp.weight, model.inp.weight.half().float())
    with pytest.raises(ValueError, match="floating dtype"):
        save(tmp_path / "i", model, run_config(), dtype=torch.int8)


def test_wrapped_models_are_unwrapped(tmp_path):
    model = mlp_model()

    class Wrapper(torch.nn.Module):  # stands in for DistributedDataParallel's .module
        def __init__(self, m):
            super().__init__()
            self.module = m

    save(tmp_path / "w", Wrapper(model), run_config())
    loaded, _, _ = load(tmp_path / "w")
    assert torch.equal(loaded.inp.weight, model.inp.weight)


def test_sample_shape_consistency(tmp_path):
    with pytest.raises(CheckpointError, match=r"contradicts the model's \[2\]"):
        save(tmp_path / "c", mlp_model(), run_config(), meta={"sample_shape": [3]})
    with pytest.raises(CheckpointError, match="no sample_shape"):
        save(tmp_path / "c", torch.nn.Linear(2, 2), run_config())
    with pytest.raises(CheckpointError, match="JSON-serialisable"):
        save(tmp_path / "c", mlp_model(), run_config(), meta={"when": object()})
    assert not (tmp_path / "c").exists()


# ---------------------------------------------------------------------------------------------
# atomic writes


def test_overwrite_replaces_old_checkpoint(tmp_path):
    save(tmp_path / "ck", mlp_model(0), run_config(), meta={"steps": 1})
    new = mlp_model(1)
    save(tmp_path / "ck", new, run_config(), meta={"steps": 2})
    loaded, _, meta = load(tmp_path / "ck")
    assert meta["steps"] == 2 and torch.equal(loaded.inp.weight, new.inp.weight)
    assert [p.name for p in tmp_path.iterdir()] == ["ck"]  # no temporary or backup directories left


def test_overwrite_with_glob_characters_in_name(tmp_path):
    for steps in (1, 2):
        save(tmp_path / "run[1]*", mlp_model(steps), run_config(), meta={"steps": steps})
    assert load(tmp_path / "run[1]*")[2]["steps"] == 2
    assert [p.name for p in tmp_path.iterdir()] == ["run[1]*"]


def test_failed_write_leaves_old_checkpoint_intact(tmp_path, monkeypatch):
    old = mlp_model(0)
    save(tmp_path / "ck", old, run_config(), meta={"steps": 1})
    before = {p.name: p.read_bytes() for p in (tmp_path / "ck").iterdir()}
    real = safetensors.torch.save_file

    def half_write_then_die(tensors, filename, metadata=None):
        real(tensors, filename, metadata=metadata)
        with open(filename, "r+b") as f:
            f.truncate(100)  # a torn file on disk...
        raise OSError("disk full")  # ...and the writer dies

    monkeypatch.setattr(checkpoint.safetensors.torch, "save_file", half_write_then_die)
    with pytest.raises(OSError, match="disk full"):
        save(tmp_path / "ck", mlp_model(1), run_config(), meta={"steps": 2})
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in (tmp_path / "ck").iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["ck"]
    loaded, _, meta = load(tmp_path / "ck")
    assert meta["steps"] == 1 and torch.equal(loaded.inp.weight, old.inp.weight)


def test_failure_during_swap_rolls_back(tmp_path, monkeypatch):
    save(tmp_path / "ck", mlp_model(0), run_config(), meta={"steps": 1})
    real = os.replace
    calls = []

    def second_rename_fails(src, dst):
        calls.append((src, dst))
        if len(calls) == 2:
            raise OSError("interrupted")
        return real(src, dst)

    monkeypatch.setattr(checkpoint.os, "replace", second_rename_fails)
    with pytest.raises(OSError, match="interrupted"):
        save(tmp_path / "ck", mlp_model(1), run_config(), meta={"steps": 2})
    monkeypatch.undo()
    assert load(tmp_path / "ck")[2]["steps"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["ck"]


def test_load_falls_back_to_moved_aside_copy(tmp_path):
    # What a save killed between its two renames leaves behind: no target, a whole old copy beside it.
    save(tmp_path / "ck", mlp_model(0), run_config(), meta={"steps": 1})
    os.replace(tmp_path / "ck", tmp_path / ".ck.old-1234abcd")
    assert load(tmp_path / "ck")[2]["steps"] == 1
    save(tmp_path / "ck", mlp_model(1), run_config(), meta={"steps": 2})  # the next save cleans it up
    assert [p.name for p in tmp_path.iterdir()] == ["ck"]


def test_refuses_to_replace_foreign_directory_or_file(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "cat.jpg").write_bytes(b"x")
    with pytest.raises(CheckpointError, match="non-empty directory that is not a checkpoint"):
        save(folder, mlp_model(), run_config())
    assert (folder / "cat.jpg").exists()
    (tmp_path / "file").write_text("x")
    with pytest.raises(CheckpointError, match="not a directory"):
        save(tmp_path / "file", mlp_model(), run_config())
    (tmp_path / "empty").mkdir()
    save(tmp_path / "empty", mlp_model(), run_config())  # an empty directory is fine
    assert (tmp_path / "empty" / "model.safetensors").exists()


# ---------------------------------------------------------------------------------------------
# validation on load


def test_missing_path_and_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load(tmp_path / "nope")
    save(tmp_path / "ck", mlp_model(), run_config())
    (tmp_path / "ck" / "config.json").unlink()
    with pytest.raises(CheckpointError, match="config.json is missing"):
        load(tmp_path / "ck")
    (tmp_path / "ck2").mkdir()
    with pytest.raises(CheckpointError, match="model.safetensors is missing"):
        load(tmp_path / "ck2")
    with pytest.raises(CheckpointError, match="is a file; a checkpoint is a directory"):
        load(tmp_path / "ck" / "model.safetensors")


@pytest.mark.parametrize("text,match", [
    ("{not json", "is not valid JSON"),
    ("[1, 2]", "must hold a JSON object"),
    ('{"format": "diffusion-explorer/1", "config": {}}', r"lacks \['meta'\]"),
    ('{"format": "other/9", "config": {}, "meta": {}}', "format 'other/9'; supported: diffusion-explorer/1"),
    ('{"format": "diffusion-explorer/1", "config": {"model": {"nett": "mlp"}}, "meta": {}}',
     r"invalid run config: unknown keys \['nett'\]"),
    ('{"format": "diffusion-explorer/1", "config": {}, "meta": {"sample_shape": "2"}}',
     "sample_shape must be a list of positive ints"),
    ('{"format": "diffusion-explorer/1", "config": {"model": {"net": "unet"}}, "meta": {"sample_shape": [2]}}',
     "cannot build the model it describes: net 'unet' is for image data"),
])
def test_corrupted_config(tmp_path, text, match):
    save(tmp_path / "ck", mlp_model(), run_config())
    (tmp_path / "ck" / "config.json").write_text(text)
    with pytest.raises(CheckpointError, match=match):
        load(tmp_path / "ck")


def test_wrong_tensor_names_and_shapes(tmp_path):
    save(tmp_path / "ck", mlp_model(), run_config())
    file = tmp_path / "ck" / "model.safetensors"
    tensors = safetensors.torch.load_file(str(file))
    tensors["inp.weight"] = torch.zeros(32, 5)
    tensors["extra.bias"] = torch.zeros(3)
    del tensors["out.bias"]
    safetensors.torch.save_file(tensors, str(file))
    with pytest.raises(CheckpointError) as info:
        load(tmp_path / "ck")
    msg = str(info.value)
    assert "missing tensors: out.bias" in msg
    assert "unexpected tensors: extra.bias" in msg
    assert "inp.weight is [32, 5], the model needs [32, 18]" in msg


def test_config_for_a_different_net_size(tmp_path):
    save(tmp_path / "ck", mlp_model(), run_config())
    doc = json.loads((tmp_path / "ck" / "config.json").read_text())
    doc["config"]["model"]["params"]["width"] = 64
    (tmp_path / "ck" / "config.json").write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match="wrong shapes: .*the model needs"):
        load(tmp_path / "ck")


def test_garbage_weights_file(tmp_path):
    save(tmp_path / "ck", mlp_model(), run_config())
    (tmp_path / "ck" / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{broken")
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load(tmp_path / "ck")


def test_pickles_are_refused_and_never_unpickled(tmp_path, monkeypatch):
    def no_torch_load(*args, **kwargs):
        raise AssertionError("torch.load must never be called")

    monkeypatch.setattr(torch, "load", no_torch_load)
    monkeypatch.setattr(pickle, "load", no_torch_load)
    monkeypatch.setattr(pickle, "loads", no_torch_load)

    for name in ("model.pt", "model.pth", "last.ckpt", "pytorch_model.bin"):
        f = tmp_path / name
        f.write_bytes(b"PK\x03\x04 pretend zip of pickles")
        with pytest.raises(CheckpointError, match=r"only safetensors checkpoints are loaded; .* is a pickle, which can run code"):
            load(f)
    # a directory holding only a pickle
    d = tmp_path / "old"
    d.mkdir()
    (d / "weights.pth").write_bytes(b"\x80\x04 pickle")
    with pytest.raises(CheckpointError, match=r"weights.pth is a pickle"):
        load(d)
    # a pickle renamed to model.safetensors is recognised by its first bytes
    save(tmp_path / "ck", mlp_model(), run_config())
    (tmp_path / "ck" / "model.safetensors").write_bytes(pickle.dumps({"w": [1, 2]}))
    with pytest.raises(CheckpointError, match="is a pickle"):
        load(tmp_path / "ck")


def test_safetensors_starting_with_pickle_byte_is_not_mistaken(tmp_path):
    # A safetensors header of length 0x80 makes the file's first byte 0x80, pickle's PROTO opcode.
    header = b'{"__metadata__":{"k":"v"}}'.ljust(0x80, b" ")  # the format allows space padding
    f = tmp_path / "x.safetensors"
    f.write_bytes((0x80).to_bytes(8, "little") + header)
    assert f.read_bytes()[:1] == b"\x80"
    assert not checkpoint._looks_pickled(f)
    assert safetensors.torch.load_file(str(f)) == {}
    f.write_bytes(b"\x80\x05" + b"\x00" * 20)
    assert checkpoint._looks_pickled(f)


# ---------------------------------------------------------------------------------------------
# listing


def test_list_checkpoints(tmp_path):
    assert list_checkpoints(tmp_path / "none") == []
    save(tmp_path / "b-digits", build_model(UNET, (1, 8, 8)), run_config(UNET, "digits"), meta={"steps": 5})
    save(tmp_path / "runs" / "a-roll", mlp_model(), run_config(), train_state={"step": 3})
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{")
    (tmp_path / "broken" / "model.safetensors").write_bytes(b"")
    (tmp_path / "notes").mkdir()
    entries = list_checkpoints(tmp_path)
    assert [e["name"] for e in entries] == ["b-digits", "runs/a-roll"]
    b, a = entries
    assert (b["dataset"], b["net"], b["steps"], b["resumable"]) == ("digits", "unet", 5, False)
    assert (a["dataset"], a["net"], a["steps"], a["resumable"]) == ("swiss_roll", "mlp", 3, True)
    assert a["path"] == str(tmp_path / "runs" / "a-roll") and a["created"]
    assert list_checkpoints(tmp_path / "b-digits")[0]["name"] == "b-digits"


# ---------------------------------------------------------------------------------------------
# training state


def test_flatten_round_trip_keeps_types():
    state = {"step": 7, "lr": 0.5, "name": "x", "none": None, "flag": True, "betas": (0.9, 0.99),
             "by_int": {0: torch.ones(2), 1: {"m": torch.zeros(3, dtype=torch.bfloat16)}},
             "list": [torch.tensor(1.5), "a"], "inf": float("inf"), "__odd": 1}
    tensors, tree = flatten_state(state)
    json.dumps(tree)  # the tree is plain JSON
    back = unflatten_state(json.loads(json.dumps(tree)), tensors)
    assert back["betas"] == (0.9, 0.99) and back["step"] == 7 and back["none"] is None and back["__odd"] == 1
    assert set(back["by_int"]) == {0, 1}
    assert torch.equal(back["by_int"][0], torch.ones(2)) and back["by_int"][1]["m"].dtype == torch.bfloat16
    assert back["list"][0].item() == 1.5 and back["inf"] == float("inf")
    with pytest.raises(CheckpointError, match="holds a object, which cannot be stored without pickling"):
        flatten_state({"bad": object()})


def test_resume_state_round_trip_with_adamw(tmp_path):
    g = torch.Generator().manual_seed(0)
    data = torch.randn(64, 2, generator=g)

    def train_step(model, opt, sched, i):
        x = data[(i * 8) % 64:(i * 8) % 64 + 8]
        t = torch.full((8,), 1 + i)
        opt.zero_grad()
        (model(x, t) - x).pow(2).mean().backward()
        opt.step()
        sched.step()

    model = build_model(MLP, (2,), seed=0)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.01, betas=(0.8, 0.95))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 / (1 + s))
    for i in range(3):
        train_step(model, opt, sched, i)
    ema = {k: v.clone() for k, v in model.state_dict().items()}
    state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
             "ema": ema, "step": 3, "rng": g.get_state()}
    save(tmp_path / "ck", model, run_config(), train_state=state)
    assert load_config(tmp_path / "ck")[1]["steps"] == 3

    restored = load_train_state(tmp_path / "ck")
    assert restored["step"] == 3 and torch.equal(restored["rng"], g.get_state())
    model2 = build_model(MLP, (2,), seed=99)
    opt2 = torch.optim.AdamW(model2.parameters(), lr=1e-2, weight_decay=0.01, betas=(0.8, 0.95))
    sched2 = torch.optim.lr_scheduler.LambdaLR(opt2, lambda s: 1.0 / (1 + s))
    model2.load_state_dict(restored["model"])
    opt2.load_state_dict(restored["optimizer"])
    sched2.load_state_dict(restored["scheduler"])
    assert opt2.param_groups[0]["betas"] == (0.8, 0.95)

    for i in range(3, 5):  # both runs continue identically
        train_step(model, opt, sched, i)
        train_step(model2, opt2, sched2, i)
    for k, v in model.state_dict().items():
        assert torch.equal(v, model2.state_dict()[k]), k
    assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]


def test_load_train_state_absent(tmp_path):
    save(tmp_path / "ck", mlp_model(), run_config())
    with pytest.raises(CheckpointError, match="has no training state"):
        load_train_state(tmp_path / "ck")


def test_sampling_clip_reads_meta_and_defaults_by_kind():
    from core.checkpoint import sampling_clip

    assert sampling_clip({"x0_clip": 2.5, "sample_shape": [2]}) == 2.5
    assert sampling_clip({"sample_shape": [3, 32, 32]}) == 1.0
    assert sampling_clip({"sample_shape": [2]}) is None
