"""Feature extractors: the shipped classifiers keep their recorded accuracy; InceptionV3 falls back clearly."""
import json
import sys

import pytest
import torch

from core import extractors
from core.extractors import (EXTRACTOR_DIR, INCEPTION_FILE, ConvClassifier, ExtractorUnavailable, accuracy,
                             builtin_extractor, choose_extractor, extractor_split, fit_input, inception_extractor,
                             load_classifier, save_classifier, train_classifier)

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


@pytest.mark.parametrize("dataset, floor", [("digits", 0.95), ("shapes", 0.98)])
def test_shipped_extractor_has_its_recorded_held_out_accuracy(dataset, floor):
    model, meta = load_classifier(dataset)
    _, _, x_te, y_te = extractor_split(dataset)
    assert len(x_te) == meta["n_held_out"]
    acc = accuracy(model, x_te, y_te)
    assert acc == pytest.approx(meta["held_out_accuracy"], abs=1.01 / len(x_te))  # one image either way
    assert acc > floor
    assert meta["command"].startswith(f"python -m core.extractors --dataset {dataset}")
    weights = EXTRACTOR_DIR / f"{dataset}.safetensors"
    assert weights.stat().st_size < 1_000_000


def test_digits_split_is_disjoint_and_seeded():
    x_tr, _, x_te, _ = extractor_split("digits")
    assert len(x_tr) + len(x_te) == 1797
    again = extractor_split("digits")[2]
    assert torch.equal(x_te, again)


def test_builtin_extractor_gives_features_and_logits():
    ext = builtin_extractor("digits")
    images = torch.rand(5, 1, 8, 8) * 2 - 1
    f, logits = ext(images)
    assert f.shape == (5, ext.dim) and logits.shape == (5, 10)
    assert f.dtype == torch.float64 and (f >= 0).all()  # penultimate ReLU activations
    # an upsampled digit (size=16 datasets) is brought back to the network's 8x8
    f16, _ = ext(torch.nn.functional.interpolate(images, size=16, mode="nearest"))
    assert f16.shape == (5, ext.dim)


def test_fit_input_channels_and_size():
    grey = torch.zeros(2, 1, 16, 16)
    assert fit_input(grey, 3, 8).shape == (2, 3, 8, 8)
    assert fit_input(torch.zeros(2, 3, 8, 8), 1, 8).shape == (2, 1, 8, 8)
    assert fit_input(torch.full((1, 1, 4, 4), 5.0), 1, 4).max() == 1.0  # clamped to the data range
    with pytest.raises(ValueError, match="2-channel"):
        fit_input(torch.zeros(1, 2, 8, 8), 3, 8)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        fit_input(torch.zeros(8, 8), 1, 8)


@pytest.fixture
def empty_hub(tmp_path, monkeypatch):
    """torch.hub pointed at an empty folder (so no InceptionV3 weights) and torch-fidelity importable."""
    old = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    monkeypatch.setattr(extractors, "has_torch_fidelity", lambda: True)
    yield tmp_path / "hub" / "checkpoints" / INCEPTION_FILE
    torch.hub.set_dir(old)


def test_missing_inception_weights_say_which_file_goes_where(empty_hub):
    with pytest.raises(ExtractorUnavailable) as err:
        inception_extractor()
    assert INCEPTION_FILE in str(err.value) and str(empty_hub) in str(err.value)
    ext, notes = choose_extractor("digits", "auto")
    assert ext.name == "digits-cnn"
    assert any(str(empty_hub) in n for n in notes) and any("instead of InceptionV3" in n for n in notes)
    none, why = choose_extractor("digits", "inception")
    assert none is None and INCEPTION_FILE in why[0]


def test_missing_torch_fidelity_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch_fidelity", None)  # makes the package unimportable
    assert not extractors.has_torch_fidelity()
    with pytest.raises(ExtractorUnavailable, match="pip install torch-fidelity"):
        inception_extractor()


def test_no_builtin_extractor_for_other_datasets(empty_hub):
    ext, notes = choose_extractor("cifar10", "auto")
    assert ext is None and any("no built-in feature extractor for dataset 'cifar10'" in n for n in notes)
    assert "digits" in notes[-1] and "shapes" in notes[-1]  # it lists what is shipped
    with pytest.raises(ValueError, match="extractor must be one of"):
        choose_extractor("digits", "vgg")


def test_training_code_runs_and_round_trips(tmp_path, monkeypatch):
    monkeypatch.setitem(extractors.RECIPES, "digits", {**extractors.RECIPES["digits"], "widths": (8, 8),
                                                       "feature_dim": 16})
    model, record = train_classifier("digits", epochs=2, log=lambda s: None)
    assert record["held_out_accuracy"] > 0.15  # two epochs of a tiny net already beat chance (0.1)
    assert "--epochs 2" in record["command"]
    save_classifier(model, record, tmp_path)
    loaded, meta = load_classifier("digits", tmp_path)
    assert json.loads((tmp_path / "digits.json").read_text())["arch"]["widths"] == [8, 8]
    x = extractor_split("digits")[2][:20]
    assert torch.equal(loaded(x), model(x))
    assert isinstance(loaded, ConvClassifier) and meta["held_out_accuracy"] == record["held_out_accuracy"]
