"""explorer.tempfiles: one temporary root per process, removed at exit, and roots of dead processes removed at start."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from explorer import tempfiles

ROOT = Path(__file__).resolve().parent.parent
MAKE = ("import sys; from explorer import tempfiles; d = tempfiles.mkdtemp(prefix='quiz-'); print(d, flush=True); "
        "sys.stdin.read()")  # holds until the test closes stdin (or kills it)


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def start(tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    env = {**os.environ, "TMPDIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", MAKE], env=env, cwd=ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    return proc, Path(proc.stdout.readline().strip())


def test_folders_go_under_one_root_named_by_pid():
    a, b = Path(tempfiles.mkdtemp(prefix="reverse-")), Path(tempfiles.mkdtemp(prefix="bundle-"))
    assert a.parent == b.parent == tempfiles.root()
    assert a.name.startswith("reverse-") and b.name.startswith("bundle-") and a != b
    assert tempfiles.root().name.startswith(f"{tempfiles.PREFIX}{os.getpid()}-")


def test_sweep_removes_only_our_roots_of_dead_processes(tmp_path):
    dead = tmp_path / f"{tempfiles.PREFIX}{dead_pid()}-abc123"
    own = tmp_path / f"{tempfiles.PREFIX}{os.getpid()}-def456"
    alive = tmp_path / f"{tempfiles.PREFIX}{os.getppid()}-ghi789"
    others = [tmp_path / "quiz-1234", tmp_path / f"{tempfiles.PREFIX}notapid-x", tmp_path / "diffusion-explorer-1"]
    for d in [dead, own, alive, *others]:
        d.mkdir()
        (d / "f.txt").write_text("x")
    assert tempfiles.sweep_stale(tmp_path) == [dead]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in [own, alive, *others])


def test_a_process_removes_its_root_at_exit(tmp_path):
    proc, folder = start(tmp_path)
    assert folder.is_dir() and folder.parent.parent == tmp_path
    proc.communicate("")  # closes stdin: the process exits normally
    assert proc.returncode == 0
    assert not folder.parent.exists() and list(tmp_path.iterdir()) == []


def test_the_root_of_a_killed_process_goes_when_the_next_one_starts(tmp_path):
    proc, folder = start(tmp_path)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    assert folder.is_dir()  # atexit did not run
    second, folder2 = start(tmp_path)
    try:
        assert not folder.parent.exists()
        assert [p.name for p in tmp_path.iterdir()] == [folder2.parent.name]
    finally:
        second.communicate("")
    assert list(tmp_path.iterdir()) == []
