"""Your own 2-D data: a canvas drawing or a CSV turned into points, stored, and trained on."""
from __future__ import annotations

import numpy as np
import pytest

from core.config import DataConfig, DiffusionConfig, RunConfig, TrainConfig
from core.data import load_dataset
from core.nets import PRESETS
from core.training import Trainer
from explorer import drawing

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def band_canvas(rows: int = 5, size: int = 10) -> np.ndarray:
    """A white grey canvas size x size with its top `rows` rows inked black."""
    image = np.full((size, size), 255, np.uint8)
    image[:rows] = 0
    return image


def test_a_drawing_becomes_normalised_points_exactly():
    pts = drawing.drawing_points(band_canvas())  # 50 ink pixels: rows 0..4, columns 0..9
    # centres (c + 0.5, 10 - r - 0.5): x - mean = c - 4.5 (variance 8.25), y - mean = 2 - r (variance 2)
    scale = np.sqrt((8.25 + 2.0) / 2)
    expected = np.array([[(c - 4.5) / scale, (2 - r) / scale] for r in range(5) for c in range(10)], np.float32)
    assert pts.dtype == np.float32 and pts.shape == (50, 2)
    np.testing.assert_allclose(pts, expected, rtol=0, atol=1e-6)


def test_ink_is_dark_and_opaque_in_every_picture_format():
    grey = band_canvas()
    rgb = np.repeat(grey[..., None], 3, axis=2)
    rgba = np.concatenate([rgb, np.full(grey.shape + (1,), 255, np.uint8)], axis=2)
    for picture in (grey, rgb, rgba, grey[..., None], {"composite": grey, "background": None, "layers": []}):
        assert np.array_equal(drawing.ink_mask(drawing.composite_of(picture)), grey < 128)
    see_through = rgba.copy()
    see_through[..., 3] = 0  # transparent pixels are the paper, whatever colour they store
    assert not drawing.ink_mask(see_through).any()
    mid = np.full((2, 2), 127, np.uint8)
    mid[0, 0] = 128
    assert drawing.ink_mask(mid).tolist() == [[False, True], [True, True]]


def test_many_ink_pixels_are_thinned_to_a_seeded_choice():
    canvas = band_canvas(rows=30, size=40)  # 1200 ink pixels
    full = drawing.drawing_points(canvas)
    few = drawing.drawing_points(canvas, max_points=300)
    assert len(full) == 1200 and len(few) == 300
    assert np.array_equal(few, drawing.drawing_points(canvas, max_points=300))  # the same every time
    assert not np.array_equal(few, drawing.drawing_points(canvas, max_points=300, seed=1))


@pytest.mark.parametrize("picture, message", [
    (None, "the canvas is empty: draw a shape"),
    ({"composite": None, "background": None, "layers": []}, "the canvas is empty"),
    (np.full((40, 40), 255, np.uint8), "the canvas is empty"),
    (band_canvas(rows=1), "the drawing has 10 pixels of ink; at least 50 are needed"),
    (np.zeros((2049, 2048), np.uint8), "over the limit of 4,194,304 pixels"),
    (np.zeros((4, 4, 2), np.uint8), "a grey, RGB or RGBA picture"),
])
def test_bad_drawings_say_what_is_wrong(picture, message):
    with pytest.raises(ValueError, match=message):
        drawing.drawing_points(picture)


def test_csv_points_are_normalised_and_bad_text_is_named():
    text = "x,y\n" + "".join(f"{i},{2 * i}\n" for i in range(50))
    pts = drawing.csv_points(text)
    raw = np.array([[i, 2 * i] for i in range(50)], np.float64)
    centred = raw - raw.mean(0)
    np.testing.assert_allclose(pts, centred / np.sqrt(centred.var(0).mean()), rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="the pasted points: nothing to read"):
        drawing.csv_points("   \n")
    with pytest.raises(ValueError, match="line 3: 'oops' is not a number"):
        drawing.csv_points(text.replace("1,2\n", "1,oops\n"))


def test_stored_points_are_named_by_content_and_kept_for_the_run(tmp_path):
    pts = drawing.drawing_points(band_canvas())
    a = drawing.store_points(pts, tmp_path / "pending")
    assert a == drawing.store_points(pts.copy(), tmp_path / "pending")  # the same points, one file
    assert a != drawing.store_points(pts[::-1].copy(), tmp_path / "pending")
    kept = drawing.keep_for_run(a, tmp_path / "runs")
    assert kept == (tmp_path / "runs" / "points" / a.name).resolve() and kept.read_bytes() == a.read_bytes()
    assert drawing.keep_for_run(a, tmp_path / "runs") == kept
    assert drawing.keep_for_run(kept, tmp_path / "runs") == kept
    # the stored file loads as the dataset, holding exactly the drawn points (in a fixed shuffle)
    d = load_dataset("points_file", path=str(kept), sha256=drawing.file_sha256(kept))
    order = np.lexsort(pts.T[::-1])
    got = d.x.numpy()
    np.testing.assert_allclose(got[np.lexsort(got.T[::-1])], pts[order], rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="no points yet: draw a shape"):
        drawing.keep_for_run(None, tmp_path / "runs")
    with pytest.raises(ValueError, match="the drawn points are gone"):
        drawing.keep_for_run(tmp_path / "nothing.csv", tmp_path / "runs")


def smiley_canvas(size: int = 64) -> np.ndarray:
    """A ring (the face) and two dots (the eyes), drawn with thick strokes."""
    yy, xx = np.mgrid[:size, :size] + 0.5
    r = np.hypot(xx - size / 2, yy - size / 2)
    ink = (abs(r - 0.4 * size) < 2.5) | (np.hypot(xx - 0.37 * size, yy - 0.4 * size) < 3) \
        | (np.hypot(xx - 0.63 * size, yy - 0.4 * size) < 3)
    return np.where(ink, 0, 255).astype(np.uint8)


def test_training_on_a_drawing_lowers_the_loss(tmp_path):
    path = drawing.store_points(drawing.drawing_points(smiley_canvas()), tmp_path)
    data = load_dataset("points_file", path=str(path))
    config = RunConfig(model=PRESETS["mlp-2d"], diffusion=DiffusionConfig("linear", 100),
                       data=DataConfig("points_file", {"path": str(path)}),
                       train=TrainConfig(steps=200, batch_size=128, lr=3e-3, warmup_steps=20, preview_every=0,
                                         ema_decay=0.99))
    trainer = Trainer(config, data, "cpu")
    losses = [trainer.step().loss for _ in range(200)]
    first, last = np.mean(losses[:20]), np.mean(losses[-20:])
    assert last < 0.6 * first, (first, last)
