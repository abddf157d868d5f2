"""Rebuild digits.npz from the copy of the UCI digits that ships inside scikit-learn.

Run once, from the repository root: `python assets/data/make_digits.py` (needs scikit-learn,
which the app itself does not). Writes images as uint8 (1797, 8, 8) with values 0..16 and
labels as int64 (1797,).
"""
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

digits = load_digits()
images = digits.images.astype(np.uint8)
assert images.shape == (1797, 8, 8) and images.max() == 16 and np.array_equal(images, digits.images)
np.savez_compressed(Path(__file__).with_name("digits.npz"), images=images, labels=digits.target.astype(np.int64))
