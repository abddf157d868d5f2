"""`python -m core.train` killed with SIGKILL in the middle of a save, then resumed: nothing stranded, nothing lost.

The save is held at one of its stages by the checkpoint module's test hook ($CORE_CHECKPOINT_PAUSE):
the process writes a marker file when it gets there, the test sees the file and kills it. So the
kill lands mid-save on every run, however loaded the machine.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core import checkpoint
from core.train import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py

ROOT = Path(__file__).resolve().parent.parent
POINTS = ["--dataset", "gaussians8", "--dataset-param", "n=500", "--net", "mlp", "--model-param", "width=16",
          "--model-param", "blocks=1", "--model-param", "fourier_features=4", "--T", "50", "--batch-size", "16",
          "--device", "cpu", "--threads", "1"]


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def steps_of(lines: list[bytes]) -> list[int]:
    return [json.loads(line)["step"] for line in lines]


def kill_mid_save(out: Path, stage: str, skip: int) -> None:
    """Train into `out`, saving every 20 steps; SIGKILL the process while save number skip+1 is at `stage`."""
    marker = out.parent / "paused-at"
    env = {**os.environ, "CORE_CHECKPOINT_PAUSE": stage, "CORE_CHECKPOINT_PAUSE_SKIP": str(skip),
           "CORE_CHECKPOINT_PAUSE_MARKER": str(marker), "CORE_CHECKPOINT_PAUSE_SECONDS": "3600",
           "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "core.train", *POINTS, "--out", str(out), "--steps", "400",
                             "--checkpoint-every", "20", "--log-every", "5"],
                            env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while not marker.exists():  # the state we wait for; a run that ends without reaching it fails below
            if proc.poll() is not None:
                pytest.fail(f"the run ended (exit {proc.returncode}) before pausing at {stage}: "
                            f"{proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    marker.unlink()


@pytest.mark.parametrize("stage, skip, left_behind", [
    ("writing", 2, [".run.tmp-"]),                        # weights written, config not yet
    ("before-swap", 2, [".run.tmp-"]),                    # the new checkpoint whole beside the old, log linked in
    ("between-renames", 2, [".run.old-", ".run.tmp-"]),   # the old one moved aside, the new one not yet in place
])
def test_sigkill_during_a_save_then_resume_strands_nothing_and_keeps_the_log(tmp_path, stage, skip, left_behind):
    out = tmp_path / "run"
    kill_mid_save(out, stage, skip)
    stranded = hidden(tmp_path)
    assert [name[:9] for name in stranded] == left_behind  # the kill did land mid-save
    assert out.is_dir() == (stage != "between-renames")

    _, _, meta = checkpoint.load(out)  # still loadable: the last completed save
    saved = meta["steps"]
    assert saved == 40  # the third save (step 60) was the one killed
    holder = out if out.is_dir() else tmp_path / stranded[0]  # between the renames the log is in the old copy
    assert (holder / "log.jsonl").is_file()
    before = (holder / "log.jsonl").read_bytes().splitlines(keepends=True)
    assert steps_of(before)[: saved // 5] == list(range(5, saved + 1, 5))  # every line up to the save, in order

    assert main(["--resume", str(out), "--steps", "100", "--log-every", "5", "--threads", "1"]) == 0
    assert hidden(tmp_path) == []
    _, _, meta = checkpoint.load(out)
    assert meta["steps"] == 100
    after = (out / "log.jsonl").read_bytes().splitlines(keepends=True)
    assert steps_of(after) == list(range(5, 101, 5))  # each step once: lines past the save are written again
    assert after[: saved // 5] == before[: saved // 5]  # the lines written before the save, byte for byte


def test_a_new_start_into_the_same_folder_also_cleans_up(tmp_path):
    out = tmp_path / "run"
    kill_mid_save(out, "before-swap", 0)
    assert [n[:9] for n in hidden(tmp_path)] == [".run.tmp-"]
    assert main([*POINTS, "--out", str(out), "--steps", "10"]) == 0
    assert hidden(tmp_path) == []
    assert checkpoint.load(out)[2]["steps"] == 10
    assert steps_of((out / "log.jsonl").read_bytes().splitlines()) == [10]  # a new run starts a new log
