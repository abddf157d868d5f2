"""`evaluate_checkpoint` and `python -m core.evaluate` on small untrained checkpoints saved by the test."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from core import checkpoint
from core.config import DataConfig, DiffusionConfig, ModelConfig, RunConfig
from core.evaluate import (EvaluationCancelled, checkpoint_noise_mse, evaluate_checkpoint, evaluate_samples,
                           format_report, main, real_sets, time_left)
from core.nets import build_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


ROOT = Path(__file__).resolve().parent.parent
FIGURE_KEYS = {"label", "value", "interval", "level", "floor", "n", "n_floor", "better", "space", "warnings"}

SETUPS = {  # dataset -> (net, params, sample shape, data params): tiny nets so sampling takes a moment
    "moons": ("mlp", {"width": 32, "blocks": 1}, (2,), {"n": 500}),
    "digits": ("unet", {"base": 8, "channel_mult": [1], "blocks": 1, "attn_resolutions": []}, (1, 8, 8), {}),
    "signals": ("conv1d", {"channels": 8, "blocks": 1, "dilations": [1]}, (1, 64), {"n": 300}),
}
EXPECTED = {
    "moons": {"mse", "swd", "mmd", "precision", "recall", "density", "coverage", "diversity", "memorisation"},
    "digits": {"mse", "fid", "kid", "is", "confident", "precision", "recall", "density", "coverage", "diversity",
               "memorisation_pixel", "memorisation_feature"},
    "signals": {"mse", "spectrum", "precision", "recall", "density", "coverage", "diversity", "memorisation_raw",
                "memorisation_feature"},
}


def save_untrained(path, dataset):
    net, params, shape, data_params = SETUPS[dataset]
    config = RunConfig(model=ModelConfig(net, params), diffusion=DiffusionConfig(T=50),
                       data=DataConfig(dataset, data_params))
    return checkpoint.save(path, build_model(config.model, shape, seed=0), config, {})


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpts")
    return {name: save_untrained(root / name, name) for name in SETUPS}


def check_structure(r, dataset, n):
    assert r["dataset"] == dataset and r["n"] == n
    assert set(r["metrics"]) == EXPECTED[dataset]
    for name, fig in r["metrics"].items():
        assert FIGURE_KEYS <= set(fig), name
        lo, hi = fig["interval"]
        assert lo <= fig["value"] <= hi, name
        assert isinstance(fig["warnings"], list)
    json.dumps(r, allow_nan=False)  # plain JSON, no NaN


@pytest.mark.parametrize("elapsed, fraction, said", [
    (10.0, 0.25, ", about 30 s left"), (60.0, 0.2, ", about 4 min left"), (3.0, 0.999, ", about 1 s left"),
    (1.0, 0.5, ""), (30.0, 0.005, ""), (30.0, 1.0, "")])  # too early to tell, or finished
def test_time_left_extrapolates_the_pace_so_far(elapsed, fraction, said):
    assert time_left(elapsed, fraction) == said


@pytest.mark.parametrize("dataset", list(SETUPS))
def test_evaluate_checkpoint_reports_every_figure(ckpts, dataset):
    calls = []
    r = evaluate_checkpoint(ckpts[dataset], 40, steps=2, rounds=5, progress=lambda f, m: calls.append((f, m)))
    check_structure(r, dataset, 40)
    fracs = [f for f, _ in calls]
    assert fracs[0] == 0.0 and fracs[-1] == 1.0 and fracs == sorted(fracs)
    mse = r["metrics"]["mse"]
    assert len(mse["per_t"]["t"]) == len(mse["per_t"]["mse"]) == 20
    # an untrained net lands far from the data: its figures are worse than the real-vs-real floor
    if dataset == "moons":
        assert r["metrics"]["swd"]["value"] > r["metrics"]["swd"]["floor"]
        assert r["real_data"]["held_out"] is True
    if dataset == "digits":
        assert r["metrics"]["fid"]["value"] > r["metrics"]["fid"]["floor"]
        assert r["extractor"]["name"] in ("digits-cnn", "inception-v3")
        assert any("FID" in w and "biased high" in w for w in r["warnings"])  # n=40 is far too few
        assert r["real_data"]["held_out"] is False
    assert "floor" in format_report(r)


def test_same_seed_same_result(ckpts):
    a = evaluate_checkpoint(ckpts["moons"], 30, steps=2, rounds=3, seed=3)
    b = evaluate_checkpoint(ckpts["moons"], 30, steps=2, rounds=3, seed=3)
    strip = lambda r: {k: v for k, v in r.items() if k != "timings"}  # noqa: E731
    assert strip(a) == strip(b)


@pytest.mark.parametrize("dataset", ["moons", "digits"])
def test_the_noise_mse_alone_is_the_full_evaluations(ckpts, dataset):
    """checkpoint_noise_mse (recorded beside shipped models) gives exactly evaluate_checkpoint's MSE figure:
    the same examples, noise and bootstrap, with no sampling."""
    full = evaluate_checkpoint(ckpts[dataset], 30, steps=2, rounds=3, seed=2, extractor="builtin")
    alone = checkpoint_noise_mse(ckpts[dataset], 30, seed=2, rounds=3)
    assert alone == full["metrics"]["mse"]
    assert len(alone["per_t"]["t"]) == len(alone["per_t"]["mse"]) > 1
    with pytest.raises(ValueError, match="n must be an integer between"):
        checkpoint_noise_mse(ckpts[dataset], 3)


def test_cancel_stops_with_a_specific_exception(ckpts):
    seen = []

    def cancel():
        seen.append(1)
        return len(seen) > 3

    with pytest.raises(EvaluationCancelled):
        evaluate_checkpoint(ckpts["moons"], 30, steps=5, cancel=cancel)


def test_loaded_model_and_samples_can_be_passed(ckpts):
    loaded = checkpoint.load(ckpts["moons"])
    r, samples = evaluate_checkpoint(loaded, 20, steps=2, rounds=3, return_samples=True)
    assert r["checkpoint"] is None and samples.shape == (20, 2)
    closest = r["metrics"]["memorisation"]["closest"][0]
    assert 0 <= closest["generated"] < 20


def test_feature_memorisation_on_a_training_subset_points_at_real_training_rows(ckpts, monkeypatch):
    import core.evaluate as evaluate
    from core.data import load_dataset
    from core.extractors import builtin_extractor

    monkeypatch.setattr(evaluate, "MAX_FEATURE_TRAIN", 300)
    r, samples = evaluate_checkpoint(ckpts["digits"], 20, steps=2, rounds=3, extractor="builtin", return_samples=True)
    fig = r["metrics"]["memorisation_feature"]
    assert any("random 300 of the 1797" in w for w in fig["warnings"])
    ext, train = builtin_extractor("digits"), load_dataset("digits").x
    for c in fig["closest"][:3]:  # the reported distance is that of the named training image
        fg, _ = ext(samples[c["generated"]:c["generated"] + 1])
        ft, _ = ext(train[c["train"]:c["train"] + 1])
        assert (fg - ft).norm().item() == pytest.approx(c["distance"], rel=1e-5)


def test_evaluate_samples_on_real_data_matches_its_floor_and_flags_outliers(ckpts):
    config, _ = checkpoint.load_config(ckpts["moons"])
    sets = real_sets(config, 200)
    fresh = real_sets(config.replace(data=DataConfig("moons", {"n": 500, "seed": 5})), 200)["train"][:200]
    figs = evaluate_samples(fresh, sets, rounds=5)
    # real data scored as if generated: within a few floor-widths of the real-vs-real floor, no warnings of outliers
    assert figs["swd"]["outliers"] == 0 and figs["swd"]["value"] < 3 * figs["swd"]["floor"] + 0.05
    assert figs["precision"]["value"] > 0.85 and figs["recall"]["value"] > 0.85
    assert 0.7 < figs["memorisation"]["value"] < 1.4
    far = fresh.clone()
    far[:3] = 1000.0
    flagged = evaluate_samples(far, sets, rounds=5)["swd"]
    assert flagged["outliers"] == 3 and any("3 of 200 samples" in w for w in flagged["warnings"])


def test_argument_errors(ckpts):
    with pytest.raises(ValueError, match="n must be an integer between 10"):
        evaluate_checkpoint(ckpts["moons"], 5)
    with pytest.raises(ValueError, match="unknown sampler"):
        evaluate_checkpoint(ckpts["moons"], 20, sampler="euler")
    with pytest.raises(ValueError, match="steps must be between 1 and T=50"):
        evaluate_checkpoint(ckpts["moons"], 20, steps=51)
    with pytest.raises(ValueError, match="unknown timestep spacing 'log'; known: linear, quadratic"):
        evaluate_checkpoint(ckpts["moons"], 20, spacing="log")
    with pytest.raises(ValueError, match="eta is an option of DDIM only, not of 'ddpm'"):
        evaluate_checkpoint(ckpts["moons"], 20, sampler="ddpm", eta=1.0)
    with pytest.raises(ValueError, match="eta must be between 0 and 1"):
        evaluate_checkpoint(ckpts["moons"], 20, eta=2.0)


def test_the_sampler_options_are_used_and_recorded(ckpts, capsys):
    base = dict(steps=10, rounds=3, seed=1, return_samples=True)
    plain, a = evaluate_checkpoint(ckpts["moons"], 20, **base)
    fast, b = evaluate_checkpoint(ckpts["moons"], 20, eta=1.0, spacing="quadratic", **base)
    assert (plain["eta"], plain["spacing"]) == (0.0, "linear") and (fast["eta"], fast["spacing"]) == (1.0, "quadratic")
    assert not torch.equal(a, b)
    assert evaluate_checkpoint(ckpts["moons"], 20, sampler="ddpm", steps=10, rounds=3)["eta"] is None
    assert main(["--checkpoint", str(ckpts["moons"]), "--n", "20", "--steps", "10", "--rounds", "3",
                 "--eta", "1", "--spacing", "quadratic"]) == 0
    assert "ddim 10 steps, eta 1, quadratic spacing" in capsys.readouterr().out


def test_real_sets_hold_out_where_the_dataset_allows(ckpts):
    config, _ = checkpoint.load_config(ckpts["moons"])
    sets = real_sets(config, 100)
    assert sets["held_out"] and sets["pool"].shape[0] >= 200  # two disjoint sets of n for the floor
    assert not torch.equal(sets["pool"][:10], sets["train"][:10])  # a different seed, fresh points
    config, _ = checkpoint.load_config(ckpts["digits"])
    assert real_sets(config, 100)["held_out"] is False


def test_cli_prints_json(ckpts, capsys):
    rc = main(["--checkpoint", str(ckpts["signals"]), "--n", "20", "--steps", "2", "--rounds", "3", "--json",
               "--device", "cpu"])
    assert rc == 0
    r = json.loads(capsys.readouterr().out)
    check_structure(r, "signals", 20)


def test_cli_prints_a_table(ckpts, capsys):
    assert main(["--checkpoint", str(ckpts["moons"]), "--n", "20", "--steps", "2", "--rounds", "3"]) == 0
    out = capsys.readouterr().out
    assert "Sliced Wasserstein-2" in out and "floor (real vs real)" in out and "n=20 samples" in out


def test_cli_missing_checkpoint_is_an_error(tmp_path):
    missing = tmp_path / "nope"
    proc = subprocess.run([sys.executable, "-m", "core.evaluate", "--checkpoint", str(missing), "--n", "20"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert f"no checkpoint at {missing}" in proc.stderr
    assert proc.stdout == ""


def test_cli_threads_option(ckpts, capsys):
    import torch

    before = torch.get_num_threads()
    try:
        assert main(["--checkpoint", str(ckpts["moons"]), "--n", "20", "--steps", "2", "--rounds", "3",
                     "--threads", "2", "--json"]) == 0
        assert torch.get_num_threads() == 2
        with pytest.raises(SystemExit) as info:
            main(["--checkpoint", str(ckpts["moons"]), "--threads", "0"])
        assert info.value.code == 2 and "--threads must be at least 1, got 0" in capsys.readouterr().err
    finally:
        torch.set_num_threads(before)
