import hashlib
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core import datafiles
from core.config import DataConfig
from core.data import (ASSET_DIR, DATASETS, POINTS_GONE, RUNS_ENV, UPLOAD_GONE, Dataset, checkpoint_data, data_root,
                       dataset_info, list_datasets, load_dataset, points_name, set_data_root)
from core.datafiles import DataFileError, DataGoneError, DataPathError
from datafile_writers import tiny_cifar10, tiny_mnist

TOYS = ["swiss_roll", "moons", "gaussians8", "checkerboard", "rings", "spiral"]
GENERATED = TOYS + ["digits", "shapes", "signals"]
IMAGE_FILES = ["mnist", "fashion_mnist", "cifar10", "image_folder"]
FILES = IMAGE_FILES + ["points_file"]
SMALL = {"shapes": {"n": 60}, "signals": {"n": 300}}  # keep the tests quick


# --- registry -----------------------------------------------------------------------------------

def test_registry_lists_every_dataset_by_kind():
    assert list_datasets() == list(DATASETS) and set(DATASETS) == set(GENERATED + FILES)
    assert list_datasets("points") == TOYS + ["points_file"]
    assert list_datasets("signal") == ["signals"]
    assert set(list_datasets("image")) == {"digits", "shapes"} | set(IMAGE_FILES)
    with pytest.raises(ValueError, match="kind must be one of"):
        list_datasets("audio")


def test_unknown_name_and_parameter_errors_list_what_is_allowed():
    with pytest.raises(ValueError, match=r"unknown dataset 'imagenet'; known: swiss_roll, moons, .*image_folder"):
        load_dataset("imagenet")
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) depth for dataset 'moons'; allowed: n, seed, noise"):
        load_dataset("moons", depth=3)
    with pytest.raises(ValueError, match="unknown dataset"):
        dataset_info("imagenet")


@pytest.mark.parametrize("bad", [{"n": 0}, {"n": 2.5}, {"n": True}, {"seed": -1}, {"noise": -0.1}, {"noise": 2},
                                 {"noise": "lots"}, {"noise": float("nan")}])
def test_toy_parameters_are_checked(bad):
    with pytest.raises(ValueError, match="must be"):
        load_dataset("moons", **bad)


@pytest.mark.parametrize("name", GENERATED)
def test_info_matches_the_data_without_making_it(name):
    params = SMALL.get(name, {})
    info, data = dataset_info(name, **params), load_dataset(name, **params)
    assert (info.kind, info.shape, info.size) == (data.kind, data.shape, len(data))
    assert info.name == data.name == name
    assert info.description and "\n" not in info.description
    assert set(params.items()) <= set(info.params.items())


def test_info_for_file_datasets_needs_no_files():
    assert dataset_info("mnist", split="test").size == 10000
    assert dataset_info("cifar10").shape == (3, 32, 32) and dataset_info("cifar10").size == 50000
    folder = dataset_info("image_folder", size=16, channels=1)
    assert folder.size is None and folder.shape == (1, 16, 16) and folder.params["path"] is None


