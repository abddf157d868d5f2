"""Optional downloads of MNIST, Fashion-MNIST and CIFAR-10, for users who are online.

Nothing in the app downloads on its own: call these once, then point `load_dataset` at the
folder (`load_dataset("mnist", path=dest)`). Files are written to a temporary name beside the
target and renamed only when complete and matching their published MD5, so an interrupted or
corrupted download never leaves a file that looks finished.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

IDX_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
MIRRORS = {
    "mnist": "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "fashion_mnist": "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
}
MD5 = {  # as published with the data sets (and used by torchvision)
    "mnist": dict(zip(IDX_FILES, ("f68b3c2dcbeaaa9fbdd348bbdeb94873", "d53e105ee54ea40749a09fcbcd1e9432",
                                  "9fb629c4189551a2d022fa330f9573f3", "ec29112dd5afa0611ce80d1b7f02629c"))),
    "fashion_mnist": dict(zip(IDX_FILES, ("8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe",
                                          "bef4ecab320f06d8554ea6380940ec79", "bb300cfdad3c16e7a12a480ee83cd310"))),
}
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_FOLDER = "cifar-10-batches-py"
_CHUNK = 1 << 20


def md5sum(path: str | Path) -> str:
    """Hex MD5 of a file, read in chunks."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while block := f.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _progress(name: str, done: int, total: int) -> None:
    of = f" / {total / 2**20:.1f} MiB ({100 * done / total:.0f}%)" if total else " MiB"
    print(f"\r{name}: {done / 2**20:.1f}{of}", end="", file=sys.stderr, flush=True)


def fetch(url: str, dest: str | Path, md5: str | None = None, *, quiet: bool = False, timeout: float = 60.0) -> Path:
    """Download `url` to the file `dest` atomically, checking `md5` when given; keep a good existing file."""
    dest = Path(dest)
    if dest.is_file() and (md5 is None or md5sum(dest) == md5):
        if not quiet:
            print(f"{dest.name}: already downloaded", file=sys.stderr)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        digest = hashlib.md5(usedforsecurity=False)
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response:
                    total, done = int(response.headers.get("Content-Length") or 0), 0
                    while block := response.read(_CHUNK):
                        out.write(block)
                        digest.update(block)
                        done += len(block)
                        if not quiet:
                            _progress(dest.name, done, total)
            except OSError as e:  # urllib's URLError and HTTPError included
                raise OSError(f"could not download {url}: {e}") from e
        if not quiet:
            print(file=sys.stderr)
        if md5 is not None and digest.hexdigest() != md5:
            raise ValueError(f"{url}: checksum mismatch (md5 {digest.hexdigest()}, expected {md5}); "
                             "the download was discarded")
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dest


def download_mnist(dest: str | Path, kind: str = "mnist", *, base_url: str | None = None,
                   checksums: dict[str, str | None] | None = None, quiet: bool = False) -> Path:
    """Fetch the four gzipped IDX files of MNIST or Fashion-MNIST into the folder `dest`.

    base_url replaces the public mirror (any URL urllib opens, file:// included); checksums maps
    file names to MD5 (default: the published ones; None for a name skips its check).
    """
    if kind not in MIRRORS:
        raise ValueError(f"kind must be one of {list(MIRRORS)}, got {kind!r}")
    base = (base_url or MIRRORS[kind]).rstrip("/") + "/"
    sums = MD5[kind] if checksums is None else checksums
    for name in IDX_FILES:
        fetch(base + name, Path(dest) / name, sums.get(name), quiet=quiet)
    return Path(dest)


def download_cifar10(dest: str | Path, *, url: str = CIFAR10_URL, md5: str | None = CIFAR10_MD5,
                     quiet: bool = False) -> Path:
    """Fetch and unpack cifar-10-python.tar.gz into `dest`; returns dest/cifar-10-batches-py."""
    dest = Path(dest)
    folder = dest / CIFAR10_FOLDER
    if folder.is_dir():
        if not quiet:
            print(f"{folder}: already there", file=sys.stderr)
        return folder
    archive = fetch(url, dest / "cifar-10-python.tar.gz", md5, quiet=quiet)
    staging = Path(tempfile.mkdtemp(dir=dest, prefix=".cifar-10-unpack."))
    try:
        with tarfile.open(archive, "r:*") as tar:
            tar.extractall(staging, filter="data")  # refuses absolute paths, '..', links out, devices
        if not (staging / CIFAR10_FOLDER).is_dir():
            raise ValueError(f"{archive}: no {CIFAR10_FOLDER}/ inside; expected the CIFAR-10 python archive")
        os.replace(staging / CIFAR10_FOLDER, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    archive.unlink()  # the unpacked batches are all the loader needs
    return folder
