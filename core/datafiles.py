"""Readers for dataset files on disk: MNIST-style IDX files, CIFAR-10 python batches, image folders,
CSV files of 2-D points.

They return plain numpy arrays (uint8 images, int64 labels); `core.data` turns them into
Datasets. Every problem with a file raises `DataFileError` (a ValueError) that names the file and
the format that was expected, so a user pointing the app at the wrong folder learns what to fix.
"""
from __future__ import annotations

import codecs
import gzip
import hashlib
import math
import pickle
import re
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps


class DataFileError(ValueError):
    """A dataset file is missing or is not in the format its name promises."""


class DataGoneError(DataFileError):
    """The data a checkpoint was trained on is not on this machine (any more)."""


class DataPathError(DataFileError):
    """A checkpoint's config names data outside the folders the app reads data from."""


# ---------------------------------------------------------------------------------------------
# IDX (MNIST, Fashion-MNIST): big-endian header [0, 0, type, ndim] + ndim uint32 sizes, then data

IDX_UBYTE = 0x08
IDX_WHAT = {1: "labels", 3: "images"}
_CHUNK = 1 << 24  # read in pieces so a lying header cannot make us allocate what the file lacks


def _read_up_to(f, count: int) -> bytes:
    parts, left = [], count
    while left > 0:
        part = f.read(min(left, _CHUNK))
        if not part:
            break
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def read_idx(path: str | Path, ndim: int) -> np.ndarray:
    """Read an IDX unsigned-byte file (plain or gzip) -> uint8 array of the header's shape."""
    path = Path(path)
    expected = (IDX_UBYTE << 8) | ndim
    what = f"IDX unsigned-byte {ndim}-D {IDX_WHAT.get(ndim, 'array')}"
    if not path.is_file():
        raise DataFileError(f"{path}: file not found (expected {what})")
    with path.open("rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"  # gzip magic, whatever the file is called
    try:
        with (gzip.open(path, "rb") if gzipped else path.open("rb")) as f:
            head = _read_up_to(f, 4)
            magic = int.from_bytes(head, "big") if len(head) == 4 else None
            if magic != expected:
                raise DataFileError(f"{path.name}: bad magic number {magic}, expected {expected} ({what}) in {path}")
            dims_raw = _read_up_to(f, 4 * ndim)
            if len(dims_raw) != 4 * ndim:
                raise DataFileError(f"{path}: truncated header, expected {ndim} sizes ({what})")
            dims = tuple(int.from_bytes(dims_raw[4 * i:4 * i + 4], "big") for i in range(ndim))
            count = int(np.prod(dims, dtype=np.int64))
            data = _read_up_to(f, count)
            extra = f.read(1)
    except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError
        raise DataFileError(f"{path}: cannot read ({e}); expected {what}, optionally gzipped") from e
    if len(data) != count:
        raise DataFileError(f"{path}: truncated: the header promises {'x'.join(map(str, dims))} = {count} bytes "
                            f"of data, found {len(data)} ({what})")
    if extra:
        raise DataFileError(f"{path}: more data than the header's {'x'.join(map(str, dims))} describes ({what})")
    return np.frombuffer(data, dtype=np.uint8).reshape(dims)


IDX_SPLITS = {"train": "train", "test": "t10k"}


def _find_idx(folder: Path, prefix: str, part: str, ndim: int) -> Path:
    names = [f"{prefix}-{part}-idx{ndim}-ubyte", f"{prefix}-{part}.idx{ndim}-ubyte"]  # both spellings are common
    for where in (folder, folder / "raw"):  # torchvision keeps them in <root>/raw
        for name in names:
            for suffix in ("", ".gz"):
                if (where / (name + suffix)).is_file():
                    return where / (name + suffix)
    raise DataFileError(f"{folder}: no {names[0]} (or .gz) found; expected the IDX files "
                        "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
                        "t10k-labels-idx1-ubyte (optionally .gz) in this folder")


def read_mnist(folder: str | Path, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """MNIST-style IDX image/label pair in `folder` -> (uint8 (N, H, W), int64 (N,))."""
    if split not in IDX_SPLITS:
        raise ValueError(f"split must be one of {list(IDX_SPLITS)}, got {split!r}")
    folder = Path(folder)
    if not folder.is_dir():
        raise DataFileError(f"{folder}: not a folder; expected a folder holding MNIST IDX files")
    prefix = IDX_SPLITS[split]
    images_path, labels_path = _find_idx(folder, prefix, "images", 3), _find_idx(folder, prefix, "labels", 1)
    images, labels = read_idx(images_path, 3), read_idx(labels_path, 1)
    if len(images) != len(labels):
        raise DataFileError(f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels")
    return images, labels.astype(np.int64)


# ---------------------------------------------------------------------------------------------
# CIFAR-10 python batches: pickled dicts {b"data": uint8 (N, 3072), b"labels": [int]}

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
CIFAR10_FILES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}

# A pickle can name any importable callable, so unpickling an untrusted file can run code. The
# batches need only these: numpy's array reconstruction, and (for files re-saved by Python 3
# with protocol 2) codecs.encode, which is how that protocol spells bytes.
_reconstruct = np.ndarray.__reduce__(np.zeros(0))[0]  # numpy.core or numpy._core, whichever is installed
_CIFAR_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): codecs.encode,
    ("builtins", "bytes"): bytes,
    ("builtins", "dict"): dict,
    ("builtins", "list"): list,
}


