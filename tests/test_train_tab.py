"""The Train tab: its handlers called directly, and its API endpoints through gradio_client."""
from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import numpy as np
import pytest

from core.data import load_dataset
from core.nets import PRESETS
from explorer import costs
from explorer.jobs import TrainingJob
from explorer.render import Figure
from explorer.tabs import train_handlers, train_settings
from explorer.tabs.train_handlers import (PreviewChoices, button_states, changed_outputs, make_handlers, make_poll,
                                          nearest_preview, on_dataset, preview_value, view_outputs)
from explorer.tabs.train_settings import (UPLOAD, default_preset, estimate_seconds, estimate_text, kind_of, make_config,
                                          presets_for)

WAIT = 120.0
GOOD = dict(dataset="gaussians8", upload_folder=None, preset="mlp-2d", schedule="linear", T=100, prediction="eps",
            lr=2e-3, batch=32, steps=10, preview_every=5, seed=0)


def config(**over):
    return make_config(**{**GOOD, **over})


def snapshot(kind="points", **over) -> dict:
    """A snapshot as TrainingJob.snapshot() makes one, for a run 3 steps in."""
    previews = {2: np.zeros((8, 2), np.float16)} if kind == "points" else {2: np.zeros((4, 1, 8, 8), np.float16)}
    snap = {"status": "running", "message": "", "error": None, "step": 3, "steps_total": 10, "progress": 0.3,
            "loss": ([1, 2, 3], [1.0, 0.8, 0.7]), "smoothed": ([1, 2, 3], [1.0, 0.9, 0.8]),
            "lr": ([1, 2, 3], [1e-3, 2e-3, 2e-3]), "grad_norm": ([1, 2, 3], [1.0, 1.0, 1.0]),
            "per_t": ([3], [[0.5, 0.1]]), "t_bin_edges": [0, 50, 100], "previews": previews,
            "reference": np.ones((8, 2), np.float16) if kind == "points" else None,
            "steps_per_s": 2.0, "samples_per_s": 64.0, "elapsed": 1.5, "eta": 3.5, "device": "cpu", "threads": 1,
            "kind": kind, "sample_shape": [2], "parameters": 10, "checkpoints": [], "run_dir": "/x/run",
            "config": None, "run_id": 1, "version": 7}
    snap.update(over)
    return snap


# --- choices and settings -------------------------------------------------------------------

def test_presets_fit_the_kind_of_data():
    assert presets_for("points") == ["mlp-2d", "mlp-2d-small"]
    assert "unet-digits" in presets_for("image") and "mlp-2d" not in presets_for("image")
    assert set(presets_for("signal")) == {"gru-signals", "conv1d-signals"}
    assert kind_of("digits") == "image" and kind_of(UPLOAD) == "image" and kind_of("moons") == "points"
    assert default_preset("digits") == "unet-digits" and default_preset("moons") == "mlp-2d-small"
    assert default_preset(train_settings.DRAW) == "mlp-2d"  # a drawing keeps the settings benchmarks/drawn_points.py measured


def test_make_config_builds_the_run():
    c = config(steps=500, preview_every=50)
    assert c.model.net == "mlp" and c.data.name == "gaussians8" and c.diffusion.T == 100
    assert c.train.steps == 500 and c.train.batch_size == 32 and c.train.preview_every == 50
    assert c.train.warmup_steps == 50  # a tenth of a short run, at most 100
    assert c.train.compile is False and config(compile_mode="reduce-overhead").train.compile == "reduce-overhead"
    up = make_config(**{**GOOD, "dataset": UPLOAD, "upload_folder": "/some/dir", "preset": "unet-small"},
                     image_size=16, channels=1)
    assert up.data.name == "image_folder" and up.data.params == {"path": "/some/dir", "size": 16, "channels": 1}


