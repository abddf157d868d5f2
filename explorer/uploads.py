"""A training set from the user: uploaded image files or a zip of them, checked and unpacked safely.

Uploads are untrusted. A zip can claim a small size and inflate to gigabytes (a zip bomb), hold
paths like `../../etc/x` (zip slip), links, or files that are not images. So: only regular
members with an image suffix are extracted, to flat generated names inside a fresh temporary
folder; the member count, the total inflated size and each member's compression ratio are capped,
and bytes are counted while inflating rather than trusted from the header. Each image's header is
then checked (format, pixel count) before any pixel is decoded. The folder feeds the
`image_folder` dataset of core.data.

Disk and memory are bounded by what the images decode to (pixels x channels, read from the
headers), not by the zip's size: per upload and for all live uploads together, and by the number
of live upload folders (the oldest one not being copied is dropped for a new one). An image file
far larger than its pixels need (padding, a file appended) is left out. When a run starts, its
images are copied into the runs folder as `<runs>/data/<sha256>/` (`keep_for_run`, within a quota
for that folder), so the checkpoint outlives the upload and the app.
"""
from __future__ import annotations

import atexit
import itertools
import os
import shutil
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from core.config import DataConfig
from core.data import DATA_FOLDER
from core.datafiles import folder_sha256
from . import tempfiles

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")   # what core.datafiles.read_image_folder reads
MAX_FILES = 5000               # images in one upload
MAX_TOTAL_BYTES = 200 * 1024**2  # inflated size of everything extracted
MAX_MEMBER_BYTES = 20 * 1024**2  # one image
MAX_RATIO = 200                # inflated / compressed size of one member; photos compress far less
MAX_PIXELS = 50_000_000        # per image, checked from the header before decoding
MIN_IMAGES = 8                 # fewer is no data set to learn a distribution from
MAX_DECODED_BYTES = 1024**3    # pixels x channels of one upload's images, from their headers
MAX_LIVE_DECODED = 4 * 1024**3  # the same for all live uploads together
MAX_LIVE_UPLOADS = 8           # upload folders kept at once; the oldest goes for a new one
MAX_PADDING = 1024**2          # bytes a file may hold beyond twice its decoded pixels (metadata, ICC)
MAX_DATA_BYTES = 2 * 1024**3   # <runs>/data/: the images of every upload a run was trained on
_CHUNK = 1 << 20

_folders: list[Path] = []      # every folder made, removed at exit
_folders_lock = threading.Lock()
_live: dict[Path, int] = {}    # ready upload folders, oldest first -> their decoded bytes
_busy: dict[Path, int] = {}    # folders being copied into the runs folder: never dropped meanwhile


@dataclass(frozen=True)
class UploadedImages:
    """A checked folder of images ready for `load_dataset("image_folder", path=folder)`."""

    folder: Path
    count: int
    skipped: tuple[str, ...]   # "name: reason" for each file left out
    decoded: int = 0           # bytes the images decode to (pixels x channels)

    def summary(self) -> str:
        text = f"{self.count} images ready ({_mb(self.decoded)} decoded)"
        if self.skipped:
            more = f" and {len(self.skipped) - 3} more" if len(self.skipped) > 3 else ""
            text += f"; left out {len(self.skipped)}: " + "; ".join(self.skipped[:3]) + more
        return text


def _new_folder() -> Path:
    folder = Path(tempfiles.mkdtemp(prefix="explorer-upload-"))
    with _folders_lock:
        _folders.append(folder)
    return folder


def _drop(folder: Path) -> None:
    """Forget and delete an upload folder (call with _folders_lock held)."""
    _live.pop(folder, None)
    if folder in _folders:
        _folders.remove(folder)
    shutil.rmtree(folder, ignore_errors=True)


def _admit(folder: Path, decoded: int) -> None:
    """Make `folder` a live upload, dropping the oldest idle ones past the count or decoded quota."""
    with _folders_lock:
        for old in list(_live):
            if len(_live) < MAX_LIVE_UPLOADS and sum(_live.values()) + decoded <= MAX_LIVE_DECODED:
                break
            if not _busy.get(old):
                _drop(old)
        if len(_live) >= MAX_LIVE_UPLOADS or sum(_live.values()) + decoded > MAX_LIVE_DECODED:
            _drop(folder)
            raise ValueError(f"the app holds {len(_live)} uploads ({_mb(sum(_live.values()))} decoded) that "
                             f"runs are starting from; at most {MAX_LIVE_UPLOADS} uploads and "
                             f"{_mb(MAX_LIVE_DECODED)} decoded in all are kept: upload again in a moment")
        _live[folder] = decoded


def live_uploads() -> dict[Path, int]:
    """The live upload folders, oldest first, with the bytes their images decode to."""
    with _folders_lock:
        return dict(_live)


def _mb(n: int) -> str:
    return f"{n / 1024**3:.1f} GB" if n >= 1024**3 else f"{n / 1024**2:.1f} MB"


@atexit.register
def _cleanup() -> None:
    with _folders_lock:
        for f in _folders:
            shutil.rmtree(f, ignore_errors=True)
        _folders.clear()
        _live.clear()


