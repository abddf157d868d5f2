"""Uploaded training images: zips and loose files are checked and unpacked safely."""
from __future__ import annotations

import io
import stat
import zipfile

import numpy as np
import pytest
from PIL import Image

from core.data import load_dataset
from explorer import uploads
from explorer.uploads import MIN_IMAGES, check_image, prepare_images


def png_bytes(size=(12, 10), colour=(200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()


def write_images(folder, n, suffix=".png"):
    paths = []
    for i in range(n):
        p = folder / f"img{i}{suffix}"
        Image.new("RGB", (10, 10), (i * 20 % 255, 0, 0)).save(p)
        paths.append(p)
    return paths


def make_zip(path, members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED):
    with zipfile.ZipFile(path, "w", compression) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def test_loose_images_become_an_image_folder_dataset(tmp_path):
    up = prepare_images(write_images(tmp_path, MIN_IMAGES))
    assert up.count == MIN_IMAGES and up.skipped == ()
    data = load_dataset("image_folder", path=str(up.folder), size=16, channels=3)
    assert data.x.shape == (MIN_IMAGES, 3, 16, 16)


def test_a_zip_keeps_images_and_names_what_it_left_out(tmp_path):
    members = {f"photos/sub/{i}.png": png_bytes(colour=(i, i, i)) for i in range(MIN_IMAGES)}
    members["notes.txt"] = b"hello"
    members["fake.png"] = b"not a png at all"
    up = prepare_images([make_zip(tmp_path / "set.zip", members)])
    assert up.count == MIN_IMAGES
    assert sorted(s.split(":")[0] for s in up.skipped) == ["fake.png", "notes.txt"]
    assert all(p.parent == up.folder for p in up.folder.iterdir())  # flat: the zip's paths are not used


def test_zip_slip_paths_never_leave_the_folder(tmp_path):
    members = {f"../../escape{i}.png": png_bytes() for i in range(MIN_IMAGES)}
    members["/abs/path.png"] = png_bytes()
    up = prepare_images([make_zip(tmp_path / "slip.zip", members)])
    assert up.count == MIN_IMAGES + 1
    assert not list(tmp_path.parent.glob("escape*.png")) and not list(tmp_path.glob("escape*"))
    assert all(p.parent == up.folder for p in up.folder.iterdir())


def test_a_zip_bomb_is_refused(tmp_path):
    bomb = make_zip(tmp_path / "bomb.zip", {"a.png": b"\0" * (8 * 1024**2)})  # 8 MB of zeros deflates ~1000-fold
    with pytest.raises(ValueError, match="looks like a zip bomb: a.png inflates"):
        prepare_images([bomb])


def test_total_inflated_size_is_capped_while_reading(tmp_path, monkeypatch):
    monkeypatch.setattr(uploads, "MAX_TOTAL_BYTES", 20_000)
    rng = np.random.default_rng(0)

    def noise_png():  # random pixels do not compress: ~5 KB each
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(buf, "PNG")
        return buf.getvalue()

    members = {f"{i}.png": noise_png() for i in range(MIN_IMAGES)}
    with pytest.raises(ValueError, match="inflate to more than"):
        prepare_images([make_zip(tmp_path / "big.zip", members, zipfile.ZIP_STORED)])


def test_links_inside_a_zip_are_skipped(tmp_path):
    path = tmp_path / "links.zip"
    with zipfile.ZipFile(path, "w") as z:
        for i in range(MIN_IMAGES):
            z.writestr(f"{i}.png", png_bytes())
        link = zipfile.ZipInfo("link.png")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        z.writestr(link, "/etc/passwd")
    up = prepare_images([path])
    assert up.count == MIN_IMAGES and up.skipped == ("link.png: a link, not a file",)


def test_huge_pixel_counts_are_refused_from_the_header(tmp_path):
    big = tmp_path / "huge.png"
    Image.new("1", (12000, 12000)).save(big)  # a small file that would decode to 144 megapixels
    assert big.stat().st_size < 200_000
    assert "over the limit" in check_image(big)
    up = prepare_images([big, *write_images(tmp_path, MIN_IMAGES)])
    assert up.count == MIN_IMAGES and up.skipped[0].startswith("huge.png: 12000x12000 pixels is over the limit")


def test_too_few_images_and_wrong_files_say_what_is_needed(tmp_path):
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(ValueError, match=f"found 2 usable images; at least {MIN_IMAGES} are needed.*a.txt"):
        prepare_images([*write_images(tmp_path, 2), tmp_path / "a.txt"])
    with pytest.raises(ValueError, match="no files arrived"):
        prepare_images([])
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 nonsense")
    with pytest.raises(ValueError, match="broken.zip is not a readable zip file"):
        prepare_images([tmp_path / "broken.zip"])


def test_other_image_formats_are_named(tmp_path):
    gif = tmp_path / "anim.gif"
    Image.new("P", (8, 8)).save(gif)
    renamed = tmp_path / "anim.png"
    gif.rename(renamed)  # a GIF dressed as .png
    assert check_image(renamed) == "a GIF image; PNG or JPEG please"
    jpg = tmp_path / "ok.jpg"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(jpg)
    assert check_image(jpg) is None


# --- quotas on what the images decode to, live folders, and the copy a run keeps ----------------

def test_a_padded_png_is_left_out_by_its_size_against_its_pixels(tmp_path):
    data = png_bytes((10, 10))
    padded = data[:-12] + np.random.default_rng(0).bytes(3 * 1024**2) + data[-12:]  # before IEND: still an image
    (tmp_path / "pad.png").write_bytes(padded)
    assert check_image(tmp_path / "pad.png") == ("3.0 MB of file for 10x10 pixels (0.0 MB decoded): it holds data "
                                                 "beyond its picture, which is not accepted")
    assert uploads.inspect_image(write_images(tmp_path, 1)[0]) == (None, 10 * 10 * 3)
    grey = tmp_path / "grey.png"
    Image.new("L", (7, 5)).save(grey)
    assert uploads.inspect_image(grey) == (None, 35)
    archive = make_zip(tmp_path / "pads.zip", {**{f"p{i}.png": padded for i in range(3)},
                                               **{f"ok{i}.png": png_bytes(colour=(i, 0, 0)) for i in range(MIN_IMAGES)}})
    up = prepare_images([archive])
    assert up.count == MIN_IMAGES and len(up.skipped) == 3 and up.decoded == MIN_IMAGES * 12 * 10 * 3
    assert sum(p.stat().st_size for p in up.folder.iterdir()) < 20_000


def test_the_decoded_size_of_one_upload_is_capped(tmp_path, monkeypatch):
    monkeypatch.setattr(uploads, "MAX_DECODED_BYTES", 9 * 10 * 10 * 3)  # nine 10x10 RGB images
    before = set(uploads.live_uploads())
    with pytest.raises(ValueError) as e:
        prepare_images(write_images(tmp_path, 10))
    assert str(e.value) == ("the images decode to more than 0.0 MB (pixels x channels; at img9.png): the most one "
                            "upload may hold; upload fewer or smaller images")
    assert set(uploads.live_uploads()) == before
    assert prepare_images(write_images(tmp_path, 9)).decoded == 9 * 300


def test_the_oldest_upload_goes_when_too_many_are_live(tmp_path, monkeypatch):
    monkeypatch.setattr(uploads, "MAX_LIVE_UPLOADS", 2)
    paths = write_images(tmp_path, MIN_IMAGES)
    a, b = prepare_images(paths), prepare_images(paths)
    uploads._busy[b.folder] = 1  # being copied for a starting run: never dropped meanwhile
    try:
        c = prepare_images(paths)
        live = uploads.live_uploads()
        assert a.folder not in live and not a.folder.exists()
        assert b.folder in live and c.folder in live and len(live) == 2
        with pytest.raises(ValueError, match="the app holds 2 uploads .* at most 2 uploads and 4.0 GB decoded in all"):
            uploads._busy[c.folder] = 1
            prepare_images(paths)
    finally:
        uploads._busy.clear()
    assert len(uploads.live_uploads()) == 2


def test_a_run_keeps_a_copy_of_its_upload_named_by_its_hash(tmp_path):
    from core.config import DataConfig
    from core.datafiles import folder_sha256

    up = prepare_images(write_images(tmp_path, MIN_IMAGES))
    sha = folder_sha256(up.folder)
    data = DataConfig("image_folder", {"path": str(up.folder), "size": 16, "channels": 3})
    runs = tmp_path / "runs"
    kept = uploads.keep_for_run(data, runs)
    assert kept == DataConfig("image_folder", {"path": str((runs / "data" / sha).resolve()), "sha256": sha,
                                               "size": 16, "channels": 3})
    assert folder_sha256(runs / "data" / sha) == sha and uploads.keep_for_run(data, runs) == kept
    assert [p.name for p in (runs / "data").iterdir()] == [sha]  # no temporary folder left
    x = load_dataset(kept.name, **kept.params).x
    assert torch_equal(x, load_dataset("image_folder", path=str(up.folder), size=16).x)
    with pytest.raises(ValueError, match=r"^the uploaded images are no longer here"):
        uploads.keep_for_run(DataConfig("image_folder", {"path": str(tmp_path)}), runs)  # not an upload


def test_the_data_folder_has_a_quota(tmp_path, monkeypatch):
    from core.config import DataConfig

    up = prepare_images(write_images(tmp_path, MIN_IMAGES))
    monkeypatch.setattr(uploads, "MAX_DATA_BYTES", 100)
    with pytest.raises(ValueError, match=r"^the runs folder's data/ holds 0.0 MB of images runs were trained on; "
                                         r"these 0.0 MB would pass its limit of 0.0 MB"):
        uploads.keep_for_run(DataConfig("image_folder", {"path": str(up.folder)}), tmp_path / "runs")
    assert not (tmp_path / "runs" / "data").exists() or not any((tmp_path / "runs" / "data").iterdir())


def torch_equal(a, b) -> bool:
    import torch
    return torch.equal(a, b)