@pytest.mark.parametrize("over, message", [
    ({"dataset": "nope"}, "unknown dataset 'nope'"),
    ({"preset": "unet-digits"}, "preset 'unet-digits' is not for points data; choose one of mlp-2d"),
    ({"preset": "huge"}, "unknown model preset 'huge'"),
    ({"schedule": "zigzag"}, "unknown schedule 'zigzag'"),
    ({"prediction": "score"}, "prediction must be one of eps, x0, v"),
    ({"lr": 0}, r"learning rate must be in \(0, 1\]"),
    ({"T": 5}, "T must be a whole number between 10 and 2000, got 5"),
    ({"steps": 2.5}, "steps must be a whole number between 1 and 1000000"),
    ({"batch": 0}, "batch must be a whole number between 1 and 4096, got 0"),
    ({"dataset": UPLOAD, "preset": "unet-small"}, "upload your images"),
    ({"compile_mode": "fastest"}, "torch.compile must be one of off, default, reduce-overhead, got 'fastest'"),
])
def test_bad_settings_say_what_is_allowed(over, message):
    with pytest.raises(ValueError, match=message):
        config(**over)


def test_dataset_change_resets_the_controls():
    preset, schedule, batch, steps, lr, every, group, canvas = on_dataset("digits")
    assert preset["value"] == "unet-digits" and preset["choices"] == presets_for("image") and schedule == "linear"
    assert (batch, steps, lr, every) == tuple(train_settings.DEFAULTS["image"][k] for k in ("batch", "steps", "lr",
                                                                                    "preview_every"))
    assert group["visible"] is False and on_dataset(UPLOAD)[-2]["visible"] is True
    assert canvas["visible"] is False and on_dataset(UPLOAD)[-1]["visible"] is False
    preset, schedule, batch, steps, lr, every, group, canvas = on_dataset(train_settings.DRAW)
    assert preset["value"] == "mlp-2d" and canvas["visible"] is True and group["visible"] is False
    assert schedule == "linear"
    assert (batch, steps, lr, every) == tuple(train_settings.DEFAULTS["drawing"][k] for k in ("batch", "steps", "lr",
                                                                                      "preview_every"))
    # a built-in 2-D toy: the settings that meet the 2-D quality goal in a short run (toy_time_to_quality.py)
    preset, schedule, batch, steps, lr, every, group, canvas = on_dataset("swiss_roll")
    assert (preset["value"], schedule, batch, steps, lr) == ("mlp-2d-small", "cosine", 384, 1600, 3e-3)
    assert canvas["visible"] is False and group["visible"] is False


def test_time_estimate_scales_with_steps_and_batch():
    short = estimate_seconds("mlp-2d", 64, 100, 0)
    assert short is not None
    row = train_settings.speed_table()["presets"]["mlp-2d"]
    assert estimate_seconds("mlp-2d", 64, 1100, 0) - short == pytest.approx(1000 * (row["base_s"] + 64 * row["per_sample_s"]))
    assert estimate_seconds("mlp-2d", 256, 100, 0) >= short
    assert estimate_seconds("mlp-2d", 64, 100, 10) > short  # previews cost time
    assert estimate_seconds("no-such-preset", 64, 100, 0) is None
    assert "About" in estimate_text("moons", "mlp-2d", 64, 100, 0)
    assert "once the run has started" in estimate_text("moons", "mlp-2d", 64, 100, 0, device="cuda")


