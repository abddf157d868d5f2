"""Recorded reverse trajectories: replay a run already computed instead of computing it again.

Two sources, looked up in this order by `Recordings.get(spec)`:

- **Runs computed in this app** (any session): every complete trajectory is kept in memory,
  least recently used dropped first once their arrays pass `budget` bytes. Replaying, scrubbing
  or coming back to a setting is then instant, for every student on the same server.
- **Recordings shipped beside a checkpoint**: `<checkpoint>/trajectory.npz`, the run of the
  Reverse tab's default setting (see `save`), so the first Play of a shipped model shows its first
  frame at once and plays at full speed on any laptop, offline; and `<checkpoint>/trajectory-<key>.npz`,
  the runs a shipped lesson's stops play (DDPM's 1000 steps, two samplers side by side) and those
  opened lesson bundles carry, named by their setting (`file_name`). A recording is used only when
  its setting is exactly the one asked for and the checkpoint's weights are those it was recorded
  from (their SHA-256 is in the file); anything else is computed live as before.

A recording file holds plain arrays and a JSON string (`np.load(allow_pickle=False)`): nothing in
it is executed or unpickled.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np

from .trajectory import Lane, Snapshot, Trajectory

FILE = "trajectory.npz"
# 2: runs computed with the checkpoint's own x0 clip (format 1 clipped only images); 3: each lane says
# its timestep spacing. Older files are not read, so such a run is computed live until
# `python -m explorer.record_defaults` records it again
FORMAT = 3
DEFAULT_BUDGET = 192 * 2**20   # bytes of arrays kept in memory over all recorded runs


def weights_digest(checkpoint: str | Path) -> str:
    """SHA-256 of a checkpoint's model.safetensors ('' when it has none)."""
    path = Path(checkpoint) / "model.safetensors"
    if not path.is_file():
        return ""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def setting(spec) -> dict:
    """The part of a Spec a shipped recording must match (the checkpoint is matched by its weights)."""
    return {"kind": spec.kind, "seed": spec.seed, "n": spec.n,
            "lanes": [[lane.sampler, lane.steps, lane.eta, lane.spacing] for lane in spec.lanes]}


def file_name(setting: dict) -> str:
    """The name of a recording of `setting` (a `setting(spec)`, or a recording's meta["setting"]) other than
    the default run: named by the setting it must match, so any number of them can lie beside a checkpoint."""
    return f"trajectory-{hashlib.sha256(json.dumps(setting, sort_keys=True).encode()).hexdigest()[:12]}.npz"


def lesson_file(spec) -> Path:
    """Where a recording of `spec` other than the default run lies beside its checkpoint (`file_name`)."""
    return Path(spec.checkpoint) / file_name(setting(spec))


def _suffix(lane: int) -> str:
    """Array names of a lane: the first lane's plain ('x_t', ...), as files of one lane always had them."""
    return "" if lane == 0 else f"_{lane}"


