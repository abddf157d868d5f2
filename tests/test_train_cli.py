"""`python -m core.train`: end to end on points, images and signals, resume, the NaN guard, and bad arguments."""
from __future__ import annotations

import contextlib
import json
import math

import numpy as np
import pytest
import torch

import core.training
from core import checkpoint
from core.nets import PRESETS, build_model
from core.train import default_preset, main, parse_params

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py

TINY = {
    "points": ["--dataset", "gaussians8", "--dataset-param", "n=500", "--net", "mlp",
               "--model-param", "width=16", "--model-param", "blocks=1", "--model-param", "fourier_features=4"],
    "image": ["--dataset", "digits", "--net", "unet", "--model-param", "base=8", "--model-param", "channel_mult=[1,2]",
              "--model-param", "blocks=1", "--model-param", "attn_resolutions=[]", "--model-param", "groups=4"],
    "signal": ["--dataset", "signals", "--dataset-param", "n=64", "--dataset-param", "length=16", "--net", "conv1d",
               "--model-param", "channels=8", "--model-param", "blocks=1", "--model-param", "dilations=[1]",
               "--model-param", "groups=2"],
}


def log_lines(out):
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


def train(out, kind="points", *extra):
    return main([*TINY[kind], "--out", str(out), "--T", "50", "--batch-size", "16", "--device", "cpu", *extra])


def test_points_end_to_end(tmp_path, capsys):
    out = tmp_path / "run"
    assert train(out, "points", "--steps", "24", "--log-every", "8", "--checkpoint-every", "10",
                 "--preview-every", "12") == 0
    assert "wrote" in capsys.readouterr().out
    model, config, meta = checkpoint.load(out)
    assert meta["steps"] == 24 and meta["dataset"] == "gaussians8" and meta["dataset_kind"] == "points"
    assert config.data.params == {"n": 500} and config.model.params["width"] == 16
    assert config.train.lr == 2e-3 and config.diffusion.T == 50  # the points defaults, and the flag
    assert checkpoint.has_train_state(out)
    lines = log_lines(out)  # the step-8 line survived the checkpoint saves at steps 10 and 20
    assert [d["step"] for d in lines] == [8, 12, 16, 24]
    for d in lines:
        assert {"step", "loss", "lr", "steps_per_s", "per_t_loss"} <= set(d) and len(d["per_t_loss"]) == 20
        assert math.isfinite(d["loss"])
    previews = sorted(p.name for p in (out / "previews").iterdir())
    assert previews == ["step_0000012.npy", "step_0000024.npy"]
    assert np.load(out / "previews" / "step_0000024.npy").shape == (512, 2)
    assert not [p for p in tmp_path.iterdir() if p.name != "run"]  # no temporary or moved-aside leftovers


@pytest.mark.parametrize("kind", ["image", "signal"])
def test_images_and_signals_end_to_end(tmp_path, kind):
    out = tmp_path / kind
    assert train(out, kind, "--steps", "3", "--preview-every", "3", "--log-every", "1") == 0
    model, config, meta = checkpoint.load(out)
    shape = {"image": [1, 8, 8], "signal": [1, 16]}[kind]
    assert meta["sample_shape"] == shape and meta["steps"] == 3
    assert config.train.lr == {"image": 5e-4, "signal": 1e-3}[kind]
    assert [d["step"] for d in log_lines(out)] == [1, 2, 3]
    assert np.load(out / "previews" / "step_0000003.npy").shape == (16, *shape)
    assert (out / "previews" / "step_0000003.png").exists() == (kind == "image")


def test_resume_continues_the_count_and_the_log(tmp_path):
    out = tmp_path / "run"
    assert train(out, "points", "--steps", "6", "--log-every", "3") == 0
    assert main(["--resume", str(out), "--steps", "9", "--log-every", "3"]) == 0
    _, config, meta = checkpoint.load(out)
    assert meta["steps"] == 9 and config.train.steps == 9
    assert [d["step"] for d in log_lines(out)] == [3, 6, 9]
    other = tmp_path / "copy"
    assert main(["--resume", str(out), "--out", str(other), "--steps", "10"]) == 0
    assert checkpoint.load(other)[2]["steps"] == 10 and checkpoint.load(out)[2]["steps"] == 9