def test_time_estimate_from_earlier_runs_on_this_device(tmp_path):
    book = costs.SpeedBook(tmp_path / "speeds.json")
    before = estimate_text("moons", "mlp-2d", 64, 2000, 100, "cpu", "cpu: here", book)
    assert "measured on a 2-core CPU; this device's own time is remembered after its first run" in before
    costs.record_training(PRESETS["mlp-2d"], 64, "cpu: here", 0.02, 0.3, book=book)
    text = estimate_text("moons", "mlp-2d", 64, 2000, 100, "cpu", "cpu: here", book)
    # 1 s to start, 2000 steps of 20 ms, 20 previews of 0.3 s; a quarter of the steps is offered
    assert text == ("About **47 s** (2,000 steps of 64), from earlier runs of this model at this batch on this "
                    "device. Faster: 500 steps take about 12 s. The time left is shown while it trains.")
    assert "Faster" not in estimate_text("moons", "mlp-2d", 64, 200, 0, "cpu", "cpu: here", book)  # 5 s
    on_gpu = estimate_text("moons", "mlp-2d", 64, 2000, 100, "cuda", "cuda: H", book)
    assert on_gpu == "The time left is shown once the run has started (measured live)."
    compiled = estimate_text("moons", "mlp-2d", 64, 2000, 100, "cpu", "cpu: here", book, compile_mode="default")
    assert compiled.startswith("torch.compile compiles the net first") and "About" not in compiled


def test_a_compiled_runs_pace_is_not_remembered_for_eager_estimates(tmp_path):
    from types import SimpleNamespace

    from explorer.jobs import TrainingJob

    for mode, kept in ((False, True), ("default", False)):
        book = costs.SpeedBook(tmp_path / f"speeds-{mode}.json")
        job = SimpleNamespace(history=SimpleNamespace(measured=lambda: (0.02, 0.3)), book=book, cpu_bf16=False,
                              config=config(compile_mode=mode or "off"), device_key=lambda *a: "cpu: here")
        TrainingJob._remember_pace(job)
        remembered = costs.train_estimate(PRESETS["mlp-2d"], 32, 100, 0, "cpu: here", book=book)
        assert (remembered is not None) == kept, mode


@pytest.mark.parametrize("native", [True, False])
def test_precision_is_what_the_device_can_do(monkeypatch, native):
    monkeypatch.setattr(train_settings, "cpu_has_bf16", lambda: native)
    assert train_settings.default_precision("cuda:0") == "bf16 autocast" and train_settings.default_precision("cpu") == "fp32"
    assert train_settings.precision_options("bf16 autocast", "cuda") == (True, False)  # amp, cpu_bf16
    assert train_settings.precision_options("fp32", "cuda") == (False, False)
    assert train_settings.precision_options("fp32", "cpu") == (False, False)
    if native:
        assert train_settings.precision_options("bf16 autocast", "cpu") == (False, True)
        assert "native bf16" in train_settings.precision_info("cpu")
    else:
        with pytest.raises(ValueError, match="this CPU would emulate it, slower than fp32: choose fp32"):
            train_settings.precision_options("bf16 autocast", "cpu")
        assert train_settings.precision_info("cpu").startswith("fp32 only")
    with pytest.raises(ValueError, match="mps has none here: choose fp32"):
        train_settings.precision_options("bf16 autocast", "mps")
    with pytest.raises(ValueError, match="precision must be one of fp32, bf16 autocast, got 'fp16'"):
        train_settings.precision_options("fp16", "cpu")


def test_make_config_sets_amp_for_cuda():
    assert config().train.amp is True and config(amp=False).train.amp is False


def test_bf16_runs_are_estimated_from_their_own_pace(tmp_path):
    book = costs.SpeedBook(tmp_path / "speeds.json")
    costs.record_training(PRESETS["mlp-2d"], 64, "cpu: here", 0.02, 0.3, book=book)  # an fp32 run's pace
    first = estimate_text("moons", "mlp-2d", 64, 2000, 0, "cpu", "cpu: here, bf16 autocast", book,
                          precision="bf16 autocast")
    assert first.startswith("The time left is shown once the run has started (measured live); this device's bf16 "
                            "pace is remembered after its first bf16 run (fp32: about ")
    costs.record_training(PRESETS["mlp-2d"], 64, "cpu: here, bf16 autocast", 0.01, 0.15, book=book)
    later = estimate_text("moons", "mlp-2d", 64, 2000, 0, "cpu", "cpu: here, bf16 autocast", book,
                          precision="bf16 autocast")
    assert later.startswith("About **21 s** (2,000 steps of 64), from earlier runs")  # 1 s + 2000 x 10 ms