def save(traj: Trajectory, spec, path: str | Path) -> Path:
    """Write a complete trajectory as a recording (atomically: a temporary file, then rename)."""
    if not traj.complete:
        raise ValueError("only a complete run can be saved as a recording")
    meta = {"format": FORMAT, "setting": setting(spec), "weights_sha256": weights_digest(spec.checkpoint),
            "label": traj.lanes[0].label, "labels": [lane.label for lane in traj.lanes], "stride": traj.stride,
            "ticks": traj.ticks}
    arrays = {}
    for lane in range(len(traj.lanes)):
        snaps = [frame[lane] for frame in traj.frames]
        end = _suffix(lane)
        arrays.update({name + end: np.stack([getattr(s, name) for s in snaps]) for name in ("x_t", "x0", "eps")})
        arrays.update({name + end: np.array([getattr(s, name) for s in snaps]) for name in ("i", "n", "t")})
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=".recording-", suffix=".npz", dir=path.parent)
    os.close(fd)
    try:
        os.chmod(tmp, 0o644)  # a file to ship and share, not a private temporary one
        np.savez_compressed(tmp, meta=np.array(json.dumps(meta)), **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load(path: str | Path) -> tuple[dict, Trajectory]:
    """(meta, Trajectory) of a recording file; ValueError says what is wrong with a bad one."""
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            arrays = {name: z[name] for name in z.files if name != "meta"}
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise ValueError(f"{path}: not a readable recording ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{path}: recording format {meta.get('format') if isinstance(meta, dict) else None!r}, "
                         f"this app reads {FORMAT}")
    try:
        s = meta["setting"]
        labels = meta.get("labels") or [meta.get("label")]
        lanes = tuple(Lane(str(sampler), str(labels[k] if k < len(labels) and labels[k] else sampler), int(steps),
                           None if eta is None else float(eta), str(spacing))
                      for k, (sampler, steps, eta, spacing) in enumerate(s["lanes"]))
        if not lanes:
            raise ValueError("no lanes")
        traj = Trajectory(s["kind"], lanes)
        traj.stride, traj.ticks, traj.complete = int(meta["stride"]), int(meta["ticks"]), True
        per_lane = [[arrays[name + _suffix(k)] for name in ("i", "n", "t", "x_t", "x0", "eps")]
                    for k in range(len(lanes))]
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{path}: the recording's description is incomplete ({e!r})") from None
    frames = len(per_lane[0][0])
    if not (frames and all(len(a) == frames for lane in per_lane for a in lane)):
        raise ValueError(f"{path}: the recording's arrays disagree in length")
    traj.frames = [tuple(Snapshot(int(i[k]), int(n[k]), int(t[k]), x_t[k], x0[k], eps[k])
                         for i, n, t, x_t, x0, eps in per_lane) for k in range(frames)]
    traj.nbytes = sum(a.nbytes for lane in per_lane for a in lane[3:])
    return meta, traj


class Recordings:
    """Complete trajectories by Spec: an LRU in memory over all sessions, then shipped recording files."""

    def __init__(self, budget: int = DEFAULT_BUDGET, shipped: bool = True):
        self.budget = budget
        self.shipped = shipped                    # False: never read recording files (to make them)
        self._runs: OrderedDict = OrderedDict()   # Spec -> Trajectory
        self._files: dict = {}                    # (path, mtime_ns) -> (meta, Trajectory) or None
        self._digests: dict = {}                  # (weights path, mtime_ns, size) -> sha256
        self._lock = threading.Lock()

    @property
    def nbytes(self) -> int:
        return sum(t.nbytes for t in self._runs.values())

    def __len__(self) -> int:
        return len(self._runs)

    def clear(self) -> None:
        with self._lock:
            self._runs.clear()
            self._files.clear()

    def put(self, spec, traj: Trajectory) -> None:
        """Keep a complete trajectory (an incomplete one is ignored); drop the least recently used past the budget."""
        if not traj.complete or traj.nbytes > self.budget:
            return
        with self._lock:
            self._runs[spec] = traj
            self._runs.move_to_end(spec)
            total = sum(t.nbytes for t in self._runs.values())
            while total > self.budget and len(self._runs) > 1:
                _, old = self._runs.popitem(last=False)
                total -= old.nbytes

    def get(self, spec) -> Trajectory | None:
        """The recorded trajectory of exactly this setting, or None (then it is computed live)."""
        with self._lock:
            traj = self._runs.get(spec)
            if traj is not None:
                self._runs.move_to_end(spec)
                return traj
        traj = self._shipped(spec) if self.shipped else None
        if traj is not None:
            self.put(spec, traj)
        return traj

    def beside(self, checkpoint, name: str = FILE) -> tuple[dict, Trajectory] | None:
        """(meta, trajectory) of the recording shipped beside a checkpoint (by default its default run),
        when it was made with the checkpoint's present weights; None otherwise (no file, a broken one,
        other weights). Files and digests are read once and kept."""
        path = Path(checkpoint) / name
        try:
            key = (str(path), path.stat().st_mtime_ns)
        except OSError:
            return None
        with self._lock:
            cached = self._files.get(key, False)
        if cached is False:
            try:
                cached = load(path)
            except (OSError, ValueError, TypeError):
                cached = None   # a broken recording is never used: the run is computed live instead
            with self._lock:
                self._files[key] = cached
        if cached is None or cached[0].get("weights_sha256") != self._digest(str(checkpoint)):
            return None
        return cached

    def _shipped(self, spec) -> Trajectory | None:
        for name in (FILE, lesson_file(spec).name):
            found = self.beside(spec.checkpoint, name)
            if found is not None and found[0].get("setting") == setting(spec):
                return found[1]
        return None

    def _digest(self, checkpoint: str) -> str:
        weights = Path(checkpoint) / "model.safetensors"
        try:
            st = weights.stat()
        except OSError:
            return ""
        key = (str(weights), st.st_mtime_ns, st.st_size)
        if key not in self._digests:
            self._digests[key] = weights_digest(checkpoint)
        return self._digests[key]
