"""The app's temporary files: every folder under one root per process, removed at exit and after a crash.

The root is `<tmp>/diffusion-explorer-<pid>-<random>/`, made on first use. At exit (atexit) the
process removes its own; when this module is imported (the app's start) and when a root is made,
the roots of processes that are gone (killed, crashed) are removed, recognised by the prefix, the
pid in the name and the owner of the folder.
Gradio's own upload and output cache is Gradio's business (`gr.Blocks(delete_cache=...)`).
"""
from __future__ import annotations

import atexit
import os
import re
import shutil
import tempfile
import threading
from pathlib import Path

PREFIX = "diffusion-explorer-"
_NAME = re.compile(re.escape(PREFIX) + r"(\d+)-[0-9a-z_]+")
_lock = threading.Lock()
_root: tuple[int, Path] | None = None  # (owning pid, folder): a forked child makes its own


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    except OSError:
        return False
    return True


def sweep_stale(base: str | os.PathLike | None = None) -> list[Path]:
    """Remove the roots under `base` (default: the system temp folder) of our processes that are gone; returns them."""
    base = Path(base or tempfile.gettempdir())
    removed = []
    try:
        entries = list(base.iterdir())
    except OSError:
        return []
    for p in entries:
        m = _NAME.fullmatch(p.name)
        if m is None or p.is_symlink() or not p.is_dir():
            continue
        pid = int(m.group(1))
        try:
            mine = p.stat().st_uid == os.getuid() if hasattr(os, "getuid") else True
        except OSError:
            continue
        if not mine or pid == os.getpid() or _pid_alive(pid):
            continue
        shutil.rmtree(p, ignore_errors=True)
        removed.append(p)
    return removed


def root() -> Path:
    """This process's temporary root, made (and stale ones swept) on first use."""
    global _root
    with _lock:
        if _root is None or _root[0] != os.getpid() or not _root[1].is_dir():
            sweep_stale()
            folder = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-"))
            _root = (os.getpid(), folder)
        return _root[1]


def mkdtemp(prefix: str = "tmp-") -> str:
    """A new folder under this process's root (same use as `tempfile.mkdtemp(prefix=...)`)."""
    return tempfile.mkdtemp(prefix=prefix, dir=root())


def cleanup() -> None:
    """Remove this process's root (runs at exit; a forked child leaves its parent's alone)."""
    global _root
    with _lock:
        if _root is not None and _root[0] == os.getpid():
            shutil.rmtree(_root[1], ignore_errors=True)
            _root = None


atexit.register(cleanup)
sweep_stale()  # at start-up (the app imports this with its tabs), not only when a first folder is made
