"""The background training job: a child process steered by commands and watched by snapshots."""
from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import pytest

from core.checkpoint import load
from core.device import cpu_has_bf16
from core.config import DataConfig, DiffusionConfig, ModelConfig, RunConfig, TrainConfig
from explorer.job_child import checkpoint_name
from explorer.jobs import ACTIVE, JobBusy, JobError, RunHistory, TrainingJob, _Series, format_seconds, run_name

TINY_NET = ModelConfig("mlp", {"width": 32, "blocks": 1, "fourier_features": 8})
WAIT = 120.0  # seconds a test waits for the child before it fails (starting torch on a busy CPU is slow)


def tiny_config(steps=60, preview_every=20, lr=2e-3, data=None) -> RunConfig:
    return RunConfig(model=TINY_NET, diffusion=DiffusionConfig("linear", 50, "eps"),
                     data=data or DataConfig("gaussians8", {"n": 500}),
                     train=TrainConfig(steps=steps, batch_size=32, lr=lr, warmup_steps=5, preview_every=preview_every,
                                       preview_n=8, log_every=5, seed=0))


def wait_for(job: TrainingJob, predicate, what: str):
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        snap = job.snapshot()
        if predicate(snap):
            return snap
        if snap["status"] == "failed" and "failed" not in what:
            pytest.fail(f"the run failed while waiting for {what}: {snap['error']}")
        time.sleep(0.1)
    pytest.fail(f"gave up waiting for {what}; last status {job.snapshot()['status']}")


@pytest.fixture
def job(tmp_path):
    j = TrainingJob(tmp_path / "runs", device="cpu", threads=1, nice=0)
    yield j
    j.shutdown()


# --- pure helpers -----------------------------------------------------------------------------

def test_names_and_durations():
    cfg = tiny_config()
    assert run_name(cfg, "mlp-2d", datetime(2024, 5, 6, 7, 8, 9)) == "gaussians8-mlp-2d-20240506-070809"
    assert run_name(cfg, "a b/c", datetime(2024, 5, 6, 7, 8, 9)) == "gaussians8-a_b_c-20240506-070809"
    assert checkpoint_name(1200) == "step-0001200"
    assert [format_seconds(s) for s in (None, 4.4, 65, 3725)] == ["—", "4 s", "1 min 05 s", "1 h 02 min"]


def test_series_thins_but_always_spans_the_run():
    s = _Series(cap=10)
    for step in range(1, 101):
        s.add(step, step * 2.0)
    steps = [p[0] for p in s.items]
    assert len(steps) <= 10 and steps[-1] >= 96 and steps[0] <= 16
    assert all(v == 2.0 * k for k, v in s.items)
    assert len(set(b - a for a, b in zip(steps, steps[1:]))) == 1  # evenly spaced


def test_history_smooths_with_a_bias_corrected_average():
    h = RunHistory(steps_total=10, batch_size=4)
    h.add_progress({"rows": [(1, 1.0, 0.1, 0.5), (2, 3.0, 0.2, 0.5)], "per_t": [0.5, None],
                    "steps_per_s": 2.0, "samples_per_s": 8.0, "elapsed": 1.0})
    w1, w2 = 0.02, 0.02 * 0.98 + 0.02
    assert h.smoothed.items[0] == (1, 1.0)  # the first smoothed value is the first loss, not 0.02 of it
    assert h.smoothed.items[1][1] == pytest.approx((0.98 * 0.02 * 1.0 + 0.02 * 3.0) / w2)
    assert w1 == pytest.approx(0.02)
    assert h.step == 2 and h.lr.items == [(1, 0.1), (2, 0.2)] and h.per_t.items == [(2, [0.5, None])]
    assert h.eta() == pytest.approx((10 - 2) * 1.0 / 2)


def progress(h: RunHistory, step: int, elapsed: float, previews: int = 0, preview_s: float = 0.0) -> None:
    h.add_progress({"rows": [(s, 1.0, 0.1, 0.5) for s in range(h.step + 1, step + 1)], "per_t": [0.5],
                    "steps_per_s": 99.0, "samples_per_s": 396.0, "elapsed": elapsed, "previews": previews,
                    "preview_s": preview_s})


def test_the_time_left_follows_the_latest_half_of_the_run_and_counts_the_previews_left():
    h = RunHistory(steps_total=1000, batch_size=4, preview_every=100)
    assert h.eta() is None
    progress(h, 50, 10.0)  # 0.2 s a step; no preview yet: each counts as 20/3 steps
    assert h.eta() == pytest.approx(950 * 0.2 + 10 * (20 / 3) * 0.2)
    progress(h, 100, 20.0, previews=1, preview_s=2.0)  # steps 50-100: 8 s of steps and a 2 s preview
    assert h.eta() == pytest.approx(900 * 0.16 + 9 * 2.0)
    progress(h, 200, 26.0, previews=2, preview_s=4.0)  # the machine got faster: 4 s for steps 100-200
    # the latest half (steps 100-200): 6 s less 2 s of preview = 0.04 s a step; not the average since the start
    assert h.eta() == pytest.approx(800 * 0.04 + 8 * 2.0)
    h.add_rows([(201, 1.0, 0.1, 0.5)])  # numbers without a new elapsed: the pace stays, one step fewer left
    assert h.eta() == pytest.approx(799 * 0.04 + 8 * 2.0)
    assert h.measured() == (pytest.approx(22.0 / 200), 2.0)  # what later estimates remember