def test_nan_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    real = core.training.diffusion_loss
    calls = []

    def poisoned(*args, **kwargs):  # NaN from the 25th step on
        loss, mse = real(*args, **kwargs)
        calls.append(1)
        return (loss * float("nan"), mse) if len(calls) >= 25 else (loss, mse)

    monkeypatch.setattr(core.training, "diffusion_loss", poisoned)
    assert train(out, "points", "--steps", "40", "--checkpoint-every", "10") == 1
    err = capsys.readouterr().err
    assert "loss became nan at step 25" in err and "kept" in err
    model, _, meta = checkpoint.load(out)
    assert meta["steps"] == 20
    assert all(torch.isfinite(v).all() for v in model.state_dict().values())

    calls.clear()  # a new run into the same place fails before its first save: the old checkpoint stays
    assert train(out, "points", "--steps", "40") == 1
    assert checkpoint.load(out)[2]["steps"] == 20


def test_ctrl_c_saves_what_was_learnt_and_can_resume(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    real = core.training.diffusion_loss
    calls = []

    def interrupted(*args, **kwargs):  # the user presses Ctrl-C during the 4th step
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(core.training, "diffusion_loss", interrupted)
    assert train(out, "points", "--steps", "10") == 130
    assert "interrupted at step 3 of 10" in capsys.readouterr().err
    assert checkpoint.load(out)[2]["steps"] == 3
    monkeypatch.setattr(core.training, "diffusion_loss", real)
    assert main(["--resume", str(out)]) == 0
    assert checkpoint.load(out)[2]["steps"] == 10


def test_default_presets_fit_the_data():
    assert default_preset("points", (2,)) == "mlp-2d"
    for kind, shape, net in [("image", (1, 8, 8), "unet"), ("image", (1, 28, 28), "unet"),
                             ("image", (3, 32, 32), "unet"), ("signal", (1, 64), "conv1d")]:
        name = default_preset(kind, shape)
        assert PRESETS[name].net == net
        build_model(PRESETS[name], shape)  # raises if it does not fit
    assert default_preset("image", (1, 8, 8)) != default_preset("image", (3, 32, 32))


def test_parse_params_reads_json_values():
    assert parse_params(["n=5", "noise=0.1", "mult=[1, 2]", "path=data/x", "flag=true"], "--p") == {
        "n": 5, "noise": 0.1, "mult": [1, 2], "path": "data/x", "flag": True}


@pytest.mark.parametrize("args, message", [
    (["--dataset", "nope", "--out", "X", "--steps", "2"], "unknown dataset 'nope'; known: swiss_roll"),
    (["--dataset", "moons", "--out", "X", "--preset", "big"], "unknown preset 'big'; known: mlp-2d"),
    (["--dataset", "moons", "--out", "X", "--net", "transformer"], "unknown net 'transformer'; known: unet"),
    (["--dataset", "moons", "--out", "X", "--net", "unet"], "cannot take samples of shape (2,)"),
    (["--dataset", "moons", "--out", "X", "--dataset-param", "n"], "--dataset-param takes key=value"),
    (["--dataset", "moons", "--out", "X", "--dataset-param", "bogus=1"], "unknown parameter(s) bogus"),
    (["--dataset", "moons", "--out", "X", "--steps", "0"], "steps must be at least 1"),
    (["--dataset", "moons", "--out", "X", "--checkpoint-every", "-1"], "--checkpoint-every must be >= 0"),
    (["--dataset", "moons", "--out", "X", "--checkpoint-every", "9"],
     "--checkpoint-every must be 0 (save only at the end) or at least 10 steps, got 9"),
    (["--dataset", "moons", "--out", "X", "--keep-checkpoints", "0"],
     "--keep-checkpoints: the number of checkpoints to keep must be a whole number from 1 to 1000, got 0"),
    (["--dataset", "moons", "--out", "X", "--runs-quota", "lots"],
     "--runs-quota: a size must be a number with an optional unit K, M, G or T (e.g. 500M, 2G), got 'lots'"),
    (["--dataset", "moons"], "--dataset and --out are required"),
    (["--dataset", "moons", "--out", "X", "--preset", "mlp-2d", "--net", "mlp"], "not allowed with argument"),
    (["--resume", "missing-dir"], "cannot resume: no checkpoint at missing-dir"),
    (["--dataset", "moons", "--out", "X", "--threads", "0"], "--threads must be at least 1, got 0"),
    (["--dataset", "moons", "--out", "X", "--compile", "fastest"], "argument --compile: invalid choice: 'fastest'"),
    (["--dataset", "moons", "--out", "X", "--shards", "0"], "shards must be between 1 and the batch size (256), got 0"),
    (["--dataset", "moons", "--out", "X", "--device", "cpu", "--shards", "2", "--model-param", "dropout=0.1"],
     "shards=2 is not possible here: the net draws random numbers while it trains (dropout)"),
])
def test_bad_arguments_exit_2_with_a_clear_message(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "X").exists()


def test_out_must_be_free_or_a_checkpoint_and_resume_takes_no_run_flags(tmp_path, capsys):
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(SystemExit):
        train(busy, "points", "--steps", "1")
    assert "not a checkpoint" in capsys.readouterr().err and (busy / "notes.txt").read_text() == "mine"

    out = tmp_path / "run"
    assert train(out, "points", "--steps", "2") == 0
    with pytest.raises(SystemExit):
        main(["--resume", str(out), "--lr", "0.1"])
    assert "drop --lr" in capsys.readouterr().err

    slim = tmp_path / "slim"
    assert train(slim, "points", "--steps", "2", "--no-train-state") == 0
    with pytest.raises(SystemExit):
        main(["--resume", str(slim)])
    assert "saved without its training state" in capsys.readouterr().err


def test_help_states_each_default_once(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert "(default: None)" not in text
    assert "noise schedule (default: linear)" in text and "diffusion steps (default: 1000)" in text
    assert text.count("(default: linear)") == 1 and text.count("(default: 1000)") == 1
    assert "--dataset DATASET required unless --resume" in text
    assert "--threads N CPU threads for torch (default: half the cores" in text


def test_compile_mode_and_channels_last_reach_the_trainer(tmp_path, monkeypatch):
    modes = []
    monkeypatch.setattr(torch, "compile", lambda net, mode=None: modes.append(mode) or net)  # wiring only
    out = tmp_path / "run"
    assert train(out, "image", "--steps", "2", "--compile", "reduce-overhead", "--channels-last") == 0
    assert modes == ["reduce-overhead"] and checkpoint.load(out)[1].train.compile == "reduce-overhead"
    assert train(tmp_path / "plain", "points", "--steps", "1", "--compile") == 0
    assert modes[-1] is None and checkpoint.load(tmp_path / "plain")[1].train.compile == "default"
    seen = []
    real = core.training.Trainer.__init__

    def spy(self, *args, **kwargs):
        real(self, *args, **kwargs)
        seen.append(self.channels_last)

    monkeypatch.setattr(core.training.Trainer, "__init__", spy)
    assert main(["--resume", str(out), "--steps", "3", "--channels-last"]) == 0
    assert seen == [True]


def test_cpu_bf16_reaches_the_trainer_and_is_refused_with_a_reason_where_the_cpu_lacks_it(tmp_path, monkeypatch,
                                                                                            capsys):
    seen = []
    real = core.training.Trainer.__init__

    def spy(self, *args, **kwargs):
        seen.append(kwargs.get("cpu_bf16"))
        real(self, *args, **kwargs)

    monkeypatch.setattr(core.training.Trainer, "__init__", spy)
    monkeypatch.setattr(core.training, "cpu_has_bf16", lambda: True)  # the wiring, on any CPU
    monkeypatch.setattr(core.training, "autocast", lambda device, enabled=True, cpu=False: contextlib.nullcontext())
    out = tmp_path / "run"
    assert train(out, "image", "--steps", "2", "--cpu-bf16") == 0
    assert "under bf16 autocast" in capsys.readouterr().out  # said as the run starts
    assert "bf16 autocast" in checkpoint.load(out)[2]["device"]
    assert main(["--resume", str(out), "--steps", "3", "--cpu-bf16"]) == 0
    assert seen == [True, True]
    monkeypatch.setattr(core.training, "cpu_has_bf16", lambda: False)
    with pytest.raises(SystemExit) as info:
        train(tmp_path / "other", "image", "--steps", "2", "--cpu-bf16")
    assert info.value.code == 2 and "needs a CPU with native bf16" in capsys.readouterr().err
    assert not (tmp_path / "other").exists()
