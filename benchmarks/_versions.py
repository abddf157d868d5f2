"""This tree and, on request, a git revision of it, each served as `python launch.py` serves it: for the
benchmarks that measure a change in the browser side by side with the code before it."""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from _scratch import scratch_dir  # noqa: E402  (benchmarks/_scratch.py, beside this script)
from class_join import free_port, wait_up  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def start(folder: Path) -> tuple[subprocess.Popen, str]:
    """`python launch.py` in `folder` on a free port with an empty checkpoint folder: (process, URL)."""
    port = free_port()
    runs = str(scratch_dir("served-runs-"))
    proc = subprocess.Popen([sys.executable, "launch.py", "--port", str(port), "--checkpoints", runs], cwd=folder,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    wait_up(url, proc)
    return proc, url


def _git(*args: str, check: bool = False) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=check).stdout.strip()


@contextlib.contextmanager
def served_versions(against: str | None) -> Iterator[dict[str, str]]:
    """{version name: URL} for this tree and, with `against`, that revision (a worktree of this repository,
    the same Python and packages); the servers stop and the worktree goes when the block ends."""
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
    versions = {f"{_git('rev-parse', '--short', 'HEAD')}{' + changes' if dirty else ''} (this tree)": ROOT}
    worktree = None
    if against:
        rev = _git("rev-parse", "--short", against, check=True)
        worktree = scratch_dir("served-") / rev
        subprocess.run(["git", "worktree", "add", "--detach", str(worktree), rev], cwd=ROOT, check=True,
                       capture_output=True)
        versions[f"{rev} (--against)"] = worktree
    servers: dict[str, tuple[subprocess.Popen, str]] = {}
    try:
        for name, folder in versions.items():
            servers[name] = start(folder)
        yield {name: url for name, (_, url) in servers.items()}
    finally:
        for proc, _ in servers.values():
            os.killpg(proc.pid, 15)
            proc.wait(timeout=30)
        if worktree is not None:
            subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], cwd=ROOT, capture_output=True)