def test_the_marks_of_a_long_run_are_thinned_but_span_it():
    h = RunHistory(steps_total=10_000, batch_size=4)
    for step in range(1, 2001):
        progress(h, step, step * 0.01)
    assert len(h._marks) <= 512 and h._marks[0] == (0, 0.0, 0.0) and h._marks[-1][0] == 2000
    assert h.eta() == pytest.approx(8000 * 0.01)


# --- a whole run ----------------------------------------------------------------------------

def test_a_run_reports_progress_previews_and_checkpoints(job, tmp_path):
    run_dir = job.start(tiny_config(steps=60, preview_every=20), checkpoint_every=30)
    assert run_dir.parent == tmp_path / "runs"
    snap = wait_for(job, lambda s: s["status"] == "finished", "the run to finish")
    assert snap["step"] == snap["steps_total"] == 60 and snap["progress"] == 1.0
    assert snap["loss"][0] == list(range(1, 61)) and len(snap["smoothed"][1]) == 60
    assert len(snap["lr"][1]) == 60 and snap["lr"][1][0] < snap["lr"][1][5]  # warm-up
    assert sorted(snap["previews"]) == [20, 40, 60]
    assert snap["previews"][20].shape[1:] == (2,) and snap["reference"].shape[1:] == (2,)
    assert snap["kind"] == "points" and snap["device"] == "cpu" and snap["threads"] == 1
    assert len(snap["t_bin_edges"]) == len(snap["per_t"][1][-1]) + 1
    assert snap["steps_per_s"] > 0 and snap["eta"] is None  # no ETA once finished
    assert [s for s, _ in snap["checkpoints"]] == [30, 60]
    model, config, meta = load(snap["checkpoints"][-1][1])
    assert meta["steps"] == 60 and config == tiny_config(steps=60, preview_every=20)
    assert Path(snap["checkpoints"][0][1]).name == "step-0000030"
    assert job.save() == Path(snap["checkpoints"][-1][1])  # a finished run hands back its last checkpoint



@pytest.mark.skipif(not cpu_has_bf16(), reason="this CPU has no native bf16")
def test_a_run_under_bf16_autocast_on_a_cpu_that_has_it(job):
    job.start(tiny_config(steps=20, preview_every=10), cpu_bf16=True)
    snap = wait_for(job, lambda s: s["status"] == "finished", "the run to finish")
    assert snap["cpu_bf16"] and snap["step"] == 20
    _, _, meta = load(snap["checkpoints"][-1][1])
    assert meta["device"].endswith("bf16 autocast)") and meta["weights_dtype"] == "float32"


def test_only_the_newest_periodic_checkpoints_are_kept_and_the_final_one_always(job):
    run_dir = job.start(tiny_config(steps=70, preview_every=0), checkpoint_every=10)
    wait_for(job, lambda s: s["status"] == "finished", "the run to finish")
    kept = sorted(p.name for p in run_dir.iterdir() if p.name.startswith("step-"))
    assert kept == ["step-0000040", "step-0000050", "step-0000060", "step-0000070"]  # 3 periodic + the final
    # and the run's list of checkpoints (what the Train tab offers) names exactly those on disk
    assert [Path(p).name for _, p in job.snapshot()["checkpoints"]] == kept


def test_waiting_for_the_first_step_returns_once_a_step_is_taken(job):
    assert job.wait_for_first_step(0.1) is False  # no run: nothing to wait for
    job.start(tiny_config(steps=100_000, preview_every=0))
    assert job.wait_for_first_step(600) is True  # a hang detector only: a step takes well under a second
    assert job.snapshot()["step"] > 0 and len(job.snapshot()["loss"]) > 0
    job.stop()
    wait_for(job, lambda s: s["status"] not in ("starting", "running", "paused", "stopping"), "the run to stop")


