"""Datasets by name: 2-D toys, UCI digits, procedural shapes, 1-D signals, and files on disk
(including your own 2-D points: `points_file`).

`load_dataset(name, **params)` returns a `Dataset` whose `x` is float32: points (N, 2) with
roughly zero mean and unit scale, images (N, C, H, W) in [-1, 1], signals (N, 1, L) in [-1, 1].
Everything random is drawn on the CPU from a torch.Generator seeded by `seed`, so a seed gives the
same data on every machine. `dataset_info(name)` describes a dataset without making it.
"""
from __future__ import annotations

import functools
import hashlib
import inspect
import math
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from . import datafiles
from .config import DataConfig

KINDS = ("points", "image", "signal")
_RANK = {"points": 2, "image": 4, "signal": 3}
ASSET_DIR = Path(__file__).resolve().parent.parent / "assets" / "data"


@dataclass(frozen=True, eq=False)
class Dataset:
    """A whole dataset in memory. x: float32 (N, ...); labels: int64 (N,) or None."""

    name: str
    kind: str
    x: torch.Tensor
    labels: torch.Tensor | None = None
    class_names: list[str] | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if self.x.dtype != torch.float32 or self.x.ndim != _RANK[self.kind]:
            raise ValueError(f"{self.kind} data must be float32 of rank {_RANK[self.kind]}, "
                             f"got {self.x.dtype} {tuple(self.x.shape)}")
        if self.labels is not None and (self.labels.dtype != torch.int64 or self.labels.shape != self.x.shape[:1]):
            raise ValueError(f"labels must be int64 of shape ({len(self.x)},), got {self.labels.dtype} "
                             f"{tuple(self.labels.shape)}")
        if self.labels is not None and self.class_names is not None and len(self.labels) \
                and not 0 <= int(self.labels.min()) <= int(self.labels.max()) < len(self.class_names):
            raise ValueError(f"labels must lie in 0..{len(self.class_names) - 1}, one per class name")

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one sample, e.g. (2,), (1, 8, 8) or (1, 64)."""
        return tuple(self.x.shape[1:])

    def __len__(self) -> int:
        return self.x.shape[0]

    def x0_clip(self) -> float:
        """The range [-c, c] a sampler may clip predicted x0 to: 1 for images, else 10 % beyond the data.

        Clipping x0 keeps a sample that strays off the data (where the net was never trained) from being
        flung further out at every step; without it a few 2-D points end up hundreds of units away.
        """
        if self.kind == "image":
            return 1.0
        return round(1.1 * float(self.x.abs().max()), 4)


@dataclass(frozen=True)
class DatasetInfo:
    """What the UI shows about a dataset. size is None where only reading the files would tell."""

    name: str
    kind: str
    shape: tuple[int, ...]
    size: int | None
    description: str
    params: dict  # every parameter with the value it would be made with


# name -> maker; each maker takes keyword arguments only and returns a Dataset
DATASETS: dict[str, Callable[..., Dataset]] = {}
# name -> (kind, extent); extent(params) -> (size, per-sample shape) without making the data
_EXTENT: dict[str, tuple[str, Callable[[dict], tuple[int | None, tuple[int, ...]]]]] = {}


def _dataset(kind: str, extent):
    """Register a maker that returns (x, labels, class_names) under its function name."""
    def register(make):
        @functools.wraps(make)
        def build(**params) -> Dataset:
            x, labels, class_names = make(**params)
            return Dataset(make.__name__, kind, x, labels, class_names)
        DATASETS[make.__name__] = build
        _EXTENT[make.__name__] = (kind, extent)
        return build
    return register


def _bind(name: str, params: dict) -> dict:
    """Check a name and its parameters; return every parameter with defaults filled in."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    allowed = inspect.signature(DATASETS[name]).parameters
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ValueError(f"unknown parameter(s) {', '.join(unknown)} for dataset {name!r}; allowed: {', '.join(allowed)}")
    return {k: params.get(k, p.default) for k, p in allowed.items()}


