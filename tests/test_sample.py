import numpy as np
import pytest
import torch
from PIL import Image

from core import checkpoint
from core.config import DiffusionConfig, ModelConfig, RunConfig
from core.nets import build_model
from core.sample import main, to_uint8_grid

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


def _save(tmp_path, name, net, params, shape):
    cfg = RunConfig(model=ModelConfig(net, params), diffusion=DiffusionConfig("linear", 50))
    model = build_model(cfg.model, shape, seed=0)
    return checkpoint.save(tmp_path / name, model, cfg, {"sample_shape": list(shape), "dataset": name})


def test_image_model_writes_png_grid_and_npz(tmp_path, capsys):
    ck = _save(tmp_path, "img", "unet", {"base": 8, "channel_mult": [1], "blocks": 1, "groups": 4}, (1, 8, 8))
    rc = main(["--checkpoint", str(ck), "--sampler", "ddpm", "--steps", "5", "--n", "6", "--seed", "1",
               "--out", str(tmp_path / "out" / "grid.png")])
    assert rc == 0
    png = Image.open(tmp_path / "out" / "grid.png")
    assert png.size == (3 * 9 + 1, 2 * 9 + 1)  # 3 columns x 2 rows of 8 px with 1 px gaps
    z = np.load(tmp_path / "out" / "grid.npz")
    assert z["samples"].shape == (6, 1, 8, 8) and str(z["sampler"]) == "ddpm"
    assert np.abs(z["samples"]).max() <= 1.0  # images are clipped to [-1, 1]
    # same seed, same samples
    main(["--checkpoint", str(ck), "--sampler", "ddpm", "--steps", "5", "--n", "6", "--seed", "1",
          "--out", str(tmp_path / "again.npz")])
    assert np.array_equal(np.load(tmp_path / "again.npz")["samples"], z["samples"])


def test_points_model_writes_npz_only(tmp_path, capsys):
    ck = _save(tmp_path, "pts", "mlp", {"width": 16, "blocks": 1}, (2,))
    rc = main(["--checkpoint", str(ck), "--steps", "4", "--n", "10", "--out", str(tmp_path / "p.png")])
    assert rc == 0 and not (tmp_path / "p.png").exists()
    assert np.load(tmp_path / "p.npz")["samples"].shape == (10, 2)
    assert "not images" in capsys.readouterr().err


def test_errors_are_clear(tmp_path, capsys):
    ck = _save(tmp_path, "pts", "mlp", {"width": 16, "blocks": 1}, (2,))
    assert main(["--checkpoint", str(tmp_path / "missing"), "--out", str(tmp_path / "x.npz")]) == 2
    assert "missing" in capsys.readouterr().err
    assert main(["--checkpoint", str(ck), "--steps", "51", "--out", str(tmp_path / "x.npz")]) == 2
    assert "steps must be between 1 and T=50, got 51" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--checkpoint", str(ck), "--out", str(tmp_path / "x.jpg")])


def test_grid_layout():
    x = torch.stack([torch.full((3, 2, 2), v) for v in (-1.0, 0.0, 1.0)])
    g = to_uint8_grid(x, nrow=3, pad=1)
    assert g.shape == (4, 10, 3)
    assert g[1, 1, 0] == 0 and g[1, 4, 0] == 128 and g[1, 7, 0] == 255 and g[0, 0, 0] == 255
