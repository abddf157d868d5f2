"""Write tiny dataset files in the real on-disk formats, for the data loader and download tests."""
import gzip
import pickle
from pathlib import Path

import numpy as np


def idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
    """An IDX unsigned-byte file: magic 0x0800 | ndim, big-endian uint32 sizes, then the bytes."""
    array = np.asarray(array, dtype=np.uint8)
    magic = (0x08 << 8) | array.ndim if magic is None else magic
    head = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return head + array.tobytes()


def write_idx(path: Path, array: np.ndarray, gz: bool = False, magic: int | None = None) -> Path:
    data = idx_bytes(array, magic)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def tiny_mnist(folder: Path, n_train: int = 12, n_test: int = 5, gz: bool = False, seed: int = 0):
    """Write train and t10k image/label IDX files; returns {split: (images, labels)}."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, prefix, n in (("train", "train", n_train), ("test", "t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        suffix = ".gz" if gz else ""
        write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images, gz)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels, gz)
        out[split] = (images, labels)
    return out


def write_cifar_batch(path: Path, data: np.ndarray, labels: list[int]) -> Path:
    """A CIFAR-10 python batch: a pickled dict with bytes keys, as the published files hold."""
    batch = {b"batch_label": b"testing batch", b"labels": list(labels), b"data": data,
             b"filenames": [b"img_%d.png" % i for i in range(len(labels))]}
    path.write_bytes(pickle.dumps(batch, protocol=2))
    return path


def tiny_cifar10(folder: Path, per_batch: int = 3, seed: int = 0):
    """Write data_batch_1..5 and test_batch; returns {split: (images (N,3,32,32), labels)}."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    parts = {"train": [], "test": []}
    names = [(f"data_batch_{i}", "train") for i in range(1, 6)] + [("test_batch", "test")]
    for name, split in names:
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, per_batch).tolist()
        write_cifar_batch(folder / name, data, labels)
        parts[split].append((data.reshape(-1, 3, 32, 32), np.array(labels)))
    return {split: (np.concatenate([p[0] for p in ps]), np.concatenate([p[1] for p in ps]))
            for split, ps in parts.items()}
