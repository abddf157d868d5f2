"""explorer.context: settings, checkpoint listing and the shared read-only model cache."""
import os
from pathlib import Path

import pytest
import torch

from core.checkpoint import save
from core.config import ModelConfig, RunConfig
from core.nets import build_model
from explorer.context import AppContext, Settings

TINY = ModelConfig("mlp", {"width": 16, "blocks": 1, "fourier_features": 8, "step_dim": 8})


def tiny_checkpoint(path: Path, seed: int = 0) -> Path:
    model = build_model(TINY, (2,), seed=seed)
    return save(path, model, RunConfig(model=TINY), {"steps": 1})


def test_checkpoint_dirs_shipped_first_then_the_users(tmp_path):
    s = Settings(runs_dir=tmp_path / "runs", shipped_checkpoints=tmp_path / "shipped",
                 extra_checkpoint_dirs=(tmp_path / "runs", tmp_path / "more"))
    assert s.checkpoint_dirs == (tmp_path / "shipped", tmp_path / "runs", tmp_path / "more")
    assert Settings().host == "127.0.0.1"  # local only unless asked


def test_lists_checkpoints_from_every_folder(tmp_path):
    tiny_checkpoint(tmp_path / "shipped" / "toy")
    tiny_checkpoint(tmp_path / "runs" / "mine")
    ctx = AppContext(Settings(device="cpu", runs_dir=tmp_path / "runs", shipped_checkpoints=tmp_path / "shipped",
                              images_dir=tmp_path / "no-images"))
    found = ctx.checkpoints()
    assert [c["label"] for c in found] == ["shipped/toy", "runs/mine"]
    assert found[1]["root"] == str(tmp_path / "runs") and found[1]["net"] == "mlp"
    assert ctx.images == {} and ctx.device == torch.device("cpu") and ctx.jobs is None


def test_samplable_listing_is_shared_reused_briefly_and_rescanned_when_fresh(tmp_path, monkeypatch):
    tiny_checkpoint(tmp_path / "runs" / "a")
    ctx = AppContext(Settings(device="cpu", runs_dir=tmp_path / "runs", shipped_checkpoints=tmp_path / "none",
                              images_dir=tmp_path / "no-images"))
    scans = []
    real = ctx.checkpoints
    monkeypatch.setattr(ctx, "checkpoints", lambda: scans.append(1) or real())
    first = ctx.samplable_checkpoints()
    assert [e["name"] for e in first] == ["a"] and first[0]["sample_shape"] == [2]
    tiny_checkpoint(tmp_path / "runs" / "b")
    assert ctx.samplable_checkpoints() is first and len(scans) == 1  # within the TTL: no rescan
    assert [e["name"] for e in ctx.samplable_checkpoints(fresh=True)] == ["a", "b"] and len(scans) == 2
    monkeypatch.setattr(AppContext, "LISTING_TTL", -1.0)  # expired: every call rescans
    ctx.samplable_checkpoints()
    assert len(scans) == 3


def test_find_checkpoint_rescans_once_for_a_new_one(tmp_path):
    first = tiny_checkpoint(tmp_path / "runs" / "a")
    ctx = AppContext(Settings(device="cpu", runs_dir=tmp_path / "runs", shipped_checkpoints=tmp_path / "none",
                              images_dir=tmp_path / "no-images"))
    assert ctx.find_checkpoint(first)["name"] == "a"
    new = tiny_checkpoint(tmp_path / "runs" / "b")  # saved after the cached scan
    assert ctx.find_checkpoint(str(new))["name"] == "b"
    assert ctx.find_checkpoint(tmp_path / "runs" / "nope") is None


def test_missing_folders_list_nothing(tmp_path):
    ctx = AppContext(Settings(runs_dir=tmp_path / "nope", shipped_checkpoints=tmp_path / "nope2"))
    assert ctx.checkpoints() == []


def test_loaded_models_are_cached_read_only_and_reloaded_when_rewritten(tmp_path):
    path = tiny_checkpoint(tmp_path / "ck")
    ctx = AppContext(Settings(device="cpu", runs_dir=tmp_path))
    model, config, meta = ctx.load_checkpoint(path)
    assert ctx.load_checkpoint(str(path))[0] is model  # same object: loaded once
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    assert config.model == TINY and meta["steps"] == 1
    before = next(model.parameters()).clone()
    tiny_checkpoint(tmp_path / "ck", seed=1)  # retrained: new weights on disk
    weights = path / "model.safetensors"
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))
    fresh = ctx.load_checkpoint(path)[0]
    assert fresh is not model and not torch.equal(next(fresh.parameters()), before)


def test_cache_is_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(AppContext, "MAX_LOADED", 2)
    ctx = AppContext(Settings(device="cpu", runs_dir=tmp_path))
    paths = [tiny_checkpoint(tmp_path / f"c{i}") for i in range(3)]
    first = ctx.load_checkpoint(paths[0])[0]
    for p in paths[1:]:
        ctx.load_checkpoint(p)
    assert len(ctx._models) == 2
    assert ctx.load_checkpoint(paths[0])[0] is not first  # the oldest was dropped


def test_unknown_device_is_refused():
    with pytest.raises(ValueError, match="unknown device"):
        AppContext(Settings(device="tpu"))


def test_work_deferred_until_serving_runs_once_launched_in_order_and_survives_a_failure(tmp_path, capsys):
    import threading
    import types

    ctx = AppContext(Settings(runs_dir=tmp_path))
    ran, launched = [], threading.Event()

    def broken():
        raise RuntimeError("no spare today")

    ctx.when_serving(lambda: ran.append("spare"))
    ctx.when_serving(broken)
    ctx.when_serving(lambda: ran.append("warm"))
    demo = types.SimpleNamespace(is_running=False)
    thread = ctx.serve_after_launch(demo, poll_s=0.001)
    assert not launched.wait(0.05) and ran == []  # not launched: nothing runs
    demo.is_running = True
    thread.join(timeout=10)
    assert ran == ["spare", "warm"] and "no spare today" in capsys.readouterr().err


def test_an_app_never_launched_runs_none_of_its_deferred_work(tmp_path):
    import types

    ctx = AppContext(Settings(runs_dir=tmp_path))
    ran = []
    ctx.when_serving(lambda: ran.append(1))
    ctx.serve_after_launch(types.SimpleNamespace(is_running=False), poll_s=0.001, give_up_s=0.02).join(timeout=10)
    assert ran == []
