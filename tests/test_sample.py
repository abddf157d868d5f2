import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from core import checkpoint
from core.config import DiffusionConfig, ModelConfig, RunConfig
from core.nets import build_model
from core.sample import draw, main, to_uint8_grid

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


def _save(tmp_path, name, net, params, shape):
    cfg = RunConfig(model=ModelConfig(net, params), diffusion=DiffusionConfig("linear", 50))
    model = build_model(cfg.model, shape, seed=0)
    return checkpoint.save(tmp_path / name, model, cfg, {"sample_shape": list(shape), "dataset": name})


def test_image_model_writes_a_scaled_png_grid_and_nothing_else(tmp_path, capsys):
    ck = _save(tmp_path, "img", "unet", {"base": 8, "channel_mult": [1], "blocks": 1, "groups": 4}, (1, 8, 8))
    rc = main(["--checkpoint", str(ck), "--sampler", "ddpm", "--steps", "5", "--n", "6", "--seed", "1",
               "--out", str(tmp_path / "out" / "grid.png")])
    assert rc == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["grid.png"]  # no unrequested .npz
    png = np.asarray(Image.open(tmp_path / "out" / "grid.png"))
    small = to_uint8_grid(torch.zeros(6, 1, 8, 8)).shape  # 3 columns x 2 rows of 8 px with 1 px gaps
    assert small[:2] == (2 * 9 + 1, 3 * 9 + 1)
    factor = -(-512 // small[1])  # the smallest whole factor that makes it at least 512 px wide
    assert png.shape == (small[0] * factor, small[1] * factor)
    assert (png[::factor, ::factor].repeat(factor, 0).repeat(factor, 1) == png).all()  # hard pixels
    err = capsys.readouterr().err
    assert "sampling 6 x (1, 8, 8) with ddpm, 5 steps" in err and "[100%] step 5 of 5" in err


def test_npz_holds_the_samples_and_the_seed_fixes_them(tmp_path):
    ck = _save(tmp_path, "img", "unet", {"base": 8, "channel_mult": [1], "blocks": 1, "groups": 4}, (1, 8, 8))
    args = ["--checkpoint", str(ck), "--sampler", "ddpm", "--steps", "5", "--n", "6", "--seed", "1"]
    assert main([*args, "--out", str(tmp_path / "a.npz")]) == 0
    z = np.load(tmp_path / "a.npz")
    assert z["samples"].shape == (6, 1, 8, 8) and str(z["sampler"]) == "ddpm"
    assert np.abs(z["samples"]).max() <= 1.0  # images are clipped to [-1, 1]
    main([*args, "--out", str(tmp_path / "again.npz"), "--threads", "2"])
    assert np.array_equal(np.load(tmp_path / "again.npz")["samples"], z["samples"])
    main([*args, "--out", str(tmp_path / "quadratic.npz"), "--spacing", "quadratic"])  # other timesteps
    q = np.load(tmp_path / "quadratic.npz")
    assert str(q["spacing"]) == "quadratic" and not np.array_equal(q["samples"], z["samples"])


def test_points_model_png_is_refused_before_sampling_npz_works(tmp_path, capsys):
    ck = _save(tmp_path, "pts", "mlp", {"width": 16, "blocks": 1}, (2,))
    rc = main(["--checkpoint", str(ck), "--steps", "4", "--n", "10", "--out", str(tmp_path / "p.png")])
    assert rc == 2 and not list(tmp_path.glob("p.*"))
    err = capsys.readouterr().err
    assert "not images" in err and "--out " + str(tmp_path / "p.npz") in err and "sampling" not in err
    assert main(["--checkpoint", str(ck), "--steps", "4", "--n", "10", "--out", str(tmp_path / "p.npz")]) == 0
    assert np.load(tmp_path / "p.npz")["samples"].shape == (10, 2)


def test_threads_option(tmp_path, capsys):
    ck = _save(tmp_path, "pts", "mlp", {"width": 16, "blocks": 1}, (2,))
    assert main(["--checkpoint", str(ck), "--steps", "2", "--threads", "0", "--out", str(tmp_path / "p.npz")]) == 2
    assert "--threads must be at least 1, got 0" in capsys.readouterr().err
    assert not (tmp_path / "p.npz").exists()


def test_errors_are_clear(tmp_path, capsys):
    ck = _save(tmp_path, "pts", "mlp", {"width": 16, "blocks": 1}, (2,))
    assert main(["--checkpoint", str(tmp_path / "missing"), "--out", str(tmp_path / "x.npz")]) == 2
    assert "missing" in capsys.readouterr().err
    assert main(["--checkpoint", str(ck), "--steps", "51", "--out", str(tmp_path / "x.npz")]) == 2
    assert "steps must be between 1 and T=50, got 51" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--checkpoint", str(ck), "--out", str(tmp_path / "x.jpg")])
    capsys.readouterr()
    for args, said in ((["--sampler", "dpm++2m-sde", "--eta", "1"], "--eta is an option of ddim only, not of dpm++2m-sde"),
                       (["--eta", "1.5"], "--eta must be between 0 and 1, got 1.5")):
        with pytest.raises(SystemExit):
            main(["--checkpoint", str(ck), *args, "--out", str(tmp_path / "y.npz")])
        assert said in capsys.readouterr().err
    assert not (tmp_path / "y.npz").exists()


def test_grid_layout():
    x = torch.stack([torch.full((3, 2, 2), v) for v in (-1.0, 0.0, 1.0)])
    g = to_uint8_grid(x, nrow=3, pad=1)
    assert g.shape == (4, 10, 3)
    assert g[1, 1, 0] == 0 and g[1, 4, 0] == 128 and g[1, 7, 0] == 255 and g[0, 0, 0] == 255


@pytest.mark.slow  # 5-20 s, most of it inductor's first compile in the process
@pytest.mark.skipif(shutil.which("c++") is None and shutil.which("g++") is None,
                    reason="torch.compile on the CPU needs a C++ compiler")
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")  # torch's own
def test_compiled_sampling_matches_eager(tmp_path):
    """--compile is an optimisation only: the same samples as eager within float tolerance."""
    ck = _save(tmp_path, "pts", "mlp", {"width": 16, "blocks": 1, "fourier_features": 4}, (2,))
    eager, _ = draw(ck, sampler="ddpm", steps=6, n=8, seed=3, device="cpu")
    compiled, _ = draw(ck, sampler="ddpm", steps=6, n=8, seed=3, device="cpu", compile="reduce-overhead")
    torch.testing.assert_close(compiled, eager, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="compile mode must be one of default, reduce-overhead"):
        draw(ck, steps=2, n=2, device="cpu", compile="fastest")