_CHANNELS = {"1": 1, "L": 1, "I;16": 1, "I;16B": 1, "I;16L": 1, "I": 1, "LA": 2, "RGB": 3, "YCbCr": 3,
             "CMYK": 4, "RGBA": 4, "P": 3}


def inspect_image(path: Path, max_pixels: int = MAX_PIXELS) -> tuple[str | None, int]:
    """(None or the reason `path` is not a PNG/JPEG of sane size, the bytes it decodes to), from the header."""
    try:
        with Image.open(path) as im:
            fmt, (w, h), mode = im.format, im.size, im.mode
            channels = _CHANNELS.get(mode, 4) + (mode == "P" and "transparency" in im.info)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return "not an image Pillow can read", 0
    if fmt not in ("PNG", "JPEG", "MPO"):
        return f"a {fmt} image; PNG or JPEG please", 0
    if w < 1 or h < 1:
        return "an image without pixels", 0
    if w * h > max_pixels:
        return f"{w}x{h} pixels is over the limit of {max_pixels / 1e6:.0f} megapixels", 0
    decoded = w * h * channels
    size = Path(path).stat().st_size
    if size > 2 * decoded + MAX_PADDING:
        return (f"{_mb(size)} of file for {w}x{h} pixels ({_mb(decoded)} decoded): it holds data beyond its "
                "picture, which is not accepted"), 0
    return None, decoded


def check_image(path: Path, max_pixels: int = MAX_PIXELS) -> str | None:
    """None if `path` is a PNG/JPEG of sane size, else the reason it is not (header only: no decoding)."""
    return inspect_image(path, max_pixels)[0]


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


def _take_decoded(decoded: int, budget: list[int], name: str) -> None:
    """Count an image's decoded bytes against the upload's quota; ValueError when it is spent."""
    budget[1] -= decoded
    if budget[1] < 0:
        raise ValueError(f"the images decode to more than {_mb(MAX_DECODED_BYTES)} (pixels x channels; at "
                         f"{name}): the most one upload may hold; upload fewer or smaller images")


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
            reason, decoded = inspect_image(dst)
            if reason:
                dst.unlink()
                skipped.append(f"{name}: {reason}")
                continue
            _take_decoded(decoded, budget, name)
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
    budget = [MAX_TOTAL_BYTES, MAX_DECODED_BYTES]  # bytes on disk, bytes decoded
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
            reason, decoded = inspect_image(p)
            if reason:
                skipped.append(f"{p.name}: {reason}")
                continue
            _take_decoded(decoded, budget, p.name)
            if count >= MAX_FILES:
                raise ValueError(f"more than {MAX_FILES} images; please upload fewer")
            shutil.copyfile(p, folder / f"{next(serial):05d}{p.suffix.lower()}")
            budget[0] -= size
            count += 1
        if count < MIN_IMAGES:
            why = f" (left out: {'; '.join(skipped[:3])})" if skipped else ""
            raise ValueError(f"found {count} usable images; at least {MIN_IMAGES} are needed to train{why}")
    except BaseException:
        with _folders_lock:
            _drop(folder)
        raise
    decoded = MAX_DECODED_BYTES - budget[1]
    _admit(folder, decoded)
    return UploadedImages(folder, count, tuple(skipped), decoded)


def _tree_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0


def keep_for_run(data: DataConfig, runs_dir: str | Path) -> DataConfig:
    """Copy a live upload's images into `<runs_dir>/data/<sha256>/` (once) for a run that starts on them.

    Returns the run's data config naming the copy and its SHA-256, so the checkpoint finds its images
    after the upload is gone (and by the hash in another runs folder that holds them). ValueError when `data` is not a live
    upload of this app (gone, or any other folder) or the data folder's quota would be passed.
    """
    folder = Path(str(data.params.get("path") or "")).resolve()
    with _folders_lock:
        if folder not in _live:
            raise ValueError("the uploaded images are no longer here (the app was restarted, or newer uploads "
                             f"replaced them: {MAX_LIVE_UPLOADS} are kept); upload them again")
        _busy[folder] = _busy.get(folder, 0) + 1
    try:
        sha = folder_sha256(folder)
        store = Path(runs_dir).resolve() / DATA_FOLDER
        dst = store / sha
        if not dst.is_dir():
            size, used = _tree_bytes(folder), _tree_bytes(store)
            if used + size > MAX_DATA_BYTES:
                raise ValueError(f"the runs folder's {DATA_FOLDER}/ holds {_mb(used)} of images runs were trained on; "
                                 f"these {_mb(size)} would pass its limit of {_mb(MAX_DATA_BYTES)}: delete the "
                                 f"{DATA_FOLDER}/ folders of runs you no longer need")
            store.mkdir(parents=True, exist_ok=True)
            tmp = store / f".{sha}.{os.getpid()}.{threading.get_ident()}.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(folder, tmp)
            try:
                os.rename(tmp, dst)  # atomic; another start may have placed the same images meanwhile
            except OSError:
                shutil.rmtree(tmp, ignore_errors=True)
                if not dst.is_dir():
                    raise
    finally:
        with _folders_lock:
            _busy[folder] -= 1
            if not _busy[folder]:
                del _busy[folder]
    params = {k: v for k, v in data.params.items() if k != "path"}
    return DataConfig(data.name, {"path": str(dst), "sha256": sha, **params})
