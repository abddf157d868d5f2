"""explorer.images: reading user images safely."""
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from explorer.images import load_image, sample_images

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "images"


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims width x height but that holds almost no data (a decompression bomb's shape)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


def test_rgb_photo_round_trip(tmp_path):
    arr = np.zeros((20, 30, 3), np.uint8)
    arr[..., 0] = 255
    Image.fromarray(arr).save(tmp_path / "red.png")
    x = load_image(tmp_path / "red.png")
    assert x.shape == (3, 20, 30) and x.dtype == torch.float32
    assert x[0].eq(1).all() and x[1:].eq(-1).all()


def test_greyscale_becomes_rgb(tmp_path):
    Image.new("L", (10, 10), 0).save(tmp_path / "g.png")
    x = load_image(tmp_path / "g.png")
    assert x.shape == (3, 10, 10) and x.eq(-1).all()


def test_transparency_is_composited_over_white(tmp_path):
    Image.new("RGBA", (8, 8), (0, 0, 0, 0)).save(tmp_path / "clear.png")
    assert load_image(tmp_path / "clear.png").eq(1).all()
    pal = Image.new("P", (8, 8), 0)
    pal.putpalette([0, 0, 0] * 256)
    pal.info["transparency"] = 0
    pal.save(tmp_path / "pal.png", transparency=0)
    assert load_image(tmp_path / "pal.png").eq(1).all()


def test_16_bit_is_rescaled_not_clipped(tmp_path):
    a = np.array([[0, 32896, 65535]], dtype=np.uint16)  # 32896 = 128 * 257
    Image.fromarray(a).save(tmp_path / "deep.png")
    x = load_image(tmp_path / "deep.png")
    assert x[0, 0].tolist() == pytest.approx([-1.0, 128 / 127.5 - 1, 1.0], abs=1e-6)


def test_large_images_are_shrunk_keeping_aspect(tmp_path):
    Image.new("RGB", (1000, 600), (10, 20, 30)).save(tmp_path / "big.jpg")
    x = load_image(tmp_path / "big.jpg")
    assert x.shape == (3, 154, 256)


def test_decompression_bomb_refused_before_decoding(tmp_path):
    bomb = png_header_only(tmp_path / "bomb.png", 12000, 12000)
    with pytest.raises(ValueError, match="megapixels"):
        load_image(bomb)
    Image.new("RGB", (20, 20)).save(tmp_path / "small.png")
    with pytest.raises(ValueError, match="limit"):
        load_image(tmp_path / "small.png", max_pixels=100)


def test_non_images_and_broken_files_give_readable_errors(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match="not an image"):
        load_image(tmp_path / "notes.txt")
    Image.new("RGB", (64, 64), (200, 10, 10)).save(tmp_path / "ok.jpg")
    data = (tmp_path / "ok.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="could not be read"):
        load_image(tmp_path / "cut.jpg")


def test_shipped_samples_are_listed_and_readable():
    found = sample_images(ASSETS)
    assert 4 <= len(found) <= 6
    assert list(found) == sorted(found)
    for path in found.values():
        x = load_image(path)
        assert x.shape[0] == 3 and max(x.shape[1:]) <= 256
    assert sample_images(ASSETS / "missing") == {}


def test_shipped_samples_are_small_and_licensed():
    files = [p for p in ASSETS.iterdir() if p.suffix in (".jpg", ".png")]
    assert sum(p.stat().st_size for p in files) < 600_000
    readme = (ASSETS / "README.md").read_text()
    for p in files:
        assert f"`{p.name}`" in readme, f"{p.name} has no source/licence entry in assets/images/README.md"