def test_a_bf16_runs_pace_is_remembered_under_its_own_name(tmp_path):
    job = TrainingJob(tmp_path / "runs", device="cpu", threads=2, prestart=False)
    try:
        assert job.device_key(True).endswith(", bf16 autocast") and job.device_key() == costs.device_key("cpu", 2)
        gpu = TrainingJob(tmp_path / "runs", device="cuda", threads=2, prestart=False)
        assert gpu.device_key(False, amp=False).endswith(", fp32") and "bf16" not in gpu.device_key(True, amp=True)
        gpu.shutdown()
        job.book = costs.SpeedBook(tmp_path / "speeds.json")
        job.config, job.cpu_bf16 = config(), True
        job.history = SimpleNamespace(measured=lambda: (0.01, 0.15))
        job._remember_pace()
        assert costs.train_estimate(PRESETS["mlp-2d"], 32, 100, 0, job.device_key(True), book=job.book) is not None
        assert costs.train_estimate(PRESETS["mlp-2d"], 32, 100, 0, job.device_key(), book=job.book) is None
    finally:
        job.shutdown()


# --- views of a snapshot --------------------------------------------------------------------

def test_nearest_preview_picks_the_latest_at_or_before():
    assert nearest_preview([], 5) is None
    assert nearest_preview([10, 20, 30], None) == 30
    assert nearest_preview([10, 20, 30], 25) == 20 and nearest_preview([10, 20, 30], 5) == 10


@pytest.mark.parametrize("kind", ["points", "image"])
def test_view_outputs_draw_every_chart_and_the_preview(kind):
    out = view_outputs(snapshot(kind), wanted=None, follow=True)
    status, loss, lr, per_t, per_t_now, slider, image, plot, ckpts = out
    assert "step 3 / 10" in status and "2.0 steps/s" in status and "about 4 s left" in status
    assert all(isinstance(f, Figure) for f in (loss, lr, per_t, per_t_now))
    assert slider["value"] == 2 and slider["maximum"] == 10
    _, _, _, _, _, kept, *_ = view_outputs(snapshot(kind), wanted=2, follow=False)
    assert "value" not in kept  # never moved under a user who is choosing a preview
    if kind == "image":
        assert image["visible"] and image["value"].dtype == np.uint8
    else:
        assert plot["visible"] and isinstance(plot["value"], Figure)
    assert "No checkpoint saved yet" in ckpts


def test_status_shows_errors_and_idle_help():
    assert "press <b>Start</b>" in view_outputs(snapshot(status="idle"), None, True)[0]
    failed = view_outputs(snapshot(status="failed", error="the loss became nan <at> step 3"), None, True)[0]
    assert "the loss became nan &lt;at&gt; step 3" in failed


def test_status_says_where_the_run_trains():
    assert "on cpu, 1 thread</div>" in view_outputs(snapshot(), None, True)[0]
    two = view_outputs(snapshot(threads=2, shards=2), None, True)[0]
    assert "on cpu, 2 threads, each batch in 2 shards</div>" in two
    assert "on cpu, 2 threads, bf16 autocast</div>" in view_outputs(snapshot(threads=2, cpu_bf16=True), None, True)[0]
    amp = {"train": {"amp": True}}
    assert "on cuda, 1 thread, bf16 autocast</div>" in view_outputs(snapshot(device="cuda", config=amp), None, True)[0]
    assert "bf16" not in view_outputs(snapshot(config=amp), None, True)[0]  # amp is CUDA's; a CPU run is fp32
    compiled = {"train": {"compile": "default"}}
    assert "compiling the net first" in view_outputs(snapshot(step=0, config=compiled), None, True)[0]
    assert "compiling" not in view_outputs(snapshot(step=3, config=compiled), None, True)[0]
    assert "compiling" not in view_outputs(snapshot(step=0, config={"train": {"compile": False}}), None, True)[0]