class _CifarUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        try:
            return _CIFAR_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refused to load {module}.{name}: a CIFAR-10 batch may only hold numpy arrays, lists and "
                "bytes, so this file is not one (or has been tampered with)") from None


def read_cifar_batch(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 python batch file -> (uint8 (N, 3, 32, 32), int64 (N,))."""
    path = Path(path)
    what = "a CIFAR-10 python batch (a pickled dict with 'data' uint8 (N, 3072) and 'labels')"
    if not path.is_file():
        raise DataFileError(f"{path}: file not found (expected {what})")
    try:
        with path.open("rb") as f:
            batch = _CifarUnpickler(f, encoding="bytes").load()  # Python 2 str -> bytes, as the files were written
    except Exception as e:  # a broken pickle raises almost anything; say which file and what we wanted
        raise DataFileError(f"{path}: cannot unpickle ({e}); expected {what}") from e
    if not isinstance(batch, dict):
        raise DataFileError(f"{path}: holds a {type(batch).__name__}, expected {what}")
    data = batch.get(b"data", batch.get("data"))
    labels = batch.get(b"labels", batch.get("labels"))
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2 and data.shape[1] == 3072):
        got = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DataFileError(f"{path}: 'data' is {got}, expected uint8 (N, 3072) in {what}")
    try:
        labels = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError) as e:
        raise DataFileError(f"{path}: 'labels' is not a list of integers ({e}); expected {what}") from e
    if labels.shape != (len(data),) or (labels.size and not (0 <= labels.min() and labels.max() < 10)):
        raise DataFileError(f"{path}: 'labels' must be {len(data)} integers in 0..9, got shape {labels.shape}")
    return data.reshape(-1, 3, 32, 32), labels  # rows are R, G, B planes of 32x32, row-major


def read_cifar10(folder: str | Path, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10 batches in `folder` (or its cifar-10-batches-py) -> (uint8 (N, 3, 32, 32), int64 (N,))."""
    if split not in CIFAR10_FILES:
        raise ValueError(f"split must be one of {list(CIFAR10_FILES)}, got {split!r}")
    folder = Path(folder)
    if (folder / "cifar-10-batches-py").is_dir():
        folder = folder / "cifar-10-batches-py"
    if not folder.is_dir():
        raise DataFileError(f"{folder}: not a folder; expected one holding the CIFAR-10 python batches")
    missing = [name for name in CIFAR10_FILES[split] if not (folder / name).is_file()]
    if missing:
        raise DataFileError(f"{folder}: missing {', '.join(missing)}; expected the CIFAR-10 python batches "
                            "data_batch_1..data_batch_5 and test_batch (from cifar-10-python.tar.gz)")
    parts = [read_cifar_batch(folder / name) for name in CIFAR10_FILES[split]]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


# ---------------------------------------------------------------------------------------------
# A folder of PNG / JPEG images

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
MAX_PIXELS = 1 << 26  # 67 Mpx (8192 x 8192): far beyond any photo worth shrinking to 32x32
_16_BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I")  # 16-bit greyscale PNGs open in one of these
_READ_ERRORS = (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError)


def _to_mode(im: Image.Image, channels: int) -> Image.Image:
    """Any PIL image -> 8-bit "RGB" or "L"; transparency is composited over white."""
    if im.mode in _16_BIT:  # convert() would clip 16-bit values at 255, not rescale them
        im = Image.fromarray((np.clip(np.asarray(im), 0, 65535) >> 8).astype(np.uint8), "L")
    if im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info:
        im = Image.alpha_composite(Image.new("RGBA", im.size, "white"), im.convert("RGBA"))
    return im.convert("RGB" if channels == 3 else "L")


def read_image(path: Path, size: int, channels: int, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """One image file -> uint8 (channels, size, size): short side resized to `size`, centre-cropped."""
    with Image.open(path) as im:  # reads the header only; pixels are decoded below
        w, h = im.size
        if w * h > max_pixels:  # refuse decompression bombs before decoding a single pixel
            raise ValueError(f"{w}x{h} = {w * h} pixels is over the limit of {max_pixels}")
        im.draft("RGB" if channels == 3 else "L", (size, size))  # JPEG: decode at a reduced scale
        im = _to_mode(ImageOps.exif_transpose(im), channels)
        im = ImageOps.fit(im, (size, size), Image.Resampling.BICUBIC)
    arr = np.asarray(im, dtype=np.uint8)
    return arr[None] if channels == 1 else arr.transpose(2, 0, 1)


def read_image_folder(folder: str | Path, size: int = 32, channels: int = 3, max_pixels: int = MAX_PIXELS):
    """Every PNG/JPEG under `folder` (recursively, sorted) -> (images, labels, class_names, skipped).

    images: uint8 (N, channels, size, size). If every image lies in a subfolder, its first-level
    subfolder is its class (labels int64 (N,), class_names sorted); otherwise both are None.
    skipped: (path, reason) for each file that could not be read.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataFileError(f"{folder}: not a folder; expected a folder of {'/'.join(IMAGE_SUFFIXES)} images")
    files = image_files(folder)
    images, kept, skipped = [], [], []
    for p in files:
        try:
            images.append(read_image(p, size, channels, max_pixels))
            kept.append(p)
        except _READ_ERRORS as e:
            skipped.append((p, str(e) or type(e).__name__))
    if not images:
        why = "; ".join(f"{p}: {r}" for p, r in skipped[:5]) or "no files with these suffixes"
        raise DataFileError(f"{folder}: no readable {'/'.join(IMAGE_SUFFIXES)} images ({why})")
    tops = [p.relative_to(folder).parts for p in kept]
    labels = class_names = None
    if all(len(parts) > 1 for parts in tops):
        class_names = sorted({parts[0] for parts in tops})
        index = {name: i for i, name in enumerate(class_names)}
        labels = np.array([index[parts[0]] for parts in tops], dtype=np.int64)
    return np.stack(images), labels, class_names, skipped


def image_files(folder: str | Path) -> list[Path]:
    """The PNG/JPEG files under `folder` (recursively, sorted): what read_image_folder reads."""
    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def folder_sha256(folder: str | Path) -> str:
    """The SHA-256 of a folder's images: of one line "<relative path>\\0<file SHA-256>\\n" per file, sorted.

    Names and bytes both count, so the digest names exactly what read_image_folder would read.
    """
    folder = Path(folder)
    h = hashlib.sha256()
    for p in image_files(folder):
        f = hashlib.sha256()
        with p.open("rb") as src:
            while block := src.read(_CHUNK):
                f.update(block)
        h.update(f"{p.relative_to(folder).as_posix()}\0{f.hexdigest()}\n".encode())
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------
# 2-D points: a CSV of x,y per line (a drawing saved by the app, or the user's own file)

MIN_POINTS = 50                 # fewer is no distribution to learn
MAX_POINTS = 100_000            # far more than a 2-D shape needs; keeps parsing and files small
MAX_POINTS_BYTES = 8 * 1024**2  # about 100,000 lines of two long numbers
_SEPARATORS = re.compile(r"[,;\s]+")  # comma, semicolon, tab or spaces: what spreadsheets paste
POINTS_FORMAT = "one point per line as x,y (two numbers; a header line such as x,y is optional)"


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def parse_points_csv(text: str, *, min_points: int = MIN_POINTS, max_points: int = MAX_POINTS,
                     source: str = "the points") -> np.ndarray:
    """CSV text of x,y rows -> float64 (N, 2); DataFileError naming the first bad line.

    Blank lines and lines starting with # are skipped; a first line that is not two numbers is
    taken as a header. Every value must be a finite number.
    """
    if len(text) > MAX_POINTS_BYTES:
        raise DataFileError(f"{source}: {len(text) / 1024**2:.1f} MB of text is over the limit of "
                            f"{MAX_POINTS_BYTES // 1024**2} MB ({max_points:,} points at most)")
    rows: list[tuple[float, float]] = []
    first = True
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = [f for f in _SEPARATORS.split(line) if f]
        values = [_number(f) for f in fields]
        if first and (len(fields) != 2 or None in values):
            first = False  # a header such as "x,y"
            continue
        first = False
        if len(fields) != 2:
            raise DataFileError(f"{source}, line {number}: {len(fields)} values in {line[:40]!r}; expected "
                                f"{POINTS_FORMAT}")
        for field, value in zip(fields, values):
            if value is None:
                raise DataFileError(f"{source}, line {number}: {field[:20]!r} is not a number; expected "
                                    f"{POINTS_FORMAT}")
            if not math.isfinite(value):
                raise DataFileError(f"{source}, line {number}: {field[:20]!r} is not a finite number "
                                    "(NaN and infinity are not allowed)")
        if len(rows) >= max_points:
            raise DataFileError(f"{source}: more than {max_points:,} points; at most {max_points:,} are allowed")
        rows.append((values[0], values[1]))
    if len(rows) < min_points:
        raise DataFileError(f"{source}: found {len(rows)} point{'s' if len(rows) != 1 else ''}; at least "
                            f"{min_points} are needed to train ({POINTS_FORMAT})")
    return np.array(rows, dtype=np.float64).reshape(-1, 2)


def read_points_csv(path: str | Path, **limits) -> np.ndarray:
    """A CSV file of x,y rows -> float64 (N, 2), with the size checked before the file is read."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{path}: file not found (expected a CSV file with {POINTS_FORMAT})")
    size = path.stat().st_size
    if size > MAX_POINTS_BYTES:
        raise DataFileError(f"{path.name}: {size / 1024**2:.1f} MB is over the limit of "
                            f"{MAX_POINTS_BYTES // 1024**2} MB for a points file")
    try:
        text = path.read_bytes()[:MAX_POINTS_BYTES + 1].decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DataFileError(f"{path.name}: not a text file (expected a CSV file with {POINTS_FORMAT})") from None
    return parse_points_csv(text, source=path.name, **limits)


def points_csv_text(points) -> str:
    """(N, 2) points -> CSV text with an x,y header; 9 significant digits round-trip float32 exactly."""
    xy = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return "x,y\n" + "".join(f"{x:.9g},{y:.9g}\n" for x, y in xy)


def points_from_ink(ink) -> np.ndarray:
    """A boolean (H, W) ink mask (True = stroke) -> float64 (N, 2) pixel centres, x right and y up.

    Pixel (row r, column c) becomes (c + 0.5, H - r - 0.5): the drawing as seen, in pixel units.
    """
    ink = np.asarray(ink, dtype=bool)
    if ink.ndim != 2:
        raise ValueError(f"an ink mask must be 2-D (H, W), got shape {ink.shape}")
    rows, cols = np.nonzero(ink)
    return np.stack([cols + 0.5, ink.shape[0] - rows - 0.5], axis=1).astype(np.float64)