def test_one_run_at_a_time_pause_resume_save_stop(job):
    job.start(tiny_config(steps=100_000, preview_every=0))
    with pytest.raises(JobBusy, match="already (starting|running)"):
        job.start(tiny_config())
    wait_for(job, lambda s: s["status"] == "running" and s["step"] > 5, "the first steps")

    job.pause()
    paused = wait_for(job, lambda s: s["status"] == "paused", "the pause")
    time.sleep(0.5)
    assert job.snapshot()["step"] == paused["step"]  # nothing moves while paused
    path = job.save()  # a paused run can be saved
    assert path.name == f"step-{paused['step']:07d}" and (path / "model.safetensors").is_file()
    assert load(path)[2]["steps"] == paused["step"]

    job.resume()
    wait_for(job, lambda s: s["status"] == "running" and s["step"] > paused["step"], "training to go on")
    saved = job.save()
    assert saved.exists() and saved.parent == path.parent
    assert [p for _, p in job.snapshot()["checkpoints"]] == [str(path), str(saved)]

    job.stop()
    snap = job.snapshot()
    assert snap["status"] == "stopped" and not job.active
    assert job._proc is None or job._proc.poll() is not None  # the child has exited
    # Stop kept what was learnt: the weights at the last step are saved, and Save names them
    last_step, last = snap["checkpoints"][-1]
    assert last_step == snap["step"] > paused["step"]  # (the same folder as `saved` if no step ran since)
    assert load(last)[2]["steps"] == last_step
    assert job.save() == Path(last)
    with pytest.raises(JobError, match="no training run is active"):
        job.pause()
    with pytest.raises(JobError, match="the run is stopped, not paused"):
        job.resume()


def test_errors_in_the_child_are_reported(job, tmp_path):
    bad = DataConfig("image_folder", {"path": str(tmp_path / "missing")})
    job.start(tiny_config(data=bad))
    snap = wait_for(job, lambda s: s["status"] == "failed", "the run to have failed")
    assert "missing" in snap["error"] and "not a folder" in snap["error"]
    assert not job.active
    job.start(tiny_config(steps=5, preview_every=0))  # a failed run does not block the next one
    wait_for(job, lambda s: s["status"] == "finished", "the next run to finish")


def test_the_nan_guard_stops_the_run_with_its_message(job):
    job.start(tiny_config(steps=200, preview_every=0, lr=1e30))
    snap = wait_for(job, lambda s: s["status"] == "failed", "the NaN guard (failed)")
    assert "became" in snap["error"] and "Lower the learning rate" in snap["error"]


def test_shutdown_ends_the_child_and_the_reader(tmp_path):
    job = TrainingJob(tmp_path / "runs", device="cpu", threads=1)
    job.start(tiny_config(steps=100_000, preview_every=0))
    wait_for(job, lambda s: s["status"] == "running", "the run to start")
    proc, reader = job._proc, job._reader
    job.shutdown()
    assert proc.poll() is not None and not reader.is_alive()
    assert job.snapshot()["status"] not in ACTIVE


def test_bad_arguments(job):
    with pytest.raises(ValueError, match="checkpoint_every must be 0"):
        job.start(tiny_config(), checkpoint_every=-1)
    with pytest.raises(JobError, match="no training run is active"):
        job.save()
    assert job.snapshot()["status"] == "idle"


def test_a_relative_runs_folder_is_the_apps_not_the_childs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    job = TrainingJob("my-runs", device="cpu", threads=1)
    try:
        run_dir = job.start(tiny_config(steps=3, preview_every=0), name="rel")
        assert run_dir == tmp_path / "my-runs" / "rel"
        snap = wait_for(job, lambda s: s["status"] == "finished", "the run to finish")
        assert Path(snap["checkpoints"][-1][1]) == tmp_path / "my-runs" / "rel" / "step-0000003"
    finally:
        job.shutdown()


def test_a_spare_process_waits_for_start_and_another_follows_each_run(tmp_path):
    job = TrainingJob(tmp_path / "runs", device="cpu", threads=1, nice=0, prestart=True)
    try:
        first = job._spare[0]
        assert first.poll() is None  # waiting (torch imported, or importing) before any Start
        wait_for(job, lambda s: job.spare_ready(), "the spare to be ready")
        assert job.spare_ready() and job.snapshot()["status"] == "idle"
        job.start(tiny_config(steps=5, preview_every=0))
        assert job._spare is None and not job.spare_ready()  # taken by the run; no new one competes for the CPU
        snap = wait_for(job, lambda s: s["status"] == "finished", "the first run to finish")
        assert snap["step"] == 5 and job.history.info["pid"] == first.pid  # the spare trained it
        wait_for(job, lambda s: job._spare is not None, "the next spare")
        second = job._spare[0]
        assert second.pid != first.pid and second.poll() is None
        job.start(tiny_config(steps=5, preview_every=0), name="again")
        wait_for(job, lambda s: s["status"] == "finished", "the second run to finish")
        assert job.history.info["pid"] == second.pid
        wait_for(job, lambda s: job._spare is not None, "the spare after the second run")
        third = job._spare[0]
    finally:
        job.shutdown()
    assert third.poll() is not None and job._spare is None  # shutdown ends the spare too


def test_a_dead_spare_is_replaced_at_start(tmp_path):
    job = TrainingJob(tmp_path / "runs", device="cpu", threads=1, nice=0, prestart=True)
    try:
        dead = job._spare[0]
        dead.kill()
        dead.wait()
        job.start(tiny_config(steps=3, preview_every=0))
        snap = wait_for(job, lambda s: s["status"] == "finished", "the run to finish in a fresh process")
        assert snap["step"] == 3
    finally:
        job.shutdown()