def test_preview_value_without_previews():
    kind, value, label = preview_value(snapshot(previews={}), None)  # 2-D points: a chart that says what comes
    assert kind == "points" and "first preview" in label and value.to_dict()["data"] == []
    assert "preview step" in value.to_dict()["layout"]["annotations"][0]["text"]
    kind, value, label = preview_value(snapshot("image", previews={}), None)  # a picture box shows its icon
    assert kind == "image" and value is None


def test_buttons_follow_the_status():
    flags = [[u["interactive"] for u in button_states(s)] for s in ("idle", "running", "paused", "finished")]
    assert flags == [[True, False, False, False, False], [False, True, False, True, True],
                     [False, False, True, True, True], [True, False, False, False, False]]
    # a stopped or finished run with weights on disk still offers Save (it names that checkpoint)
    assert [u["interactive"] for u in button_states("stopped", saved=True)] == [True, False, False, False, True]
    assert [u["interactive"] for u in button_states("stopped", saved=False)][-1] is False


def test_poll_redraws_only_what_changed(tmp_path):
    ctx = SimpleNamespace(jobs=TrainingJob(tmp_path, device="cpu"), settings=None)
    poll, scrub, set_follow = make_poll(ctx)
    first = poll({})
    assert len(first) == 15 and isinstance(first[-1], dict)
    again = poll(first[-1])
    assert len(again) == len(first) and all(o == gr.skip() for o in again)
    follow, slider, loss, image, plot = scrub(5)
    assert follow is False and isinstance(loss, Figure) and slider["value"] == 0  # no previews yet
    after = poll(first[-1])  # the choice changed: the views are sent again
    assert after[0] != gr.skip()
    # and the buttons' states with them, though the status is the same: a page whose earlier update was
    # lost is put right by its next redraw
    assert [u["interactive"] for u in after[9:14]] == [u["interactive"] for u in button_states("idle")]


def test_changed_outputs_skip_unchanged_views():
    snap = snapshot("points")
    out, seen = changed_outputs(snap, True, None, None)
    assert gr.skip() not in out  # a page that has not seen this run gets everything
    snap2 = snapshot("points", step=4, version=8)
    out2, seen2 = changed_outputs(snap2, True, None, seen)
    status, loss, lr, per_t, per_t_now, slider, image, plot, ckpts = out2
    assert "step 4 / 10" in status and isinstance(loss, Figure) and isinstance(lr, Figure)
    assert per_t == per_t_now == slider == image == plot == ckpts == gr.skip()  # nothing new there yet
    snap3 = snapshot("points", step=6, version=9, previews={**snap["previews"], 6: np.zeros((8, 2), np.float16)},
                     checkpoints=[(6, "/x/run/step-0000006")])
    out3, _ = changed_outputs(snap3, True, None, seen2)
    assert out3[5]["value"] == 6 and out3[7]["visible"] and "step-0000006" in out3[8]


def test_choices_are_per_session():
    choices = PreviewChoices()
    assert choices.get("a") == (True, None)
    choices.set("a", False, 40)
    assert choices.get("a") == (False, 40) and choices.get("b") == (True, None)


# --- handlers with a real job ---------------------------------------------------------------

@pytest.fixture(scope="module")
def handlers(tmp_path_factory):
    ctx = SimpleNamespace(jobs=TrainingJob(tmp_path_factory.mktemp("runs"), device="cpu", threads=1),
                          settings=None)
    yield make_handlers(ctx)
    ctx.jobs.shutdown()


