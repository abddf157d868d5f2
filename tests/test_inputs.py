"""explorer.inputs: what the views start from."""
import pytest
import torch

from explorer.inputs import DISPLAY_SIZE, builtin_datasets, dataset_size, display_dataset, from_dataset, from_image_file


def test_builtin_datasets_need_no_files():
    names = builtin_datasets()
    assert {"swiss_roll", "digits", "shapes", "signals"} <= set(names)
    assert "mnist" not in names and "image_folder" not in names


def test_display_copies_are_small_and_cached():
    assert dataset_size("swiss_roll") == DISPLAY_SIZE["points"]
    assert display_dataset("signals") is display_dataset("signals")
    with pytest.raises(ValueError, match="unknown built-in dataset 'mnist'"):
        display_dataset("mnist")


def test_points_use_the_whole_cloud_others_one_sample():
    pts = from_dataset("moons", 5)
    assert pts.kind == "points" and pts.shape == (DISPLAY_SIZE["points"], 2) and pts.label == "moons"
    digit = from_dataset("digits", 7)
    assert digit.kind == "image" and digit.shape == (1, 1, 8, 8)
    data = display_dataset("digits")
    assert digit.label == f"digits #7 · {data.class_names[int(data.labels[7])]}"
    assert torch.equal(digit.x0[0], display_dataset("digits").x[7])
    sig = from_dataset("signals", 0)
    assert sig.kind == "signal" and sig.shape == (1, 1, 64)
    with pytest.raises(ValueError, match="index must be between 0 and 1796"):
        from_dataset("digits", 1797)


def test_image_files_become_image_inputs(tmp_path):
    from PIL import Image

    Image.new("RGB", (40, 20), "white").save(tmp_path / "w.png")
    inp = from_image_file(tmp_path / "w.png")
    assert inp.kind == "image" and inp.shape == (1, 3, 20, 40) and inp.label == "w"
    assert inp.x0.eq(1).all()
