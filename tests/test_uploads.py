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