def test_start_busy_save_and_stop(handlers):
    start, pause, resume, stop, save, status = handlers
    msg = start(**{**GOOD, "steps": 100_000, "preview_every": 0}, checkpoint_every=0)
    assert msg.startswith("Started **gaussians8-mlp-2d-") and "100,000 steps" in msg
    with pytest.raises(gr.Error, match="already"):
        start(**GOOD, checkpoint_every=0)
    deadline = time.monotonic() + WAIT
    while status()["status"] != "running" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "Saved **" in save()
    s = status()
    assert s["status"] == "running" and len(s["checkpoints"]) == 1 and Path(s["checkpoints"][0][1]).is_dir()
    assert "Stopped" in stop()
    assert status()["status"] == "stopped"
    with pytest.raises(gr.Error, match="no training run is active"):
        pause()
    with pytest.raises(gr.Error, match="learning rate"):
        start(**{**GOOD, "lr": -1}, checkpoint_every=0)


# --- the API --------------------------------------------------------------------------------

def test_api_trains_and_the_checkpoint_is_listed(client, app):
    names = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    for name in ("/train_start", "/train_pause", "/train_resume", "/train_stop", "/train_save", "/train_status"):
        assert name in names
    msg = client.predict("gaussians8", "mlp-2d", "linear", 50, "eps", 2e-3, 32, 30, 10, 0, 0, 32, 3,
                         api_name="/train_start")
    assert msg.startswith("Started")
    deadline = time.monotonic() + WAIT
    while (s := client.predict(api_name="/train_status"))["status"] not in ("finished", "failed"):
        assert time.monotonic() < deadline, f"the run did not finish: {s}"
        time.sleep(0.5)
    assert s["status"] == "finished" and s["step"] == 30 and s["previews"] == [10, 20, 30]
    path = s["checkpoints"][-1][1]
    assert path in [e["path"] for e in app.ctx.checkpoints()]
    with pytest.raises(Exception, match="preset 'unet-digits' is not for points data"):
        client.predict("gaussians8", "unet-digits", "linear", 50, "eps", 2e-3, 32, 30, 10, 0, 0, 32, 3,
                       api_name="/train_start")
    with pytest.raises(Exception, match="Dataset must be one of 'swiss_roll', .*, got 'nope'"):
        client.predict("nope", "mlp-2d", "linear", 50, "eps", 2e-3, 32, 30, 10, 0, 0, 32, 3, api_name="/train_start")


def test_uploaded_images_feed_the_image_folder_dataset(tmp_path):
    from PIL import Image

    from explorer.tabs.train_handlers import upload_images

    paths = []
    for i in range(8):
        paths.append(tmp_path / f"{i}.png")
        Image.new("RGB", (20, 20), (30 * i, 0, 0)).save(paths[-1])
    folder, note = upload_images([str(p) for p in paths])
    assert "8 images ready" in note
    c = make_config(**{**GOOD, "dataset": UPLOAD, "upload_folder": folder, "preset": "unet-small"})
    assert c.data.params["path"] == folder
    with pytest.raises(gr.Error, match="found 1 usable images"):
        upload_images([str(paths[0])])


# --- your own 2-D points ----------------------------------------------------------------------

def ink_canvas() -> np.ndarray:
    image = np.full((20, 20), 255, np.uint8)
    image[5:8, 2:18] = 0  # 48 pixels: a bar
    image[8, 2:4] = 0  # 50
    return image


def test_a_drawing_makes_a_points_file_run(tmp_path):
    from explorer import drawing

    state, figure, note = train_handlers.from_drawing({"composite": ink_canvas(), "background": None, "layers": []})
    assert state["source"] == "the drawing" and "50 points from the drawing" in note
    assert isinstance(figure, Figure) and len(figure.to_dict()["data"][0]["x"]) == 50
    c = make_config(**{**GOOD, "dataset": train_settings.DRAW}, points_path=state["path"])
    assert c.data.name == "points_file" and c.data.params == {"path": str(Path(state["path"]).resolve()),
                                                             "sha256": drawing.file_sha256(state["path"])}
    assert c.train.ema_decay == train_settings.DEFAULTS["drawing"]["ema_decay"] and c.model.net == "mlp"
    assert kind_of(train_settings.DRAW) == "points" and default_preset(train_settings.DRAW) == "mlp-2d"
    assert train_settings.DRAW in train_settings.dataset_choices()
    with pytest.raises(ValueError, match="no points yet: draw a shape"):
        make_config(**{**GOOD, "dataset": train_settings.DRAW})
    with pytest.raises(ValueError, match="no points yet"):
        make_config(**{**GOOD, "dataset": train_settings.DRAW}, points_path=str(tmp_path / "gone.csv"))