def test_dataset_record_checks_itself():
    d = Dataset("p", "points", torch.zeros(5, 2), torch.zeros(5, dtype=torch.long), ["a"])
    assert d.shape == (2,) and len(d) == 5
    with pytest.raises(ValueError, match="kind must be one of"):
        Dataset("p", "video", torch.zeros(5, 2))
    with pytest.raises(ValueError, match="float32 of rank 4"):
        Dataset("p", "image", torch.zeros(5, 8, 8))
    with pytest.raises(ValueError, match="float32"):
        Dataset("p", "points", torch.zeros(5, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"labels must be int64 of shape \(5,\)"):
        Dataset("p", "points", torch.zeros(5, 2), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"labels must lie in 0..0"):
        Dataset("p", "points", torch.zeros(5, 2), torch.ones(5, dtype=torch.long), ["a"])


# --- 2-D toys -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", TOYS)
def test_toy_shape_determinism_and_normalisation(name):
    d = load_dataset(name)
    assert d.kind == "points" and d.x.shape == (10000, 2) and d.x.dtype == torch.float32
    assert torch.equal(d.x, load_dataset(name, seed=0).x)
    assert not torch.equal(d.x, load_dataset(name, seed=1).x)
    assert d.x.mean(0).abs().max() < 0.05
    assert 0.9 < d.x.var(0).mean() < 1.1  # unit scale on average over the two axes
    assert (0.5 < d.x.std(0)).all() and (d.x.std(0) < 1.5).all()
    if d.labels is not None:
        assert d.labels.shape == (10000,) and 0 <= d.labels.min() and d.labels.max() < len(d.class_names)


def test_normalisation_is_fixed_not_fitted_per_call():
    # a per-call standardisation would scale 5 points differently from 5000
    few, many = load_dataset("gaussians8", n=5, seed=3, noise=0), load_dataset("gaussians8", n=5000, noise=0)
    r_few, r_many = few.x.norm(dim=1), many.x.norm(dim=1)
    assert torch.allclose(r_few, torch.full_like(r_few, r_many[0].item()), atol=1e-6)
    assert abs(r_many[0].item() - math.sqrt(2)) < 0.01  # unit variance per axis for points on a circle


def test_gaussians8_modes_sit_at_eighth_turns():
    d = load_dataset("gaussians8", n=400, noise=0)
    angle = d.labels * (math.pi / 4)
    direction = torch.stack([torch.cos(angle), torch.sin(angle)], 1)
    assert torch.allclose(d.x / d.x.norm(dim=1, keepdim=True), direction, atol=1e-6)
    assert set(d.labels.tolist()) == set(range(8))


def test_rings_without_noise_have_three_radii_one_two_three():
    d = load_dataset("rings", n=3000, noise=0)
    r = d.x.norm(dim=1)
    radii = torch.stack([r[d.labels == k].mean() for k in range(3)])
    assert torch.allclose(radii / radii[0], torch.tensor([1.0, 2.0, 3.0]), atol=1e-4)
    assert max((r[d.labels == k] - radii[k]).abs().max() for k in range(3)) < 1e-5
    counts = torch.bincount(d.labels).float() / 3000  # points per ring in proportion to its length
    assert torch.allclose(counts, torch.tensor([1, 2, 3]) / 6, atol=0.03)


def test_checkerboard_fills_alternate_squares():
    x = load_dataset("checkerboard", n=8000).x.double()
    lo, hi = x.min(0).values, x.max(0).values
    board = (x - lo) / (hi - lo) * 4  # the extremes lie within a hair of the board's edges
    inner = ((board.frac() > 0.01) & (board.frac() < 0.99)).all(1)
    cell = board[inner].floor().long().clamp(max=3)
    counts = torch.zeros(4, 4)
    counts.index_put_((cell[:, 0], cell[:, 1]), torch.ones(len(cell)), accumulate=True)
    filled = torch.tensor([[(i + j) % 2 == 0 for j in range(4)] for i in range(4)])
    assert (counts[~filled] == 0).all() and (counts[filled] > 700).all()


def test_noise_parameter_spreads_points():
    clean, noisy = load_dataset("moons", noise=0.0), load_dataset("moons", noise=0.2)
    assert torch.allclose(noisy.x.mean(0), clean.x.mean(0), atol=0.02)
    assert noisy.x.var(0).sum() > clean.x.var(0).sum() + 0.05
    assert torch.equal(clean.labels, noisy.labels) and abs(clean.labels.float().mean() - 0.5) < 0.02


# --- digits, shapes, signals --------------------------------------------------------------------

def test_digits_are_the_uci_set_in_unit_range():
    d = load_dataset("digits")
    assert d.x.shape == (1797, 1, 8, 8) and d.kind == "image"
    assert d.x.min() == -1 and d.x.max() == 1
    assert torch.equal(d.x * 8 + 8, (d.x * 8 + 8).round())  # 17 grey levels, 0..16
    assert d.labels.min() == 0 and d.labels.max() == 9 and d.class_names == [str(k) for k in range(10)]
    assert (torch.bincount(d.labels) >= 174).all()  # about 180 of each digit


def test_digits_upsampled_keep_range_and_mean():
    small, big = load_dataset("digits"), load_dataset("digits", size=16)
    assert big.x.shape == (1797, 1, 16, 16)
    assert -1 <= big.x.min() and big.x.max() <= 1
    assert torch.allclose(big.x.mean((1, 2, 3)), small.x.mean((1, 2, 3)), atol=0.05)
    with pytest.raises(ValueError, match="size must be an integer between 8 and 64"):
        load_dataset("digits", size=4)


def test_shapes_deterministic_balanced_and_in_range():
    d = load_dataset("shapes", n=300, seed=5)
    assert d.x.shape == (300, 3, 32, 32) and d.class_names == ["circle", "square", "triangle"]
    assert torch.equal(d.x, load_dataset("shapes", n=300, seed=5).x)
    assert not torch.equal(d.x, load_dataset("shapes", n=300, seed=6).x)
    assert torch.bincount(d.labels).tolist() == [100, 100, 100]
    assert -1 <= d.x.min() and d.x.max() <= 1
    assert load_dataset("shapes", n=7, size=16).x.shape == (7, 3, 16, 16)


def test_shapes_sit_inside_a_plain_grey_ground_with_equal_areas():
    d = load_dataset("shapes", n=600)
    corners = d.x[:, :, [0, 0, -1, -1], [0, -1, 0, -1]]  # (N, 3, 4): never covered by a shape
    assert (corners == corners[:, :, :1]).all() and (corners == corners[:, :1]).all()  # one grey
    assert (corners <= -0.5).all()
    shape_px = ((d.x - corners[:, :, :1, None]).abs().amax(1) > 0.05).float().mean((1, 2))
    areas = torch.stack([shape_px[d.labels == k].mean() for k in range(3)])
    assert (areas > 0.05).all() and areas.max() / areas.min() < 1.15


def test_signals_shape_range_and_tones():
    d = load_dataset("signals", n=500, length=48, seed=2)
    assert d.kind == "signal" and d.x.shape == (500, 1, 48)
    assert d.x.abs().max() <= 1 and d.x.abs().amax(2).mean() > 0.5
    assert torch.equal(d.x, load_dataset("signals", n=500, length=48, seed=2).x)
    assert d.class_names == ["1 tone", "2 tones", "3 tones"] and set(d.labels.tolist()) == {0, 1, 2}


def test_one_tone_signals_are_pure_sinusoids():
    # a pure sinusoid obeys x[t+1] + x[t-1] = 2 cos(w) x[t]; a sum of two tones does not
    d = load_dataset("signals", n=200)
    x = d.x[:, 0].double()
    mid, around = x[:, 1:-1], x[:, 2:] + x[:, :-2]
    ratio = (mid * around).sum(1) / (mid * mid).sum(1)  # least-squares 2 cos(w)
    residual = (around - ratio[:, None] * mid).abs().amax(1)
    assert residual[d.labels == 0].max() < 1e-5
    assert residual[d.labels == 1].median() > 1e-3


# --- files on disk through the registry ---------------------------------------------------------

@pytest.mark.parametrize("name", FILES)
def test_file_datasets_need_a_path(name):
    with pytest.raises(ValueError, match=f"dataset '{name}' needs path="):
        load_dataset(name)


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_idx_datasets_from_gzipped_files(tmp_path, name):
    written = tiny_mnist(tmp_path, gz=True)
    d = load_dataset(name, path=str(tmp_path), split="test")
    images, labels = written["test"]
    assert d.x.shape == (5, 1, 28, 28) and d.name == name and len(d.class_names) == 10
    assert torch.allclose(d.x[:, 0], torch.from_numpy(images).float() / 127.5 - 1, atol=1e-6)
    assert d.labels.tolist() == labels.tolist()
    with pytest.raises(ValueError, match="split must be one of"):
        load_dataset(name, path=tmp_path, split="val")


def test_cifar10_dataset(tmp_path):
    written = tiny_cifar10(tmp_path / "cifar-10-batches-py", per_batch=2)
    d = load_dataset("cifar10", path=tmp_path)
    assert d.x.shape == (10, 3, 32, 32) and d.class_names[0] == "airplane"
    assert d.x.min() >= -1 and d.x.max() <= 1
    assert torch.equal(((d.x + 1) * 127.5).round().byte(), torch.from_numpy(written["train"][0]))


def test_image_folder_dataset_reports_skipped_files(tmp_path):
    Image.new("RGB", (40, 30), (255, 0, 0)).save(tmp_path / "red.png")
    Image.new("L", (30, 30), 0).save(tmp_path / "black.jpg")
    (tmp_path / "broken.jpeg").write_bytes(b"oops")
    with pytest.warns(UserWarning, match=r"skipped 1 unreadable file.*broken\.jpeg"):
        d = load_dataset("image_folder", path=tmp_path, size=16)
    assert d.x.shape == (2, 3, 16, 16) and d.labels is None
    assert np.allclose(d.x[1, :, 0, 0], [1, -1, -1])  # sorted: black.jpg, red.png
    with pytest.raises(ValueError, match="channels must be 1"):
        load_dataset("image_folder", path=tmp_path, channels=4)


def test_x0_clip_is_one_for_images_and_just_beyond_the_data_otherwise():
    assert load_dataset("digits").x0_clip() == 1.0
    roll = load_dataset("swiss_roll", n=500)
    assert roll.x0_clip() == pytest.approx(1.1 * float(roll.x.abs().max()), rel=1e-3)


# --- your own 2-D points (a drawing or a CSV) ---------------------------------------------------

def test_points_file_is_centred_scaled_and_shuffled_the_same_way_each_time(tmp_path):
    from core.config import DataConfig, RunConfig

    path = tmp_path / "p.csv"
    rows = [(2 * i, 10 + (i % 5)) for i in range(60)]  # in file order: x grows
    path.write_text("x,y\n" + "".join(f"{x},{y}\n" for x, y in rows))
    raw = torch.tensor(rows, dtype=torch.float64)
    centred = raw - raw.mean(0)
    expected = (centred / centred.var(0, correction=0).mean().sqrt()).float()
    # the run's config alone names the data: through JSON and back, as a checkpoint keeps it
    config = RunConfig(data=DataConfig("points_file", {"path": str(path)}))
    again = RunConfig.from_json(config.to_json())
    d = load_dataset(again.data.name, **again.data.params)
    assert d.kind == "points" and d.shape == (2,) and len(d) == 60 and d.labels is None
    perm = torch.randperm(60, generator=torch.Generator().manual_seed(0))
    assert torch.equal(d.x, expected[perm])  # a fixed shuffle, so views that show the first rows see all of it
    assert not torch.equal(perm, torch.arange(60))
    assert torch.equal(load_dataset("points_file", path=str(path)).x, d.x)
    assert d.x.mean(0).abs().max() < 1e-6 and abs(float(d.x.var(0, correction=0).mean()) - 1) < 1e-5
    assert dataset_info("points_file", path=str(path)).kind == "points"


def test_points_file_checks_the_recorded_sha256(tmp_path):
    import hashlib

    path = tmp_path / "p.csv"
    path.write_text("".join(f"{i},{i * i % 7}\n" for i in range(50)))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert len(load_dataset("points_file", path=str(path), sha256=digest)) == 50
    path.write_text("".join(f"{i},{i * i % 5}\n" for i in range(50)))
    with pytest.raises(ValueError, match="holds other points than the ones recorded"):
        load_dataset("points_file", path=str(path), sha256=digest)
    with pytest.raises(DataGoneError, match="^this checkpoint was trained on 2-D points that are not on this "
                                            "machine; Evaluate and the grey reference need them"):
        load_dataset("points_file", path=str(tmp_path / "gone.csv"), sha256=digest)
    with pytest.raises(ValueError, match="file not found"):
        load_dataset("points_file", path=str(tmp_path / "gone.csv"))


def test_points_that_all_coincide_are_refused(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("1,2\n" * 60)
    with pytest.raises(ValueError, match="all lie at one place"):
        load_dataset("points_file", path=str(path))


# --- a checkpoint's own data: found by its hash, confined to the app's data folders ---------------

def _runs_with_points(tmp_path):
    runs = tmp_path / "runs"
    text = "x,y\n" + "".join(f"{i},{i * i % 7}\n" for i in range(60))
    digest = hashlib.sha256(text.encode()).hexdigest()
    (runs / "points").mkdir(parents=True)
    (runs / "points" / points_name(digest)).write_text(text)
    return runs, digest


def test_points_are_found_by_their_hash_in_the_runs_folder(tmp_path, monkeypatch):
    runs, digest = _runs_with_points(tmp_path)
    here = runs / "points" / f"points-{digest[:16]}.csv"
    monkeypatch.setenv(RUNS_ENV, str(runs))
    assert data_root() == runs.resolve()
    expected = load_dataset("points_file", path=str(here)).x
    # the path of another machine, or relative to the runs folder: the hash finds the file here
    for path in ("/elsewhere/runs/points/points-0.csv", f"points/{here.name}"):
        assert torch.equal(load_dataset("points_file", path=path, sha256=digest).x, expected)
        got = checkpoint_data(DataConfig("points_file", {"path": path, "sha256": digest}), runs)
        assert got.params == {"path": str(here.resolve()), "sha256": digest}


def test_a_checkpoint_may_only_name_data_in_the_apps_folders(tmp_path):
    runs, digest = _runs_with_points(tmp_path)
    inside = runs / "points" / points_name(digest)
    old = DataConfig("points_file", {"path": str(inside), "sha256": digest})  # as configs before the hash lookup
    assert checkpoint_data(old, runs) == DataConfig("points_file", {"path": str(inside.resolve()), "sha256": digest})
    assert checkpoint_data(DataConfig("digits", {}), runs) == DataConfig("digits", {})
    photos = tmp_path / "photos"
    photos.mkdir()
    outside = "this checkpoint's config names data at '{}', outside the app's data folders; a checkpoint may only "
    for bad in (str(photos), "/etc", str(runs / "points" / ".." / ".." / "photos")):
        with pytest.raises(DataPathError) as e:
            checkpoint_data(DataConfig("image_folder", {"path": bad}), runs)
        assert str(e.value).startswith(outside.format(bad))
    with pytest.raises(DataPathError, match="climbs out of its folder with '..'"):
        checkpoint_data(DataConfig("image_folder", {"path": "data/../../photos"}), runs)
    with pytest.raises(DataPathError, match="the data path 'photos' is not allowed"):
        checkpoint_data(DataConfig("image_folder", {"path": "photos"}), runs)
    with pytest.raises(DataFileError, match="sha256 must be 64 hexadecimal digits, got 'abc'"):
        checkpoint_data(DataConfig("points_file", {"path": str(inside), "sha256": "abc"}), runs)
    # a symbolic link inside the data folder that leads out of it is outside too
    (runs / "data").mkdir()
    (runs / "data" / "link").symlink_to(photos)
    with pytest.raises(DataPathError):
        checkpoint_data(DataConfig("image_folder", {"path": str(runs / "data" / "link")}), runs)
    # the shipped assets are allowed
    asset = DataConfig("points_file", {"path": str(ASSET_DIR / "digits.npz")})
    assert checkpoint_data(asset, runs).params["path"] == str((ASSET_DIR / "digits.npz").resolve())


def test_data_that_is_gone_says_so(tmp_path):
    runs = tmp_path / "runs"
    upload = DataConfig("image_folder", {"path": "/tmp/explorer-upload-x1y2", "size": 32, "channels": 3})
    for data in (upload, DataConfig("image_folder", {"path": "data/" + "a" * 64, "sha256": "a" * 64})):
        with pytest.raises(DataGoneError) as e:
            checkpoint_data(data, runs)
        assert str(e.value) == UPLOAD_GONE
    assert UPLOAD_GONE.startswith("this checkpoint was trained on uploaded images that are no longer on this "
                                  "machine; Evaluate and the quiz need them")
    with pytest.raises(DataGoneError) as e:
        checkpoint_data(DataConfig("points_file", {"path": "/x/points-1.csv", "sha256": "b" * 64}), runs)
    assert str(e.value) == POINTS_GONE


def test_an_image_folder_with_a_hash_is_found_by_it_and_checked(tmp_path, monkeypatch):
    from PIL import Image

    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):
        Image.new("RGB", (12, 12), (40 * i, 0, 0)).save(src / f"{i}.png")
    digest = datafiles.folder_sha256(src)
    runs = tmp_path / "runs"
    (runs / "data").mkdir(parents=True)
    kept = runs / "data" / digest
    src.rename(kept)
    monkeypatch.setenv(RUNS_ENV, str(runs))
    d = load_dataset("image_folder", path=f"data/{digest}", sha256=digest, size=8)
    assert d.x.shape == (3, 3, 8, 8)
    assert torch.equal(load_dataset("image_folder", path="/gone/elsewhere", sha256=digest, size=8).x, d.x)
    Image.new("RGB", (12, 12), (0, 0, 99)).save(kept / "1.png")
    with pytest.raises(DataFileError, match="holds other images than the ones recorded"):
        load_dataset("image_folder", path=str(kept), sha256=digest, size=8)


def test_set_data_root_reaches_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv(RUNS_ENV, raising=False)
    assert data_root() == (Path.cwd() / "runs").resolve()
    assert set_data_root(tmp_path / "r") == (tmp_path / "r").resolve()
    assert os.environ[RUNS_ENV] == str((tmp_path / "r").resolve()) and data_root() == (tmp_path / "r").resolve()
