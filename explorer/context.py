"""What every tab shares: the launch settings and the app-wide, read-only resources.

Per-user values (the chosen image, a noise draw, playback position) live in `gr.State` inside
each tab, never here. What lives here is either read-only (settings, sample images, loaded
checkpoints) or guards itself with a lock (the checkpoint cache, the job manager).
"""
from __future__ import annotations

import math
import sys
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from core.data import set_data_root
from core.device import pick_device

from .images import sample_images

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "assets"


@dataclass(frozen=True)
class Settings:
    """How the app was launched. Paths may be relative (to the working directory)."""

    host: str = "127.0.0.1"
    port: int = 7860
    device: str = "auto"
    share: bool = False
    runs_dir: Path = Path("runs")                     # where the user's own checkpoints go
    shipped_checkpoints: Path = ASSETS / "checkpoints"  # the pretrained models that ship with the app
    images_dir: Path = ASSETS / "images"
    extra_checkpoint_dirs: tuple[Path, ...] = field(default_factory=tuple)

    @property
    def checkpoint_dirs(self) -> tuple[Path, ...]:
        """Every folder searched for checkpoints: shipped first, then the user's."""
        dirs = [Path(self.shipped_checkpoints), Path(self.runs_dir), *map(Path, self.extra_checkpoint_dirs)]
        return tuple(dict.fromkeys(dirs))  # keep order, drop duplicates


class AppContext:
    """Shared, read-only resources handed to every tab's `build(ctx)`."""

    MAX_LOADED = 8  # checkpoints kept in memory; the least recently used is dropped
    LISTING_TTL = 2.0  # seconds a folder scan is reused: Play and every dropdown must not re-read each config.json

    def __init__(self, settings: Settings):
        self.settings = settings
        set_data_root(settings.runs_dir)  # where checkpoints' data/ and points/ are (training processes too)
        self.device: torch.device = pick_device(settings.device)
        self.images: dict[str, Path] = sample_images(settings.images_dir)
        self.jobs: Any = None  # the background job manager, set by the app when it exists
        self._lock = threading.Lock()
        self._models: OrderedDict[tuple, tuple] = OrderedDict()
        self._listing: tuple[float, list[dict]] = (-math.inf, [])
        self._listing_lock = threading.Lock()
        self._when_serving: list[Callable[[], None]] = []

    def when_serving(self, fn: Callable[[], None]) -> None:
        """Run `fn` once the app serves its page (`serve_after_launch`): work the first page does not
        need (a spare training process, warming a model) then does not slow start-up down."""
        self._when_serving.append(fn)

    def serve_after_launch(self, demo, poll_s: float = 0.05, give_up_s: float = 3600.0) -> threading.Thread:
        """Start a thread that waits until `demo` is launched, then runs the `when_serving` work in order
        (an app that is built and never launched, as in tests of its parts, runs none of it)."""
        def wait_then_run():
            deadline = time.monotonic() + give_up_s
            while not getattr(demo, "is_running", False):
                if time.monotonic() > deadline:
                    return
                time.sleep(poll_s)
            for fn in self._when_serving:
                try:
                    fn()
                except Exception as e:  # noqa: BLE001 - deferred extras must never take the app down
                    print(f"Start-up work {getattr(fn, '__name__', fn)!r} failed: {e}", file=sys.stderr)

        thread = threading.Thread(target=wait_then_run, name="after-launch", daemon=True)
        thread.start()
        return thread

    def checkpoints(self) -> list[dict]:
        """Every checkpoint found now under `settings.checkpoint_dirs` (rescanned on each call).

        Entries are `core.checkpoint.list_checkpoints` records plus "root" (the folder searched);
        "label" is "<root name>/<name>", unique across the folders.
        """
        from core.checkpoint import list_checkpoints

        found = []
        for root in self.settings.checkpoint_dirs:
            for entry in list_checkpoints(root):
                found.append(dict(entry, root=str(root), label=f"{Path(root).name}/{entry['name']}"))
        return found

    def samplable_checkpoints(self, fresh: bool = False) -> list[dict]:
        """The checkpoints that can be sampled (their sample shape is known), scanned at most every
        LISTING_TTL seconds, or now when `fresh` (after a save, or the user's refresh)."""
        with self._listing_lock:
            stamp, entries = self._listing
            if fresh or time.monotonic() - stamp > self.LISTING_TTL:
                entries = [e for e in self.checkpoints() if e.get("sample_shape")]
                self._listing = (time.monotonic(), entries)
            return entries

    def find_checkpoint(self, path) -> dict | None:
        """The samplable listing entry whose path is `path`, rescanning once if it is not in the cached
        scan (a checkpoint saved a moment ago); None if it is not listed at all."""
        for fresh in (False, True):
            for e in self.samplable_checkpoints(fresh):
                if e["path"] == str(path):
                    return e
        return None

    def load_checkpoint(self, path: str | Path) -> tuple:
        """(model, config, meta) for the checkpoint directory `path`, loaded once and cached.

        The model is in eval mode with gradients off: callers share it and must not train it.
        A checkpoint rewritten on disk (newer weights file) is loaded afresh.
        """
        from core.checkpoint import load

        path = Path(path).resolve()
        weights = path / "model.safetensors"
        key = (str(path), weights.stat().st_mtime_ns if weights.exists() else None)
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
        model, config, meta = load(path, self.device)  # outside the lock: loading may take a while
        model.eval().requires_grad_(False)
        with self._lock:
            self._models[key] = (model, config, meta)
            self._models.move_to_end(key)
            while len(self._models) > self.MAX_LOADED:
                self._models.popitem(last=False)
        return model, config, meta