def test_the_canvas_while_drawing_and_the_csv_boxes(tmp_path):
    state, figure, note = train_handlers.from_drawing(None)  # cleared: nothing to say but how to start
    assert state is None and figure is None and note == train_handlers.POINTS_HINT
    little = np.full((20, 20), 255, np.uint8)
    little[0, :7] = 0
    state, figure, note = train_handlers.from_drawing(little)
    assert state == {"error": "the drawing has 7 pixels of ink; at least 50 are needed: draw longer strokes"}
    assert figure is None and note.startswith("⚠️ the drawing has 7 pixels")
    text = "x,y\n" + "".join(f"{i},{i % 7}\n" for i in range(80))
    state, figure, note = train_handlers.from_csv_text(text)
    assert "80 points from the pasted CSV" in note and Path(state["path"]).is_file()
    upload = tmp_path / "mine.csv"
    upload.write_text(text)
    state2, _, note = train_handlers.from_csv_file(str(upload))
    assert state2["path"] == state["path"] and "80 points from mine.csv" in note  # the same points, one file
    with pytest.raises(gr.Error, match="line 4: 'x' is not a number"):
        train_handlers.from_csv_text(text.replace("2,2\n", "2,x\n"))
    upload.write_text("1,nan\n" * 60)
    with pytest.raises(gr.Error, match="mine.csv, line 1: 'nan' is not a finite number"):
        train_handlers.from_csv_file(str(upload))
    with pytest.raises(gr.Error, match="found 3 points; at least 50"):
        train_handlers.from_csv_text("1,2\n3,4\n5,6\n")


def test_start_refuses_missing_or_bad_points_and_trains_on_a_drawing(tmp_path):
    runs = tmp_path / "runs"
    ctx = SimpleNamespace(jobs=TrainingJob(runs, device="cpu", threads=1), settings=SimpleNamespace(runs_dir=runs))
    start, _pause, _resume, stop, _save, status = make_handlers(ctx)
    args = {**GOOD, "dataset": train_settings.DRAW, "steps": 20, "preview_every": 10}
    try:
        with pytest.raises(gr.Error, match="no points yet: draw a shape on the canvas"):
            start(**args, checkpoint_every=0)
        with pytest.raises(gr.Error, match="no points yet"):
            start(**args, checkpoint_every=0, points={"path": None})
        with pytest.raises(gr.Error, match="the drawing has 7 pixels of ink"):
            start(**args, checkpoint_every=0, points={"error": "the drawing has 7 pixels of ink"})
        state, _, _ = train_handlers.from_drawing(ink_canvas())
        assert start(**args, checkpoint_every=0, points=state).startswith("Started **points_file-mlp-2d-")
        kept = runs / "points" / Path(state["path"]).name
        assert kept.is_file()  # the run's points live in the runs folder, named by the run's config
        deadline = time.monotonic() + WAIT
        while (s := status())["status"] not in ("finished", "failed"):
            assert time.monotonic() < deadline, s
            time.sleep(0.2)
        assert s["status"] == "finished" and s["step"] == 20
        from core.checkpoint import load
        _model, config, _meta = load(s["checkpoints"][-1][1])
        assert config.data.params["path"] == str(kept.resolve())
        assert len(load_dataset(config.data.name, **config.data.params)) == 50  # from the config alone
    finally:
        ctx.jobs.shutdown()
