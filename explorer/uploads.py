"""A training set from the user: uploaded image files or a zip of them, checked and unpacked safely.

Uploads are untrusted. A zip can claim a small size and inflate to gigabytes (a zip bomb), hold
paths like `../../etc/x` (zip slip), links, or files that are not images. So: only regular
members with an image suffix are extracted, to flat generated names inside a fresh temporary
folder; the member count, the total inflated size and each member's compression ratio are capped,
and bytes are counted while inflating rather than trusted from the header. Each image's header is
then checked (format, pixel count) before any pixel is decoded. The folder feeds the
`image_folder` dataset of core.data.
"""
from __future__ import annotations

import atexit
import itertools
import shutil
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from . import tempfiles

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")   # what core.datafiles.read_image_folder reads
MAX_FILES = 5000               # images in one upload
MAX_TOTAL_BYTES = 200 * 1024**2  # inflated size of everything extracted
MAX_MEMBER_BYTES = 20 * 1024**2  # one image
MAX_RATIO = 200                # inflated / compressed size of one member; photos compress far less
MAX_PIXELS = 50_000_000        # per image, checked from the header before decoding
MIN_IMAGES = 8                 # fewer is no data set to learn a distribution from
_CHUNK = 1 << 20

_folders: list[Path] = []
_folders_lock = threading.Lock()


@dataclass(frozen=True)
class UploadedImages:
    """A checked folder of images ready for `load_dataset("image_folder", path=folder)`."""

    folder: Path
    count: int
    skipped: tuple[str, ...]   # "name: reason" for each file left out

    def summary(self) -> str:
        text = f"{self.count} images ready"
        if self.skipped:
            more = f" and {len(self.skipped) - 3} more" if len(self.skipped) > 3 else ""
            text += f"; left out {len(self.skipped)}: " + "; ".join(self.skipped[:3]) + more
        return text


def _new_folder() -> Path:
    folder = Path(tempfiles.mkdtemp(prefix="explorer-upload-"))
    with _folders_lock:
        _folders.append(folder)
    return folder


@atexit.register
def _cleanup() -> None:
    with _folders_lock:
        for f in _folders:
            shutil.rmtree(f, ignore_errors=True)
        _folders.clear()


def check_image(path: Path, max_pixels: int = MAX_PIXELS) -> str | None:
    """None if `path` is a PNG/JPEG of sane size, else the reason it is not (header only: no decoding)."""
    try:
        with Image.open(path) as im:
            fmt, (w, h) = im.format, im.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return "not an image Pillow can read"
    if fmt not in ("PNG", "JPEG", "MPO"):
        return f"a {fmt} image; PNG or JPEG please"
    if w < 1 or h < 1:
        return "an image without pixels"
    if w * h > max_pixels:
        return f"{w}x{h} pixels is over the limit of {max_pixels / 1e6:.0f} megapixels"
    return None


def _copy_limited(src, dst: Path, limit: int) -> int:
    """Copy a stream to dst, refusing to write more than `limit` bytes; returns the bytes written."""
    written = 0
    with open(dst, "wb") as out:
        while True:
            block = src.read(_CHUNK)
            if not block:
                return written
            written += len(block)
            if written > limit:
                raise ValueError("inflates past the size limit")
            out.write(block)


def _extract_zip(archive: Path, folder: Path, budget: list[int], skipped: list[str], serial) -> int:
    """Extract the image members of `archive` into `folder`; returns how many were kept."""
    kept = 0
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError):
        raise ValueError(f"{archive.name} is not a readable zip file") from None
    with zf:
        members = zf.infolist()
        if len(members) > 4 * MAX_FILES:
            raise ValueError(f"{archive.name} holds {len(members)} entries; at most {MAX_FILES} images are accepted")
        for info in members:
            name = info.filename
            if info.is_dir() or "__MACOSX" in name or Path(name).name.startswith("."):
                continue
            if Path(name).suffix.lower() not in IMAGE_SUFFIXES:
                skipped.append(f"{name}: not a .png/.jpg file")
                continue
            if (info.external_attr >> 16) & 0o170000 == 0o120000:  # a symbolic link stored in the zip
                skipped.append(f"{name}: a link, not a file")
                continue
            if info.file_size > MAX_MEMBER_BYTES:
                skipped.append(f"{name}: larger than {MAX_MEMBER_BYTES // 1024**2} MB")
                continue
            if info.compress_size and info.file_size / info.compress_size > MAX_RATIO:
                raise ValueError(f"{archive.name} looks like a zip bomb: {name} inflates "
                                 f"{info.file_size / info.compress_size:.0f}-fold")
            if kept >= MAX_FILES:
                raise ValueError(f"more than {MAX_FILES} images in {archive.name}; please upload fewer")
            # A generated flat name: the member's own path never reaches the file system.
            dst = folder / f"{next(serial):05d}{Path(name).suffix.lower()}"
            try:
                with zf.open(info) as src:
                    n = _copy_limited(src, dst, min(MAX_MEMBER_BYTES, budget[0]))
            except ValueError:
                dst.unlink(missing_ok=True)
                if budget[0] < MAX_MEMBER_BYTES:
                    raise ValueError(f"the images in {archive.name} inflate to more than "
                                     f"{MAX_TOTAL_BYTES // 1024**2} MB in all; please upload fewer") from None
                skipped.append(f"{name}: inflates past {MAX_MEMBER_BYTES // 1024**2} MB")
                continue
            except (zipfile.BadZipFile, OSError, EOFError, RuntimeError) as e:  # corrupt, encrypted, ...
                dst.unlink(missing_ok=True)
                skipped.append(f"{name}: cannot be extracted ({e})")
                continue
            budget[0] -= n
            reason = check_image(dst)
            if reason:
                dst.unlink()
                skipped.append(f"{name}: {reason}")
                continue
            kept += 1
    return kept


def prepare_images(paths: list[str | Path]) -> UploadedImages:
    """Uploaded files (images and/or zips of images) -> a fresh folder of checked images.

    Raises ValueError, with a message for the user, if too few usable images remain or a limit is hit.
    """
    paths = [Path(p) for p in paths or []]
    if not paths:
        raise ValueError("no files arrived; upload images (.png/.jpg) or a .zip of them")
    folder = _new_folder()
    budget = [MAX_TOTAL_BYTES]
    skipped: list[str] = []
    serial = itertools.count()
    count = 0
    try:
        for p in paths:
            if p.suffix.lower() == ".zip":
                count += _extract_zip(p, folder, budget, skipped, serial)
                continue
            if p.suffix.lower() not in IMAGE_SUFFIXES:
                skipped.append(f"{p.name}: not a .png/.jpg/.zip file")
                continue
            size = p.stat().st_size
            if size > min(MAX_MEMBER_BYTES, budget[0]):
                skipped.append(f"{p.name}: too large ({size / 1024**2:.1f} MB)")
                continue
            reason = check_image(p)
            if reason:
                skipped.append(f"{p.name}: {reason}")
                continue
            if count >= MAX_FILES:
                raise ValueError(f"more than {MAX_FILES} images; please upload fewer")
            shutil.copyfile(p, folder / f"{next(serial):05d}{p.suffix.lower()}")
            budget[0] -= size
            count += 1
        if count < MIN_IMAGES:
            why = f" (left out: {'; '.join(skipped[:3])})" if skipped else ""
            raise ValueError(f"found {count} usable images; at least {MIN_IMAGES} are needed to train{why}")
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return UploadedImages(folder, count, tuple(skipped))
