"""Disk limits of training runs: how often a run may save, how many of its checkpoints stay, how much a runs folder may hold.

A run that saves every step of a million would fill any disk; these three limits bound it:
- `check_checkpoint_every`: an interval of 0 (only at the end) or at least MIN_CHECKPOINT_EVERY steps;
- `prune`: only the newest `keep` step checkpoints of a run folder (`step-0001200`, ...) stay;
- `Quota`: a runs folder holds at most `limit` bytes; a save that would pass it is refused before a
  byte is written (`checkpoint.save(..., check_space=quota.check)`), so no half-written checkpoint is left.
"""
from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

MIN_CHECKPOINT_EVERY = 10          # steps; a save costs a full copy of weights and optimizer moments
DEFAULT_KEEP = 3                   # step checkpoints kept per run (the newest ones)
MAX_KEEP = 1000
DEFAULT_APP_QUOTA = 2 * 1024**3    # bytes the app's runs folder may hold
QUOTA_ENV = "EXPLORER_RUNS_QUOTA"  # overrides the app's quota, e.g. "500M" or "10G"
STEP_DIR = re.compile(r"step-(\d{7,})")
_UNITS = {"": 1, "B": 1, "K": 1024, "KB": 1024, "M": 1024**2, "MB": 1024**2, "G": 1024**3, "GB": 1024**3,
          "T": 1024**4, "TB": 1024**4}


class DiskLimitError(ValueError):
    """A disk limit was hit or set badly: the message says which, the numbers, and what is allowed."""


def check_checkpoint_every(n, name: str = "the checkpoint interval") -> int:
    """The checkpoint interval if allowed: 0 (only at the end) or a whole number of steps >= MIN_CHECKPOINT_EVERY.

    name: what the message calls it (a flag, a field).
    """
    if isinstance(n, bool) or not isinstance(n, int):
        raise DiskLimitError(f"{name} must be a whole number of steps, got {n!r}")
    if n != 0 and n < MIN_CHECKPOINT_EVERY:
        raise DiskLimitError(f"{name} must be 0 (save only at the end) or at least {MIN_CHECKPOINT_EVERY} steps, "
                             f"got {n}")
    return n


def check_keep(k) -> int:
    """How many checkpoints of a run to keep, if allowed: 1..MAX_KEEP."""
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_KEEP:
        raise DiskLimitError(f"the number of checkpoints to keep must be a whole number from 1 to {MAX_KEEP}, got {k!r}")
    return k


def parse_size(text: str | int) -> int:
    """Bytes from "2G", "500M", "750MB", "1048576" (binary units: K = 1024); 0 means no limit."""
    if isinstance(text, int) and not isinstance(text, bool):
        value, unit = text, ""
    else:
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", str(text))
        if m is None or m.group(2).upper() not in _UNITS:
            raise DiskLimitError(f"a size must be a number with an optional unit K, M, G or T (e.g. 500M, 2G), "
                                 f"got {text!r}")
        value, unit = float(m.group(1)), m.group(2).upper()
    if value < 0:
        raise DiskLimitError(f"a size cannot be negative, got {text!r}")
    return int(value * _UNITS[unit])


def format_size(n: int) -> str:
    """1536 -> '1.5 KB', 3_000_000 -> '2.9 MB' (binary units, as `parse_size` reads them)."""
    for unit, size in (("TB", 1024**4), ("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def folder_size(root: str | os.PathLike) -> int:
    """Bytes of every file under `root`, hidden ones included (links are not followed); 0 if it does not exist."""
    total = 0
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:  # removed while we walked
                continue
            total += st.st_size
    return total


@dataclass(frozen=True)
class Quota:
    """At most `limit` bytes under `root` (0: no limit)."""

    root: Path
    limit: int
    hint: str = "delete old runs there or raise the quota"

    def __post_init__(self):
        if isinstance(self.limit, bool) or not isinstance(self.limit, int) or self.limit < 0:
            raise DiskLimitError(f"a quota must be a whole number of bytes >= 0 (0: no limit), got {self.limit!r}")

    def check(self, incoming: int = 0) -> None:
        """Refuse (DiskLimitError) if `incoming` more bytes would take the folder past its quota, or it is already full."""
        if not self.limit:
            return
        used = folder_size(self.root)
        if used + incoming > self.limit or used >= self.limit:
            need = f"; the next checkpoint needs {format_size(incoming)} more" if incoming else ""
            raise DiskLimitError(f"the runs folder {self.root} is full: it holds {format_size(used)} of its "
                                 f"{format_size(self.limit)} quota{need}. Nothing was written; {self.hint}")


def app_quota(root: str | os.PathLike) -> Quota:
    """The app's quota on its runs folder: DEFAULT_APP_QUOTA, or the size in $EXPLORER_RUNS_QUOTA."""
    text = os.environ.get(QUOTA_ENV)
    limit = DEFAULT_APP_QUOTA if text is None else parse_size(text)
    return Quota(Path(root), limit, hint=f"delete old runs there, or start the app with a larger {QUOTA_ENV} "
                                         f"(now {format_size(limit)})")


def step_checkpoints(folder: str | os.PathLike, prefix: str = "") -> list[tuple[int, Path]]:
    """The `<prefix>step-NNNNNNN` checkpoint folders in `folder` as (step, path), oldest first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    pattern = re.compile(re.escape(prefix) + STEP_DIR.pattern)
    found = []
    for p in folder.iterdir():
        m = pattern.fullmatch(p.name)
        if m and p.is_dir() and not p.is_symlink():
            found.append((int(m.group(1)), p))
    return sorted(found)


def prune(folder: str | os.PathLike, keep: int, prefix: str = "") -> list[Path]:
    """Delete all but the newest `keep` `<prefix>step-NNNNNNN` checkpoints in `folder` (keep 0: all); returns them."""
    if keep != 0:
        check_keep(keep)
    found = step_checkpoints(folder, prefix)
    old = found[:len(found) - keep] if keep else found
    for _, path in old:
        shutil.rmtree(path, ignore_errors=True)
    return [p for _, p in old]