def load_dataset(name: str, **params) -> Dataset:
    """Make or read the dataset `name` (a key of DATASETS) with its keyword parameters."""
    params = _bind(name, params)
    return DATASETS[name](**params)


def list_datasets(kind: str | None = None) -> list[str]:
    """Names of the registered datasets, optionally only those of one kind."""
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS} or None, got {kind!r}")
    return [name for name, (k, _) in _EXTENT.items() if kind in (None, k)]


def dataset_info(name: str, **params) -> DatasetInfo:
    """Kind, per-sample shape, size and a one-line description, without making the data."""
    full = _bind(name, params)
    kind, extent = _EXTENT[name]
    size, shape = extent(full)
    description = inspect.getdoc(DATASETS[name]).splitlines()[0]
    return DatasetInfo(name, kind, shape, size, description, full)


def _int(name: str, value, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
        raise ValueError(f"{name} must be an integer between {lo} and {hi}, got {value!r}")
    return int(value)


def _float(name: str, value, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not lo <= value <= hi:
        raise ValueError(f"{name} must be a number between {lo} and {hi}, got {value!r}")
    return float(value)


def _generator(seed) -> torch.Generator:
    return torch.Generator().manual_seed(_int("seed", seed, 0, 2**63 - 1))


# ---------------------------------------------------------------------------------------------
# 2-D toys. Each toy is a noise-free map from uniform variates u in [0, 1)^2 to (points, labels):
# sampling feeds it torch.rand; its normalising frame (mean and scale) is measured once on a
# midpoint grid over u, which gives the shape's true moments almost exactly (and labels drawn
# as floor(K u) exactly in proportion, as GRID is divisible by every K used). Noise of std
# `noise` is added after normalising, so it is in the same units for every toy.

MAX_POINTS = 10_000_000
GRID = 480  # divisible by 2, 3, 4, 6 and 8


@functools.cache
def _toy_frame(toy) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (2,) and one isotropic scale of a toy's noise-free shape; the same for every call."""
    mid = (torch.arange(GRID, dtype=torch.float64) + 0.5) / GRID
    pts, _ = toy(torch.cartesian_prod(mid, mid))
    return pts.mean(0), pts.var(0, correction=0).mean().sqrt()


def _toy_points(toy, n, seed, noise: float = 0.0):
    n, noise = _int("n", n, 1, MAX_POINTS), _float("noise", noise, 0.0, 1.0)  # noise: std, normalised units
    g = _generator(seed)
    pts, labels = toy(_uniform(g, n, 2))
    mean, scale = _toy_frame(toy)
    x = (pts - mean) / scale
    if noise > 0:
        x = x + noise * torch.randn(x.shape, generator=g, dtype=x.dtype)
    return x.float(), labels


def _uniform(g, *shape):
    return torch.rand(*shape, generator=g, dtype=torch.float64)


def _polar(r, angle):
    return torch.stack([r * torch.cos(angle), r * torch.sin(angle)], dim=1)


def _pick(u, k):
    """A uniform variate -> an integer in 0..k-1 (LongTensor)."""
    return (u * k).long().clamp(max=k - 1)


def _swiss_roll_toy(u):
    t = 1.5 * math.pi * (1 + 2 * u[:, 0])  # 1.5 turns, as in the usual 3-D roll seen from its side
    return _polar(t, t), None


def _moons_toy(u):
    labels, t = _pick(u[:, 0], 2), math.pi * u[:, 1]
    upper = torch.stack([torch.cos(t), torch.sin(t)], 1)
    lower = torch.stack([1 - torch.cos(t), 0.5 - torch.sin(t)], 1)
    return torch.where(labels[:, None] == 0, upper, lower), labels


def _gaussians8_toy(u):
    labels = _pick(u[:, 0], 8)
    return _polar(torch.ones_like(u[:, 0]), labels * (math.pi / 4)), labels


def _checkerboard_toy(u):
    x, v = 4 * u[:, 0], 2 * u[:, 1]  # 4x4 board on [0, 4)^2; filled squares have col + row even
    row = 2 * v.floor() + x.floor() % 2
    return torch.stack([x, row + v.frac()], 1), None


def _rings_toy(u):
    labels = _pick(u[:, 0], 6)  # radii 1, 2, 3 take 1, 2, 3 sixths of the points: even density
    labels = (labels >= 1).long() + (labels >= 3).long()
    return _polar(labels + 1.0, 2 * math.pi * u[:, 1]), labels


def _spiral_toy(u):
    labels = _pick(u[:, 0], 2)
    r = 0.15 + 0.85 * u[:, 1]  # starting off-centre keeps the two arms apart
    return _polar(r, 3 * math.pi * r + math.pi * labels), labels


def _points_extent(p):
    return p["n"], (2,)


@_dataset("points", _points_extent)
def swiss_roll(*, n=10000, seed=0, noise=0.05):
    """Swiss roll: a 2-D spiral strip, the classic first target for a diffusion model."""
    x, _ = _toy_points(_swiss_roll_toy, n, seed, noise)
    return x, None, None


@_dataset("points", _points_extent)
def moons(*, n=10000, seed=0, noise=0.05):
    """Two moons: two interleaved half circles (labelled upper/lower)."""
    return *_toy_points(_moons_toy, n, seed, noise), ["upper", "lower"]


@_dataset("points", _points_extent)
def gaussians8(*, n=10000, seed=0, noise=0.1):
    """Eight Gaussians on a circle: a mixture whose modes a sampler must all find."""
    return *_toy_points(_gaussians8_toy, n, seed, noise), [f"mode {k}" for k in range(8)]


@_dataset("points", _points_extent)
def checkerboard(*, n=10000, seed=0):
    """Checkerboard: uniform points on 8 squares of a 4x4 board, with sharp edges."""
    x, _ = _toy_points(_checkerboard_toy, n, seed)
    return x, None, None


@_dataset("points", _points_extent)
def rings(*, n=10000, seed=0, noise=0.03):
    """Rings: three concentric circles (labelled inner/middle/outer)."""
    return *_toy_points(_rings_toy, n, seed, noise), ["inner", "middle", "outer"]


@_dataset("points", _points_extent)
def spiral(*, n=10000, seed=0, noise=0.04):
    """Spiral: two interleaved spiral arms (labelled arm 1/arm 2)."""
    return *_toy_points(_spiral_toy, n, seed, noise), ["arm 1", "arm 2"]


# ---------------------------------------------------------------------------------------------
# Images and signals


def _to_unit_range(u8: np.ndarray, top: float = 255.0) -> torch.Tensor:
    """uint8 array of values 0..top -> float32 tensor in [-1, 1]."""
    half = top / 2  # (v - half) / half is exact at the ends and avoids cancellation near 0
    return torch.tensor(u8, dtype=torch.float32).sub_(half).div_(half)


DIGITS_SIZE = 1797


@_dataset("image", lambda p: (DIGITS_SIZE, (1, p["size"], p["size"])))
def digits(*, size=8):
    """UCI digits: 1797 greyscale 8x8 handwritten digits 0-9 (Alpaydin & Kaynak 1998, CC BY 4.0)."""
    size = _int("size", size, 8, 64)
    with np.load(ASSET_DIR / "digits.npz", allow_pickle=False) as f:
        images, labels = f["images"], f["labels"]
    x = _to_unit_range(images[:, None], top=16.0)  # pixels count inked sub-blocks, 0..16
    if size != 8:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return x, torch.from_numpy(labels).long(), [str(d) for d in range(10)]


SHAPE_CLASSES = ["circle", "square", "triangle"]
# Sizes give all three shapes the area of a circle of radius rho: square half-side rho*sqrt(pi)/2,
# triangle circumradius rho*sqrt(4*pi/(3*sqrt(3))). REACH is each one's farthest point / rho.
_HALF_SIDE = math.sqrt(math.pi) / 2
_CIRCUMRADIUS = math.sqrt(4 * math.pi / (3 * math.sqrt(3)))
_REACH = torch.tensor([1.0, _HALF_SIDE * math.sqrt(2), _CIRCUMRADIUS])
_EDGE_NORMALS = torch.tensor([[math.cos(a), math.sin(a)] for a in (math.pi / 2 + 2 * math.pi * k / 3 for k in range(3))])


def _shape_distance(labels, rho, u, v):
    """Signed distance (image widths; < 0 inside) to each sample's shape, in its own rotated frame."""
    r = rho[:, None, None]
    circle = torch.sqrt(u * u + v * v) - r
    square = torch.maximum(u.abs(), v.abs()) - _HALF_SIDE * r
    edges = u[..., None] * _EDGE_NORMALS[:, 0] + v[..., None] * _EDGE_NORMALS[:, 1]
    triangle = edges.amax(-1) - (_CIRCUMRADIUS / 2) * r  # inradius = circumradius / 2
    lab = labels[:, None, None]
    return torch.where(lab == 0, circle, torch.where(lab == 1, square, triangle))


@_dataset("image", lambda p: (p["n"], (3, p["size"], p["size"])))
def shapes(*, n=6000, seed=0, size=32):
    """Shapes: coloured circles, squares and triangles on a dark plain ground (labelled)."""
    n, size = _int("n", n, 1, 60_000), _int("size", size, 8, 64)
    g = _generator(seed)
    labels = (torch.arange(n) % 3)[torch.randperm(n, generator=g)]  # classes balanced to within one
    rho = 0.12 + 0.16 * torch.rand(n, generator=g)  # equal-area radius, in image widths
    reach = (rho * _REACH[labels])[:, None]
    centre = reach + (1 - 2 * reach) * torch.rand(n, 2, generator=g)  # the whole shape stays inside
    angle = 2 * math.pi * torch.rand(n, generator=g)
    fg = torch.rand(n, 3, generator=g)
    fg = fg / fg.amax(1, keepdim=True).clamp_min(1e-6) * (0.6 + 0.4 * torch.rand(n, 1, generator=g))
    bg = 0.25 * torch.rand(n, 1, generator=g)  # dark grey, so that every (bright) colour stands out

    pix = (torch.arange(size) + 0.5) / size  # pixel centres in image widths
    x = torch.empty(n, 3, size, size)
    for lo in range(0, n, 1024):  # bounded memory for large n
        s = slice(lo, lo + 1024)
        dx = pix[None, None, :] - centre[s, 0, None, None]
        dy = pix[None, :, None] - centre[s, 1, None, None]
        cos, sin = torch.cos(angle[s])[:, None, None], torch.sin(angle[s])[:, None, None]
        d = _shape_distance(labels[s], rho[s], cos * dx + sin * dy, cos * dy - sin * dx)
        cover = (0.5 - d * size).clamp(0, 1)[:, None]  # anti-aliasing: the edge blends over one pixel
        img = bg[s, :, None, None] + (fg[s, :, None, None] - bg[s, :, None, None]) * cover
        x[s] = img * 2 - 1
    return x, labels, list(SHAPE_CLASSES)


@_dataset("signal", lambda p: (p["n"], (1, p["length"])))
def signals(*, n=8000, length=64, seed=0):
    """Signals: 1-D sequences, each a sum of 1-3 sine waves of random frequency, phase and amplitude."""
    n, length = _int("n", n, 1, 200_000), _int("length", length, 8, 1024)
    g = _generator(seed)
    tones = torch.randint(1, 4, (n,), generator=g)
    amp = (0.2 + 0.8 * _uniform(g, n, 3)) * (torch.arange(3) < tones[:, None])
    max_cycles = min(6.0, length / 8)  # at least 8 samples per period
    cycles = 0.5 + (max_cycles - 0.5) * _uniform(g, n, 3)  # per window
    phase = 2 * math.pi * _uniform(g, n, 3)
    t = torch.arange(length, dtype=torch.float64) / length
    waves = amp[..., None] * torch.sin(2 * math.pi * cycles[..., None] * t + phase[..., None])
    x = waves.sum(1) / amp.sum(1).clamp_min(1.0)[:, None]  # |x| <= 1 whatever the amplitudes
    return x.float()[:, None], tones - 1, ["1 tone", "2 tones", "3 tones"]


# ---------------------------------------------------------------------------------------------
# Files on disk (see core.datafiles for the formats; core.download can fetch them)


def _need_path(name: str, path, expected: str) -> Path:
    if path is None or str(path).strip() == "":
        raise ValueError(f"dataset {name!r} needs path=: {expected}")
    return Path(path).expanduser()


_IDX_SIZES = {"train": 60000, "test": 10000}
_IDX_FOLDER = "a folder holding train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-... (optionally .gz)"
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def _idx_dataset(name, path, split, class_names):
    images, labels = datafiles.read_mnist(_need_path(name, path, _IDX_FOLDER), split)
    return _to_unit_range(images[:, None]), torch.from_numpy(labels), class_names


@_dataset("image", lambda p: (_IDX_SIZES.get(p["split"]), (1, 28, 28)))
def mnist(*, path=None, split="train"):
    """MNIST: 28x28 greyscale handwritten digits, read from IDX files on disk (60000 train, 10000 test)."""
    return _idx_dataset("mnist", path, split, [str(d) for d in range(10)])


@_dataset("image", lambda p: (_IDX_SIZES.get(p["split"]), (1, 28, 28)))
def fashion_mnist(*, path=None, split="train"):
    """Fashion-MNIST: 28x28 greyscale clothing photos, read from IDX files on disk (60000 train, 10000 test)."""
    return _idx_dataset("fashion_mnist", path, split, list(FASHION_CLASSES))


@_dataset("image", lambda p: ({"train": 50000, "test": 10000}.get(p["split"]), (3, 32, 32)))
def cifar10(*, path=None, split="train"):
    """CIFAR-10: 32x32 colour photos in 10 classes, read from the python batches on disk (50000 train, 10000 test)."""
    folder = _need_path("cifar10", path, "a folder holding data_batch_1..5 and test_batch, or cifar-10-batches-py")
    images, labels = datafiles.read_cifar10(folder, split)
    return _to_unit_range(images), torch.from_numpy(labels), list(datafiles.CIFAR10_CLASSES)


@_dataset("image", lambda p: (None, (p["channels"], p["size"], p["size"])))
def image_folder(*, path=None, size=32, channels=3, max_pixels=datafiles.MAX_PIXELS, sha256=None):
    """Image folder: your own PNG/JPEG files (searched recursively), resized and centre-cropped to a square."""
    size, max_pixels = _int("size", size, 8, 256), _int("max_pixels", max_pixels, 1, 2**32)
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (greyscale) or 3 (RGB), got {channels!r}")
    if sha256 is not None:  # a copy kept by the app: found by its hash, and checked to be those images
        path = _locate("image_folder", {"path": path, "sha256": sha256})["path"]
    folder = _need_path("image_folder", path, "a folder of .png/.jpg/.jpeg images (subfolders become classes)")
    if sha256 is not None and datafiles.folder_sha256(folder) != str(sha256).lower():
        raise datafiles.DataFileError(f"{folder}: holds other images than the ones recorded (SHA-256 "
                                      f"{str(sha256)[:12]}...)")
    images, labels, class_names, skipped = datafiles.read_image_folder(folder, size, channels, max_pixels)
    if skipped:
        listed = "; ".join(f"{p}: {why}" for p, why in skipped[:5]) + ("; ..." if len(skipped) > 5 else "")
        warnings.warn(f"image_folder skipped {len(skipped)} unreadable file(s) under {folder}: {listed}", stacklevel=3)
    return _to_unit_range(images), None if labels is None else torch.from_numpy(labels), class_names


def normalise_points(xy) -> torch.Tensor:
    """(N, 2) points -> float32 with zero mean and one isotropic unit scale, as the 2-D toys have.

    The scale is the root of the mean per-axis variance, so a shape keeps its aspect ratio and
    fills about the same [-2, 2] square as swiss_roll or moons, where the schedule and nets fit.
    """
    x = torch.as_tensor(np.asarray(xy, dtype=np.float64)).reshape(-1, 2)
    centred = x - x.mean(0)
    scale = centred.var(0, correction=0).mean().sqrt()
    if not scale > 1e-12:
        raise ValueError(f"the {len(x)} points all lie at one place; a shape needs points that differ")
    return (centred / scale).float()


def _points_file_extent(p):
    return None, (2,)


@_dataset("points", _points_file_extent)
def points_file(*, path=None, sha256=None):
    """Your own 2-D points: a drawing or a CSV of x,y rows, centred and scaled like the toys."""
    if sha256 is not None:  # the run's record of the file: a changed file would silently be other data
        path = _locate("points_file", {"path": path, "sha256": sha256})["path"]
    path = _need_path("points_file", path, f"a CSV file with {datafiles.POINTS_FORMAT}")
    if sha256 is not None:
        digest = hashlib.sha256(path.read_bytes()[:datafiles.MAX_POINTS_BYTES + 1]).hexdigest()
        if digest != str(sha256).lower():
            raise datafiles.DataFileError(f"{path}: holds other points than the ones recorded (SHA-256 "
                                          f"{digest[:12]}..., expected {str(sha256)[:12]}...)")
    x = normalise_points(datafiles.read_points_csv(path))
    # A fixed shuffle: the file may be in drawing or raster order, and views show its first rows.
    return x[torch.randperm(len(x), generator=torch.Generator().manual_seed(0))], None, None


# ---------------------------------------------------------------------------------------------
# Where a checkpoint's own data lives. The app keeps what a run was trained on in its runs folder,
# named by content: uploaded images in <runs>/data/<sha256>/, points in <runs>/points/. A config
# names them with their SHA-256 ({"path": ".../data/<sha256>", "sha256": ...}; the path may also be
# relative to the runs folder, "data/<sha256>"): where the path does not lead to them, they are
# found by the hash in this machine's runs folder, so a checkpoint finds its data wherever it is
# kept, and knows when it is not there. A config is data that people share, so the app reads a
# checkpoint's data only from these folders and the shipped assets (`checkpoint_data`);
# `load_dataset` itself reads any path it is given (the command line).

DATA_FOLDER = "data"      # <runs>/data/<sha256>/: the images of an upload a run was trained on
POINTS_FOLDER = "points"  # <runs>/points/points-<first 16 hex of sha256>.csv: 2-D points
RUNS_ENV = "DIFFUSION_EXPLORER_RUNS"  # the runs folder; in the environment, so training processes see it
SHIPPED = ASSET_DIR.parent  # assets/: data that ships with the app
_SHA256 = re.compile(r"[0-9a-f]{64}")
UPLOAD_GONE = ("this checkpoint was trained on uploaded images that are no longer on this machine; Evaluate and "
               "the quiz need them (Reverse still samples from it)")
POINTS_GONE = ("this checkpoint was trained on 2-D points that are not on this machine; Evaluate and the grey "
               "reference need them (open the checkpoint's bundle to bring them)")


def data_root() -> Path:
    """The runs folder whose data/ and points/ hold the data checkpoints were trained on."""
    return Path(os.environ.get(RUNS_ENV) or "runs").expanduser().resolve()


def set_data_root(runs_dir: str | Path) -> Path:
    """Make `runs_dir` the data root of this process and of the processes it starts; returns it resolved."""
    root = Path(runs_dir).expanduser().resolve()
    os.environ[RUNS_ENV] = str(root)
    return root


def points_name(sha256: str) -> str:
    """The file name of the points with this SHA-256 in the points folder."""
    return f"points-{sha256[:16]}.csv"


def data_folders(root: str | Path | None = None) -> tuple[Path, ...]:
    """The folders a checkpoint's data may come from: <runs>/data, <runs>/points and the shipped assets."""
    root = Path(root).expanduser().resolve() if root is not None else data_root()
    return root / DATA_FOLDER, root / POINTS_FOLDER, SHIPPED


def _within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _canonical(name: str, sha256: str, root: Path) -> Path:
    return root / POINTS_FOLDER / points_name(sha256) if name == "points_file" else root / DATA_FOLDER / sha256


def _locate(name: str, params: dict, root: str | Path | None = None, confine: bool = False) -> dict:
    """`params` with the data's path made absolute; DataGoneError / DataPathError where it cannot be read.

    A path with a sha256 (points_file, image_folder) is content-addressed: when it is relative (the
    app's form) or not where it says, the data is looked up by its hash in the runs folder. With
    `confine`, any other path must lie inside `data_folders(root)`.
    """
    path, sha = params.get("path"), params.get("sha256")
    if path is None or str(path).strip() == "":
        return dict(params)
    root = Path(root).expanduser().resolve() if root is not None else data_root()
    hashed = name in ("points_file", "image_folder") and sha is not None
    if hashed and not (isinstance(sha, str) and _SHA256.fullmatch(sha.lower())):
        raise datafiles.DataFileError(f"{name}: sha256 must be 64 hexadecimal digits, got {str(sha)[:80]!r}")
    given = Path(str(path)).expanduser()
    if not given.is_absolute() and (confine or hashed) and given.parts[0] in (DATA_FOLDER, POINTS_FOLDER):
        if ".." in given.parts:
            raise datafiles.DataPathError(f"{name}: the data path {str(path)[:200]!r} climbs out of its folder "
                                          "with '..'; that is never allowed")
        where = (root / given).resolve()  # the app's form: relative to the runs folder
    elif given.is_absolute() or not confine:
        where = given.resolve()  # a path given on the command line: as it reads here
    else:
        raise datafiles.DataPathError(f"{name}: the data path {str(path)[:200]!r} is not allowed; a checkpoint's "
                                      f"data path lies in {DATA_FOLDER}/ or {POINTS_FOLDER}/ of the runs folder")
    inside = any(_within(where, f.resolve()) for f in data_folders(root))
    if where.exists() and (inside or not confine):
        return {**params, "path": str(where)}
    if hashed:
        found = _canonical(name, sha.lower(), root)
        if found.exists():
            return {**params, "path": str(found)}
        raise datafiles.DataGoneError(POINTS_GONE if name == "points_file" else UPLOAD_GONE)
    if name == "image_folder" and (inside or given.name.startswith("explorer-upload-")):
        if not where.exists():  # an upload's temporary folder: gone once the app that made it exited
            raise datafiles.DataGoneError(UPLOAD_GONE)
    if confine and not inside:
        raise datafiles.DataPathError(
            f"this checkpoint's config names data at {str(path)[:200]!r}, outside the app's data folders; a "
            f"checkpoint may only name data in {DATA_FOLDER}/ or {POINTS_FOLDER}/ of the runs folder or in the "
            "shipped assets, so it was not read")
    return {**params, "path": str(where)}


def checkpoint_data(data: DataConfig, root: str | Path | None = None) -> DataConfig:
    """A checkpoint's data config with its path found and confined to `data_folders(root)`.

    Raises DataGoneError when the data is not on this machine, DataPathError when the config names
    a path elsewhere (both DataFileError, a ValueError, with a message for the user).
    """
    params = dict(data.params)
    if "path" in params and data.name in DATASETS:
        params = _locate(data.name, params, root, confine=True)
    return DataConfig(data.name, params)
