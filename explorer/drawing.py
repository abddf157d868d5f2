"""Your own 2-D data: a drawing on the Train tab's canvas, or a CSV of x,y, as a `points_file` dataset.

A drawing's ink pixels (dark strokes on the white canvas) become points at the pixel centres, y up,
centred and scaled like the built-in 2-D toys (`core.data.normalise_points`), so the schedule and
the nets that suit swiss_roll suit a drawing too. A CSV is parsed by `core.datafiles` (every bad
line named) and scaled the same way. Either is written as a CSV named by its content into a
process-wide temporary folder while the user draws; Start copies the chosen file into the runs
folder (`<runs>/points/points-<sha256[:16]>.csv`), and the run's config names it with its SHA-256,
so the checkpoint reloads exactly its training points (the Reverse tab's grey reference, the
Evaluate tab's real data) from its config alone, on any machine that has the file in its runs
folder (found by the hash there; a bundle carries it), and two runs on one drawing share one file.

No gradio here: handlers in the Train tab call these and turn ValueError into gr.Error.
"""
from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import threading
from pathlib import Path

import numpy as np

from core.data import POINTS_FOLDER, normalise_points, points_name
from core.datafiles import (MIN_POINTS, POINTS_FORMAT, parse_points_csv, points_csv_text, points_from_ink,
                            read_points_csv)
from . import tempfiles

CANVAS = (400, 400)              # the canvas in pixels (width, height)
BRUSH = 14                       # brush width in pixels: one stroke is a band about 0.1 data units wide
INK_LEVEL = 128                  # a pixel darker than this (0..255 grey) is ink
MAX_CANVAS_PIXELS = 2048 * 2048  # an API client may send any image: refuse a huge one before scanning it
DRAWING_POINTS = 20_000          # ink pixels kept (a seeded choice when there are more): dense enough

_pending: Path | None = None
_pending_lock = threading.Lock()


def composite_of(value):
    """The picture in a gr.Sketchpad value (a dict with "composite", "background", "layers"), or the
    value itself if it is already an image; None for no value."""
    if isinstance(value, dict):
        return value.get("composite")
    return value


def ink_mask(image) -> np.ndarray:
    """A canvas picture -> bool (H, W), True where there is ink.

    image: grey (H, W), RGB (H, W, 3) or RGBA (H, W, 4), uint8. Ink is darker than INK_LEVEL (by
    luminance) and, where there is an alpha channel, at least half opaque (a transparent pixel is
    the white paper, whatever colour it stores).
    """
    a = np.asarray(image)
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (1, 3, 4)):
        raise ValueError(f"a drawing must be a grey, RGB or RGBA picture, got an array of shape {a.shape}")
    if a.shape[0] * a.shape[1] > MAX_CANVAS_PIXELS:
        raise ValueError(f"a {a.shape[1]}x{a.shape[0]} drawing is over the limit of {MAX_CANVAS_PIXELS:,} pixels")
    a = a.astype(np.float32)
    if a.ndim == 2 or a.shape[2] == 1:
        return a.reshape(a.shape[:2]) < INK_LEVEL
    grey = 0.299 * a[..., 0] + 0.587 * a[..., 1] + 0.114 * a[..., 2]
    ink = grey < INK_LEVEL
    if a.shape[2] == 4:
        ink &= a[..., 3] >= 128
    return ink


def drawing_points(image, *, max_points: int = DRAWING_POINTS, min_points: int = MIN_POINTS,
                   seed: int = 0) -> np.ndarray:
    """A drawing (see ink_mask; or a Sketchpad value) -> float32 (N, 2) points, normalised.

    Every ink pixel gives one point at its centre (x right, y up); with more than `max_points`
    a seeded choice of them is kept. ValueError for an empty canvas or too little ink.
    """
    image = composite_of(image)
    if image is None:
        raise ValueError(f"the canvas is empty: draw a shape (at least {min_points} pixels of ink) or give a CSV "
                         f"with {POINTS_FORMAT}")
    ink = ink_mask(image)
    count = int(ink.sum())
    if count == 0:
        raise ValueError(f"the canvas is empty: draw a shape (at least {min_points} pixels of ink) or give a CSV "
                         f"with {POINTS_FORMAT}")
    if count < min_points:
        raise ValueError(f"the drawing has {count} pixel{'s' if count != 1 else ''} of ink; at least {min_points} "
                         "are needed: draw longer strokes")
    xy = points_from_ink(ink)
    if count > max_points:
        keep = np.random.default_rng(seed).choice(count, size=max_points, replace=False)
        xy = xy[np.sort(keep)]
    return normalise_points(xy).numpy()


def csv_points(text: str, source: str = "the pasted points") -> np.ndarray:
    """CSV text of x,y rows -> float32 (N, 2) points, normalised; ValueError naming what was wrong."""
    if not text or not text.strip():
        raise ValueError(f"{source}: nothing to read; give {POINTS_FORMAT}, at least {MIN_POINTS} of them")
    return normalise_points(parse_points_csv(text, source=source)).numpy()


def csv_file_points(path: str | Path) -> np.ndarray:
    """A CSV file of x,y rows -> float32 (N, 2) points, normalised (its size is checked before reading)."""
    return normalise_points(read_points_csv(path)).numpy()


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def pending_folder() -> Path:
    """This process's folder of drawings not (yet) trained on; removed when the app exits."""
    global _pending
    with _pending_lock:
        if _pending is None or not _pending.is_dir():
            _pending = Path(tempfiles.mkdtemp(prefix="explorer-points-"))
        return _pending


@atexit.register
def _cleanup() -> None:
    if _pending is not None:
        shutil.rmtree(_pending, ignore_errors=True)


def store_points(points, folder: str | Path | None = None) -> Path:
    """Write points as CSV into `folder` (default: the pending folder) under a name made from their
    content, so the same points are one file; returns its path."""
    text = points_csv_text(points).encode()
    folder = Path(folder) if folder is not None else pending_folder()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"points-{hashlib.sha256(text).hexdigest()[:16]}.csv"
    if not path.is_file():
        tmp = folder / f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp"
        tmp.write_bytes(text)
        os.replace(tmp, path)  # atomic: a reader never sees half a file
    return path


def keep_for_run(path: str | Path | None, runs_dir: str | Path) -> Path:
    """Copy a pending points file into `<runs_dir>/points/` (once), where the run's config will name it."""
    if not path:
        raise ValueError(f"no points yet: draw a shape on the canvas (at least {MIN_POINTS} pixels of ink), "
                         f"or upload or paste a CSV with {POINTS_FORMAT}")
    src = Path(path)
    if not src.is_file():
        raise ValueError("the drawn points are gone (the app was restarted?): draw or upload them again")
    folder = Path(runs_dir).resolve() / POINTS_FOLDER
    sha = file_sha256(src)
    dst = folder / points_name(sha)  # named by content: a bundle's copy of the file lands on the same name
    if src.resolve() == dst or (dst.is_file() and file_sha256(dst) == sha):
        return dst
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{src.name}.{os.getpid()}.{threading.get_ident()}.tmp"
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)
    return dst


def summary(points: np.ndarray, source: str) -> str:
    return f"{len(points):,} points from {source}, centred and scaled to the usual 2-D range"

