"""A benchmark's scratch folder (the app's checkpoint folder, a speed book), removed when the script exits."""
from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path


def scratch_dir(prefix: str = "bench-") -> Path:
    """A new empty folder, removed with what is in it when the interpreter exits (also after an error)."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder
