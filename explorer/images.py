"""Reading user images safely: any format Pillow reads -> a float tensor (3, H, W) in [-1, 1].

Uploads are untrusted: the size is checked from the header before a pixel is decoded
(decompression bombs), and every failure becomes a ValueError with a message fit for the user.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_SIDE = 256                 # images are shrunk so their longer side is at most this
MAX_PIXELS = 50_000_000        # refuse anything larger before decoding (a 12000x12000 PNG can be 136 KB)
MAX_FILE_BYTES = 20 * 1024**2  # the server's upload cap (launch's max_file_size)
_16_BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")


def _to_rgb(im: Image.Image) -> Image.Image:
    """Any mode -> 8-bit RGB: 16-bit rescaled (convert() would clip it), transparency over white."""
    if im.mode in _16_BIT:
        a = np.asarray(im, dtype=np.float64)
        a = np.clip(a, 0, 65535) / 257.0  # 0..65535 -> 0..255
        im = Image.fromarray(a.round().astype(np.uint8), "L")
    elif im.mode == "F":  # float images have no fixed range: stretch min..max
        a = np.asarray(im, dtype=np.float64)
        span = float(a.max() - a.min()) or 1.0
        im = Image.fromarray(((a - a.min()) / span * 255).round().astype(np.uint8), "L")
    if im.mode in ("RGBA", "LA", "PA", "P") and (im.mode != "P" or "transparency" in im.info):
        im = Image.alpha_composite(Image.new("RGBA", im.size, "white"), im.convert("RGBA"))
    return im.convert("RGB")


def load_image(path: str | Path, max_side: int = MAX_SIDE, max_pixels: int = MAX_PIXELS) -> torch.Tensor:
    """An image file -> float32 (3, H, W) in [-1, 1], longer side shrunk to <= max_side (aspect kept).

    Raises ValueError with a readable reason for non-images, oversized or truncated files.
    """
    name = Path(path).name
    try:
        with warnings.catch_warnings():  # Pillow warns of big images; the size check below decides
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(path)  # reads the header only
        with im:
            w, h = im.size
            if w < 1 or h < 1:
                raise ValueError(f"{name}: the image has no pixels ({w}x{h})")
            if w * h > max_pixels:
                raise ValueError(f"{name} is {w}x{h} = {w * h / 1e6:.0f} megapixels; the limit is "
                                 f"{max_pixels / 1e6:.0f} megapixels. Please upload a smaller image.")
            im.draft("RGB", (max_side, max_side))  # JPEG: decode directly at a reduced scale
            im = ImageOps.exif_transpose(im)  # first frame only for animations
            im = _to_rgb(im)
            im.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
            arr = np.asarray(im, dtype=np.float32)
    except UnidentifiedImageError:
        raise ValueError(f"{name} is not an image Pillow can read (try PNG, JPEG, WebP, BMP, GIF or TIFF)") from None
    except Image.DecompressionBombError:
        raise ValueError(f"{name} is too large to decode safely; please upload a smaller image") from None
    except (OSError, SyntaxError, EOFError) as e:
        raise ValueError(f"{name} could not be read as an image ({e})") from None
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous() / 127.5 - 1.0


def sample_images(folder: str | Path) -> dict[str, Path]:
    """The shipped sample images in `folder`, by file stem, sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()}
