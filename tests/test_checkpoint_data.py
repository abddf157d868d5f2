"""A checkpoint's own data in the app: Evaluate and the quiz say when it is gone or outside the app's
data folders; a drawn model's points are found by their hash (Reverse's grey reference)."""
from __future__ import annotations

import hashlib
import json
import shutil

import gradio as gr
import numpy as np
import pytest

from core.data import POINTS_GONE, UPLOAD_GONE, points_name
from explorer.context import ASSETS, AppContext, Settings
from explorer.tabs import reverse_session
from explorer.tabs.evaluate_handlers import EvaluateHandlers

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py

DIGITS = ASSETS / "checkpoints" / "digits"
GONE_SHA = "c" * 64


def with_data(runs, name: str, data: dict):
    """The shipped digits checkpoint copied into `runs/name`, its config naming `data` as what it learned from."""
    folder = runs / name
    shutil.copytree(DIGITS, folder)
    doc = json.loads((folder / "config.json").read_text())
    doc["config"]["data"] = data
    (folder / "config.json").write_text(json.dumps(doc))
    return str(folder)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="module")
def h(runs):
    return EvaluateHandlers(AppContext(Settings(runs_dir=runs)))


def evaluate_error(h, path) -> str:
    with pytest.raises(gr.Error) as e:
        for _ in h.evaluate(path, 100, "ddim", 5, 0):
            pass
    return e.value.message


def test_an_upload_trained_checkpoint_whose_images_are_gone_says_so(h, runs):
    for name, data in (("gone-copy", {"name": "image_folder", "params": {"path": str(runs / "data" / GONE_SHA),
                                                                         "sha256": GONE_SHA, "size": 8}}),
                       ("gone-temp", {"name": "image_folder", "params": {"path": "/tmp/explorer-upload-zz9",
                                                                         "size": 8}})):
        path = with_data(runs, name, data)
        with pytest.raises(gr.Error) as e:
            h.quiz_new(path, 2, 0)
        assert e.value.message == UPLOAD_GONE
        assert evaluate_error(h, path) == UPLOAD_GONE


def test_a_config_naming_a_folder_elsewhere_is_refused(h, runs, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    from PIL import Image
    for i in range(4):
        Image.new("L", (8, 8), 60 * i).save(photos / f"{i}.png")
    path = with_data(runs, "elsewhere", {"name": "image_folder", "params": {"path": str(photos), "size": 8,
                                                                            "channels": 1}})
    expected = (f"this checkpoint's config names data at '{photos}', outside the app's data folders; a checkpoint "
                "may only name data in data/ or points/ of the runs folder or in the shipped assets, so it was not read")
    with pytest.raises(gr.Error) as e:
        h.quiz_new(path, 2, 0)
    assert e.value.message == expected
    assert evaluate_error(h, path) == expected


def test_reverse_finds_drawn_points_by_their_hash_and_only_in_the_data_folders(runs, tmp_path):
    text = "x,y\n" + "".join(f"{i},{(i * 7) % 11}\n" for i in range(80))
    sha = hashlib.sha256(text.encode()).hexdigest()
    params = {"path": "/another/machine/runs/points/" + points_name(sha), "sha256": sha}
    ref = reverse_session.reference_points("points_file", json.dumps(params))
    assert ref is None  # not on this machine (yet)
    (runs / "points").mkdir(exist_ok=True)
    (runs / "points" / points_name(sha)).write_text(text)
    reverse_session.reference_points.cache_clear()
    ref = reverse_session.reference_points("points_file", json.dumps(params))
    assert ref is not None and ref.shape == (80, 2) and np.isfinite(ref).all()
    outside = tmp_path / "mine.csv"
    outside.write_text(text)
    assert reverse_session.reference_points("points_file", json.dumps({"path": str(outside)})) is None
    with pytest.raises(ValueError) as e:
        from core.data import checkpoint_data
        from core.config import DataConfig
        checkpoint_data(DataConfig("points_file", {"path": "/nowhere/p.csv", "sha256": "d" * 64}))
    assert str(e.value) == POINTS_GONE
