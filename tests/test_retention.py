"""Disk limits (core.retention) and crash recovery of checkpoint folders (core.checkpoint.recover / sweep)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from core import checkpoint, retention
from core.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from core.nets import build_model
from core.retention import DiskLimitError, Quota
from core.train import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py

MLP = ModelConfig("mlp", {"width": 16, "blocks": 1, "fourier_features": 4})
POINTS = ["--dataset", "gaussians8", "--dataset-param", "n=500", "--net", "mlp", "--model-param", "width=16",
          "--model-param", "blocks=1", "--model-param", "fourier_features=4", "--T", "50", "--batch-size", "16",
          "--device", "cpu"]


def save_small(path, **disk):
    config = RunConfig(model=MLP, data=DataConfig("swiss_roll"), train=TrainConfig(steps=10, batch_size=8))
    return checkpoint.save(path, build_model(MLP, (2,), seed=0), config, {"steps": 1}, **disk)


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_checkpoint_interval_is_0_or_at_least_the_minimum():
    assert retention.check_checkpoint_every(0) == 0
    assert retention.check_checkpoint_every(retention.MIN_CHECKPOINT_EVERY) == 10
    with pytest.raises(DiskLimitError, match=r"^the checkpoint interval must be 0 \(save only at the end\) or at "
                                             r"least 10 steps, got 1$"):
        retention.check_checkpoint_every(1)
    with pytest.raises(DiskLimitError, match="checkpoint_every must be 0 .* got -5"):
        retention.check_checkpoint_every(-5, "checkpoint_every")
    with pytest.raises(DiskLimitError, match="must be a whole number of steps, got True"):
        retention.check_checkpoint_every(True)


def test_sizes_read_and_written():
    assert retention.parse_size("0") == 0
    assert retention.parse_size("1048576") == 1024**2
    assert retention.parse_size("500M") == 500 * 1024**2
    assert retention.parse_size("1.5k") == 1536
    assert retention.parse_size("2 GB") == 2 * 1024**3
    for bad in ("lots", "-1M", "5X", ""):
        with pytest.raises(DiskLimitError, match="a size must be a number with an optional unit K, M, G or T"):
            retention.parse_size(bad)
    assert retention.format_size(1536) == "1.5 KB" and retention.format_size(3 * 1024**3) == "3.0 GB"
    assert retention.format_size(12) == "12 B"


def test_prune_keeps_the_newest_k_step_checkpoints_only(tmp_path):
    for step in (30, 100, 10, 20, 1000):
        (tmp_path / f"step-{step:07d}").mkdir()
    for other in ("notes", "step-12", "run-step-0000001"):
        (tmp_path / other).mkdir()
    removed = retention.prune(tmp_path, 2)
    assert sorted(p.name for p in removed) == ["step-0000010", "step-0000020", "step-0000030"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes", "run-step-0000001", "step-0000100",
                                                          "step-0001000", "step-12"]
    assert [p.name for p in retention.prune(tmp_path, 0, prefix="run-")] == ["run-step-0000001"]
    with pytest.raises(DiskLimitError, match="from 1 to 1000, got 1001"):
        retention.check_keep(1001)


def test_quota_refuses_a_save_before_writing_anything(tmp_path):
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "blob").write_bytes(b"x" * 3000)
    assert retention.folder_size(tmp_path) == 3000
    quota = Quota(tmp_path, 4000)
    with pytest.raises(DiskLimitError) as info:
        save_small(tmp_path / "ck", check_space=quota.check)
    msg = str(info.value)
    assert msg.startswith(f"the runs folder {tmp_path} is full: it holds 2.9 KB of its 3.9 KB quota; "
                          "the next checkpoint needs ")
    assert msg.endswith("Nothing was written; delete old runs there or raise the quota")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old"]  # no checkpoint, no hidden half of one
    save_small(tmp_path / "ck", check_space=Quota(tmp_path, 10**7).check)
    assert checkpoint.load(tmp_path / "ck")[2]["steps"] == 1
    with pytest.raises(DiskLimitError, match="is full: it holds"):
        Quota(tmp_path, 3000).check()  # already full: a run does not start
    Quota(tmp_path, 0).check(10**12)  # 0: no limit


def test_app_quota_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv(retention.QUOTA_ENV, raising=False)
    assert retention.app_quota(tmp_path).limit == retention.DEFAULT_APP_QUOTA
    monkeypatch.setenv(retention.QUOTA_ENV, "5M")
    q = retention.app_quota(tmp_path)
    assert q.limit == 5 * 1024**2 and "a larger EXPLORER_RUNS_QUOTA (now 5.0 MB)" in q.hint


def test_cli_keeps_the_last_k_checkpoints(tmp_path):
    out = tmp_path / "run"
    assert main([*POINTS, "--out", str(out), "--steps", "50", "--checkpoint-every", "10",
                 "--keep-checkpoints", "3"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "run-step-0000030", "run-step-0000040"]
    assert checkpoint.load(out)[2]["steps"] == 50
    for step in (30, 40):
        kept = tmp_path / f"run-step-{step:07d}"
        assert checkpoint.load(kept)[2]["steps"] == step and checkpoint.has_train_state(kept)
        assert not (kept / "log.jsonl").exists()  # the log lives on in OUT only
    assert [json.loads(x)["step"] for x in (out / "log.jsonl").read_text().splitlines()] == [10, 20, 30, 40, 50]


def test_cli_quota_stops_the_run_with_nothing_half_written(tmp_path, capsys):
    out = tmp_path / "runs" / "run"
    with pytest.raises(SystemExit) as info:
        main([*POINTS, "--out", str(out), "--steps", "20", "--runs-quota", "2K"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"error: the runs folder {out.parent} is full: it holds " in err and "pass a larger --runs-quota" in err
    assert sorted(p.name for p in out.iterdir()) == ["log.jsonl"]  # the log, no checkpoint, no hidden folder
    assert [p.name for p in out.parent.iterdir()] == ["run"]


def test_recover_merges_a_log_left_in_an_old_style_side_folder(tmp_path):
    out = save_small(tmp_path / "run", carry=("log.jsonl",))
    side = tmp_path / ".run.side-1a2b3c4d"
    side.mkdir()
    (side / "log.jsonl").write_text('{"step": 10}\n{"step": 20}\n')
    (side / "previews").mkdir()
    (side / "previews" / "step_0000010.npy").write_bytes(b"p")
    (out / "log.jsonl").write_text('{"step": 30}\n')  # written by the run resumed after the crash
    assert checkpoint.recover(out) == ["moved the files in .run.side-1a2b3c4d back into run"]
    assert (out / "log.jsonl").read_text() == '{"step": 10}\n{"step": 20}\n{"step": 30}\n'
    assert (out / "previews" / "step_0000010.npy").read_bytes() == b"p"
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_recover_puts_back_a_checkpoint_caught_between_its_renames(tmp_path):
    out = save_small(tmp_path / "run")
    backup = tmp_path / f".run.old-{dead_pid()}-0badc0de"
    os.replace(out, backup)
    half = tmp_path / f".run.tmp-{dead_pid()}-abcd1234"
    half.mkdir()
    (half / "model.safetensors").write_bytes(b"partial")
    done = checkpoint.recover(out)
    assert sorted(done) == sorted([f"restored run from {backup.name}", f"removed {half.name}"])
    assert [p.name for p in tmp_path.iterdir()] == ["run"] and checkpoint.load(out)[2]["steps"] == 1


def test_sweep_leaves_the_folders_of_a_live_writer_alone(tmp_path):
    out = save_small(tmp_path / "a" / "run")
    live = out.parent / f".run.tmp-{os.getppid()}-aaaa1111"  # our parent process: alive
    dead = out.parent / f".run.tmp-{dead_pid()}-bbbb2222"
    legacy = out.parent / ".run.tmp-x7k2m9q1"  # from a version without pids in the name
    for d in (live, dead, legacy):
        d.mkdir()
    done = checkpoint.sweep(tmp_path)
    assert sorted(done) == sorted([f"{out.parent}: removed {dead.name}", f"{out.parent}: removed {legacy.name}"])
    assert sorted(p.name for p in out.parent.iterdir()) == sorted(["run", live.name])


def test_saves_carry_the_log_by_link_and_keep_it_when_replacing(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "log.jsonl").write_text("line 1\n")
    save_small(out, carry=("log.jsonl",))  # a folder holding only carried files may be written into
    save_small(out, carry=("log.jsonl",))
    assert (out / "log.jsonl").read_text() == "line 1\n"
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "log.jsonl", "model.safetensors"]
    assert [p.name for p in tmp_path.iterdir()] == ["run"]
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "log.jsonl").write_text("x")
    with pytest.raises(checkpoint.CheckpointError, match="non-empty directory that is not a checkpoint"):
        save_small(tmp_path / "busy")  # without carry, the same folder is someone else's
