"""The Reverse tab: its handlers called directly, and its API through gradio_client."""
from __future__ import annotations

import time
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
import torch
from PIL import Image

from core.config import DataConfig, DiffusionConfig, ModelConfig, RunConfig, TrainConfig
from core.forward import model_predictions
from explorer import animation
from explorer.context import AppContext, Settings
from explorer.lecture import OPENING
from explorer.render import Figure
from explorer.tabs.checkpoint_picker import checkpoint_summary, sample_words
from explorer.tabs.reverse_handlers import ReverseHandlers
from explorer.tabs.reverse_session import DEFAULT_SAMPLES, ReverseSession, default_samples, default_steps

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


@pytest.fixture(scope="module")
def shared_h(app_settings, trained_checkpoints):
    return ReverseHandlers(AppContext(app_settings))


@pytest.fixture
def h(shared_h):
    """The handlers with no recorded runs: each test computes its runs live unless it records them itself."""
    shared_h.recordings.clear()
    return shared_h


def play(h, path, sampler="ddim", steps=10, eta=0.0, seed=0, n=4, compare=False, sampler_b="ddpm", steps_b=20,
         eta_b=0.0, speed="max", session=None):
    session = session if session is not None else ReverseSession()
    return session, h.play(path, sampler, steps, eta, seed, n, compare, sampler_b, steps_b, eta_b, speed, session)


def run(h, path, **kw):
    session, gen = play(h, path, **kw)
    outs = list(gen)
    return session, outs


def last_picture(outs):
    """The last image a stream sent (its closing view leaves the shown picture alone)."""
    return [o[0] for o in outs if isinstance(o[0], np.ndarray)][-1]


# --- checkpoints and controls -------------------------------------------------------------------

def test_lists_the_checkpoints_and_prefers_an_image_model(h, ckpt):
    paths = [p for _, p in h.choices()]
    assert set(ckpt.values()) <= set(paths)
    assert h.default_checkpoint() == ckpt["tiny-digits"] or "digits" in h.default_checkpoint()
    info = h.info(ckpt["tiny-digits"])
    assert "digits" in info and "T = 200" in info and "30 steps" in info


@pytest.mark.parametrize("shape, words", [([2], "2-D points"), ([1, 32, 32], "32×32 images, 1 channel"),
                                          ([3, 48, 64], "48×64 images, 3 channels"),
                                          ([1, 64], "signals of 64 values, 1 channel"), ([5], "samples 5")])
def test_a_checkpoint_says_what_one_sample_is_in_words(shape, words):
    assert sample_words(shape) == words


def test_summary_says_when_a_run_stopped_before_its_planned_steps():
    cfg = RunConfig(model=ModelConfig("mlp", {}), diffusion=DiffusionConfig("cosine", 500),
                    data=DataConfig("moons"), train=TrainConfig(steps=8000))
    meta = {"sample_shape": [2], "steps": 4025, "dataset": "moons"}
    line = checkpoint_summary(cfg, meta)
    assert line.startswith("**moons** · mlp · 2-D points · T = 500 (cosine) · predicts eps")
    assert line.endswith("trained 4,025 of 8,000 planned steps")
    assert checkpoint_summary(cfg, {**meta, "steps": 8000}).endswith("trained 8,000 steps")
    assert "trained" not in checkpoint_summary(cfg, {"sample_shape": [2]})


def test_select_checkpoint_fits_steps_to_T_and_samples_to_the_kind(h, ckpt):
    out = h.select_checkpoint(ckpt["tiny-points"], "ddpm", 1000, "ddim", 50, 7, "image")
    info, steps, steps_b, n, image, plot, kind = out
    assert kind == "points" and "gaussians8" in info
    assert steps["maximum"] == 100 and steps["value"] == 100      # 1000 clamped to T = 100
    assert steps_b["value"] == 50
    assert n["value"] == DEFAULT_SAMPLES["points"]                 # a new kind: its default count
    assert image["visible"] is False and plot["visible"] is True
    same = h.select_checkpoint(ckpt["tiny-points"], "ddpm", 100, "ddim", 50, 300, "points")
    assert same[3]["value"] == 300                                  # same kind: the user's count stays
    # a count left at another image model's default takes this model's own (its recorded run's)
    for left in (9, 16):
        assert h.select_checkpoint(ckpt["tiny-digits"], "ddim", 50, "ddpm", 200, left, "image")[3]["value"] == 16
    assert h.select_checkpoint(None, "ddim", 10, "ddim", 10, 4, None)[0] == "*No checkpoint selected.*"


def test_a_page_play_sent_with_the_controls_of_the_checkpoint_before_plays_the_chosen_one_as_fitted(h, ckpt):
    """Play clicked while the choice of a T = 200 digits model is on its way sends the controls as they were
    for a T = 1000 points model: DDPM's 1000 steps, 500 samples, the hidden second sampler's 1000 steps."""
    session, gen = play_live(h, ckpt["tiny-digits"], sampler="ddpm", steps=1000, n=500, steps_b=1000)
    first = next(gen)
    gen.close()
    assert "of 200" in first[2]
    assert session.spec.lanes[0].steps == 200 and len(session.spec.lanes) == 1
    assert session.spec.n == default_samples("image", (1, 8, 8))
    # what the checkpoint's choice itself sets (the same rule)
    fitted = h.select_checkpoint(ckpt["tiny-digits"], "ddpm", 1000, "ddpm", 1000, 500, "points")
    assert (fitted[1]["value"], fitted[2]["value"], fitted[3]["value"]) == (200, 200, session.spec.n)
    # values within the checkpoint's ranges are the user's and stay; the API's Play still refuses
    assert h.fit_to_checkpoint(ckpt["tiny-digits"], 37, 5, 9) == (37, 5, 9)
    assert h.fit_to_checkpoint(ckpt["tiny-digits"], 0, -1, 0.5) == (0, -1, 0.5)  # the run says what is wrong
    with pytest.raises(gr.Error, match="between 1 and 200, got 1000"):
        run(h, ckpt["tiny-digits"], sampler="ddpm", steps=1000)


def test_controls_whose_range_is_the_checkpoints_are_checked_by_the_run_not_by_the_sessions_bounds(app_url, ckpt):
    """The session's copy of Steps already has the new checkpoint's bounds (max 200) when a Play sent with
    the page's values of the checkpoint before arrives: that Play runs, with the hidden second sampler's
    1000 steps unread. (Refused with "Steps must be a whole number from 1 to 200, got 1000" before.)"""
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    app = Client(app_url, verbose=False)  # a session of its own
    app.predict(ckpt["tiny-digits"], "ddim", 50, "ddpm", 1000, 16, 0.0, 0, False, 0.0, "linear",
                api_name="/reverse_select_checkpoint")
    out = app.predict(ckpt["tiny-digits"], "ddim", 10, 0.0, 0, 4, False, "ddpm", 1000, 0.0, "max", "linear",
                      api_name="/reverse_play_live")
    assert "complete" in out[2]
    with pytest.raises(AppError, match=r"steps \(second sampler\) must be a whole number between 1 and 200"):
        app.predict(ckpt["tiny-digits"], "ddim", 10, 0.0, 0, 4, True, "ddpm", 1000, 0.0, "max", "linear",
                    api_name="/reverse_play")


def test_a_checkpoint_chosen_in_the_list_opens_on_its_first_frame_and_its_own_caption(h, ckpt):
    session, _ = run(h, ckpt["tiny-digits"], sampler="ddim", steps=10)  # a run of another model on screen
    out = h.choose_checkpoint(ckpt["tiny-points"], "ddim", 10, "ddpm", 50, 4, "image", session, 0.0, 3)
    info, steps, _, n, image, plot, kind, caption, scrub = out
    assert kind == "points" and steps["value"] == 10 and n["value"] == DEFAULT_SAMPLES["points"]
    # the run Play will play is set up on the noise it starts from (x_T and one model call, nothing more),
    # with the steps the sampler's default for this T, as the event after this one sets them
    assert session.spec.checkpoint == ckpt["tiny-points"] and session.spec.seed == 3
    assert session.spec.n == DEFAULT_SAMPLES["points"] and session.spec.lanes[0].steps == default_steps("ddim", 100)
    assert len(session.traj) == 1 and session.cursor == 0 and session.computing
    assert isinstance(plot["value"], Figure) and plot["visible"] is True and image["visible"] is False
    assert (f"step **1** of {default_steps('ddim', 100)}" in caption
            and "Ready: press Play (or Space)." in caption and "computed live" in caption)
    assert scrub["value"] == 0 and scrub["maximum"] <= 1  # one frame so far (the slider keeps a span of 1)
    # Play goes on from that frame with the same settings instead of starting over
    x_T = session.traj.frames[0][0].x_t.copy()
    settings = (ckpt["tiny-points"], "ddim", default_steps("ddim", 100), 0.0, 3, DEFAULT_SAMPLES["points"], False,
                "ddpm", 50, 0.0)
    outs = list(h.play(*settings, "max", session))
    assert "complete" in outs[-1][2] and np.array_equal(session.traj.frames[0][0].x_t, x_T)
    # chosen again while a run of it is on screen: the view stays
    again = h.choose_checkpoint(ckpt["tiny-points"], "ddim", 10, "ddpm", 50, 4, "points", session, 0.0, 3)
    assert all(o == gr.skip() for o in again[4:6] + again[7:])
    # an image model: its picture, the image component shown
    out = h.choose_checkpoint(ckpt["tiny-digits"], "ddim", 10, "ddpm", 50, 4, "points", session)
    image, plot, caption = out[4], out[5], out[7]
    assert image["visible"] is True and image["value"] is not None and plot["visible"] is False
    assert f"step **1** of {default_steps('ddim', 200)}" in caption
    # a setting Play would refuse: the controls still fit the model, the caption says what is wrong
    out = h.choose_checkpoint(ckpt["tiny-points"], "ddim", 10, "ddpm", 50, 4, "image", session, 0.0, None)
    assert out[6] == "points" and out[7] == "Press **Play** to start. seed must be a whole number between 0 and 2147483647, got None" and session.spec is None
    assert h.choose_checkpoint(None, "ddim", 10, "ddim", 10, 4, None)[-2:] == (gr.skip(), gr.skip())


def test_default_sample_count_keeps_large_images_cheap():
    assert default_samples("image", (1, 8, 8)) == default_samples("image", (3, 16, 16)) == 16
    assert default_samples("image", (3, 32, 32)) == 9   # a 3x3 grid: each step is a forward pass on all
    assert default_samples("points", (2,)) == DEFAULT_SAMPLES["points"]


def test_sampler_change_shows_eta_only_for_ddim_and_suggests_steps(h, ckpt):
    eta, steps = h.sampler_changed(ckpt["tiny-digits"], "ddim")
    assert eta["visible"] is True and steps["value"] == 50
    eta, steps = h.sampler_changed(ckpt["tiny-digits"], "ddpm")
    assert eta["visible"] is False and steps["value"] == 200       # DDPM: all T steps
    assert h.sampler_changed(ckpt["tiny-digits"], "dpm++2m")[1]["value"] == 20
    eta, steps = h.sampler_changed(ckpt["tiny-digits"], "dpm++2m-sde")
    assert eta["visible"] is False and steps["value"] == 50
    assert h.sampler_changed(None, "ddim")[1] == gr.update()


def shipped(h, name: str) -> str:
    return next(e["path"] for e in h.checkpoints() if e["name"] == name and "assets" in str(e["path"]))


def test_a_shipped_model_says_which_settings_meet_its_goal_and_offers_the_fastest(h):
    words, button = h.measured(shipped(h, "swiss_roll"))
    assert "✗ DDIM, 50 steps: " in words and "✓ DPM-Solver++ 2M SDE, 50 steps, quadratic spacing" in words
    assert button["visible"] is True and "DPM-Solver++ 2M SDE, 50 steps, quadratic spacing" in button["value"]
    sampler, steps, spacing, eta, explain = h.use_measured(shipped(h, "swiss_roll"), False, "ddpm")
    assert (sampler["value"], steps["value"], spacing["value"]) == ("dpm++2m-sde", 50, "quadratic")
    assert eta["visible"] is False and "DPM-Solver++" in explain
    # digits meets its goal with the tab's own default (DDIM 50): said, and nothing to switch to
    words, button = h.measured(shipped(h, "digits"))
    assert "✓ DDIM, 50 steps" in words and button["visible"] is False
    # shapes meets it with DDIM 50 too, but the solver as fast misses fewer of the stricter image-quality goal
    words, button = h.measured(shipped(h, "shapes"))
    assert "stricter image-quality goal ✗" in words and "DPM-Solver++ 2M SDE, 50 steps, quadratic" in button["value"]


def test_a_model_without_recorded_figures_offers_nothing(h, ckpt):
    words, button = h.measured(ckpt["tiny-points"])  # trained here: no figures.json beside it
    assert words == "" and button["visible"] is False
    assert h.measured(None) == ("", gr.update(visible=False))
    with pytest.raises(gr.Error, match="no recorded setting that meets its goal"):
        h.use_measured(ckpt["tiny-points"])


def test_explanation_has_each_samplers_update_and_the_kinds_panels(h, ckpt):
    one = h.explanation(ckpt["tiny-digits"], "ddim")
    assert "DDIM" in one and "\\eta" in one and "DDPM (ancestral)" not in one and "three panels" in one
    both = h.explanation(ckpt["tiny-points"], "ddim", True, "dpm++2m")
    assert "DPM-Solver++ 2M" in both and "\\lambda" in both and "2-D points" in both and "same" in both
    assert "Signals" in h.explanation(ckpt["tiny-signals"], "ddpm")
    sde = h.explanation(ckpt["tiny-points"], "dpm++2m-sde")
    assert "DPM-Solver++ 2M SDE" in sde and "stochastic" in sde and "DDIM." not in sde


def test_showing_the_tab_again_redraws_nothing_unless_the_list_or_the_checkpoint_changed(
        h, ckpt, app_settings, trained_checkpoints):
    import shutil

    session = ReverseSession()
    listed = [[label, path] for label, path in h.choices(fresh=True)]
    args = ("ddim", 50, "ddpm", 1000, 16, "image", session)
    out = h.tab_shown(ckpt["tiny-digits"], listed, *args)
    assert len(out) == 9 and out[1] == listed
    assert all(o == gr.skip() for o in (out[0], *out[2:]))  # the same list, the same choice: no redraw

    extra = Path(app_settings.runs_dir) / "copy-of-points-shown"
    shutil.copytree(trained_checkpoints["tiny-points"], extra)
    try:  # a checkpoint saved since (as Train saves one): the list comes, the view and controls stay
        out = h.tab_shown(ckpt["tiny-digits"], listed, *args)
        assert str(extra) in [p for _, p in out[0]["choices"]]
        assert "value" not in out[0]  # a checkpoint chosen while the event was on its way stays chosen
        assert str(extra) in [p for _, p in out[1]]
        assert all(o == gr.skip() for o in out[2:])
        again = h.tab_shown(ckpt["tiny-digits"], out[1], *args)  # the page holds the new list now
        assert again[0] == gr.skip()
    finally:
        shutil.rmtree(extra)
    # the checkpoint in view is gone: the default is chosen and the controls are fitted to it
    gone = h.tab_shown("/no/such/checkpoint", listed, *args)
    assert gone[0]["value"] == h.default_checkpoint()
    assert gone[2:] == tuple(h.select_checkpoint(h.default_checkpoint(), *args))


def test_refresh_finds_a_new_checkpoint_and_keeps_the_choice(h, ckpt, app_settings, trained_checkpoints):
    import shutil

    extra = Path(app_settings.runs_dir) / "copy-of-points"
    shutil.copytree(trained_checkpoints["tiny-points"], extra)
    try:
        upd = h.refresh(ckpt["tiny-signals"])
        assert str(extra) in [p for _, p in upd["choices"]]
        assert upd["value"] == ckpt["tiny-signals"]
        assert h.refresh("/no/such/checkpoint")["value"] == h.default_checkpoint()
    finally:
        shutil.rmtree(extra)


# --- bad input ----------------------------------------------------------------------------------

def test_auto_speed_plays_any_run_in_about_the_same_time(h, ckpt):
    """The default speed paces a run by its length: DDIM 10 and DDPM 200 both take AUTO_SECONDS of clock."""
    from explorer.tabs import reverse_session as rh

    assert rh.DEFAULT_SPEED == "auto"
    settings = (ckpt["tiny-digits"], "ddim", 10, 0.0, 0, 4, False, "ddpm", 20, 0.0, "linear")
    for sampler, steps in (("ddim", 10), ("ddpm", 200)):
        session = ReverseSession()
        s, _, rate, *_ = h._begin((settings[0], sampler, steps, *settings[3:]), "auto", session)
        assert s.total == steps + 1 and rate == pytest.approx(s.total / rh.AUTO_SECONDS)
        s.token = None
    s, _, rate, *_ = h._begin((settings[0], "ddim", 2, *settings[3:]), "auto", ReverseSession())
    assert rate == 1.0  # a 3-tick run is not dragged out below a step a second


@pytest.mark.parametrize("change, message", [
    (dict(path=None), "Choose a checkpoint"),
    (dict(path="/etc"), "Unknown checkpoint"),
    (dict(steps=0), "steps (sampler) must be a whole number between 1 and 200, got 0"),
    (dict(steps=201), "between 1 and 200"),
    (dict(steps=2.5), "whole number"),
    (dict(sampler="euler"), "unknown sampler 'euler'; choose one of ddpm, ddpm-beta, ddim, dpm++2m"),
    (dict(eta=1.5), "eta (sampler) must be a number between 0.0 and 1.0"),
    (dict(n=65), "number of samples must be a whole number between 1 and 64"),
    (dict(seed=-1), "seed must be"),
    (dict(compare=True, steps_b=999), "steps (second sampler) must be a whole number between 1 and 200"),
    (dict(speed="warp"), "speed must be one of auto, 10, 30"),
])
def test_bad_settings_give_a_clear_error(h, ckpt, change, message):
    kw = dict(path=ckpt["tiny-digits"], sampler="ddim", steps=10, eta=0.0, seed=0, n=4, compare=False,
              sampler_b="ddpm", steps_b=20, eta_b=0.0, speed="max")
    kw.update(change)
    path = kw.pop("path")
    session, gen = play(h, path, **kw)
    with pytest.raises(gr.Error) as err:
        next(gen)
    assert message in err.value.message
    assert session.traj is None  # nothing half-started


def test_without_any_checkpoint_the_error_says_how_to_get_one(tmp_path):
    empty = ReverseHandlers(AppContext(Settings(runs_dir=tmp_path / "runs", shipped_checkpoints=tmp_path / "none")))
    assert empty.choices() == [] and empty.default_checkpoint() is None
    with pytest.raises(gr.Error, match="No checkpoint found. Train one"):
        next(empty.sample(None, "ddim", 10, 0.0, 0, 4))


def test_step_scrub_and_export_before_play_say_what_to_do(h):
    s = ReverseSession()
    with pytest.raises(gr.Error, match="press Play"):
        h.step(1, s)
    with pytest.raises(gr.Error, match="Nothing to export yet"):
        h.export("gif", s)
    assert h.scrub(3, s) == (gr.skip(),) * 4
    assert h.stop(s) == (gr.skip(),) * 4
    with pytest.raises(gr.Error, match="export format"):
        h.export("avi", s)


# --- playing --------------------------------------------------------------------------------------

def test_the_first_frame_comes_after_a_single_sampler_step(h, ckpt):
    session, gen = play(h, ckpt["tiny-digits"], sampler="ddpm", steps=200, speed="10")
    image, plot, caption, scrub = next(gen)
    gen.close()
    assert session.traj.ticks == 1 and len(session.traj) == 1   # nothing else computed before it showed
    assert isinstance(image, np.ndarray) and image.dtype == np.uint8
    assert plot == gr.skip()
    assert "step **1** of 200, t = 200" in caption and "computing" in caption  # plain text while playing
    assert scrub["interactive"] is False


def test_play_streams_to_the_end_and_matches_the_sample_endpoint(h, ckpt):
    session, outs = run(h, ckpt["tiny-digits"], sampler="ddpm", steps=50, seed=3, n=4)
    traj = session.traj
    assert traj.complete and len(traj) == 51 and session.cursor == 50 and not session.computing
    assert len(outs) >= 2
    last = outs[-1]
    assert "complete" in last[2] and "**done**" in last[2]
    assert last[3]["value"] == 50 and last[3]["maximum"] == 50 and last[3]["interactive"] is True
    # Every frame goes out once (Gradio would rewrite the same cached file while the browser reads it):
    # the final one with the closing view, which also frees the slider.
    final = last[0]
    assert isinstance(final, np.ndarray) and "**done**" not in outs[-2][2]
    pics = [o[0] for o in outs if isinstance(o[0], np.ndarray)]
    assert all(not np.array_equal(a, b) for a, b in zip(pics, pics[1:]))  # no frame is sent twice in a row
    pic, stats = list(h.sample(ckpt["tiny-digits"], "ddpm", 50, 0.0, 3, 4))[-1]
    np.testing.assert_array_equal(pic, final)  # same seed: the same x_T and the same DDPM noise
    assert stats["shape"] == [4, 1, 8, 8] and stats["finite"] and -1 <= stats["min"] <= stats["max"] <= 1
    other, _ = list(h.sample(ckpt["tiny-digits"], "ddpm", 50, 0.0, 4, 4))[-1]
    assert not np.array_equal(other, pic)
    assert 0 < stats["estimated_seconds"]  # from a measured model call, said before the run


@pytest.mark.parametrize("name", ["tiny-points", "tiny-signals", "tiny-digits"])
def test_the_predicted_x0_is_clipped_to_the_range_the_checkpoint_was_trained_for(h, ckpt, name):
    # as core.sample and core.evaluate do: without the clip, DDIM's first steps from pure noise throw
    # points far off (the shipped spiral's cosine schedule: nearly all of them)
    from core.checkpoint import sampling_clip
    spec, loaded = h.spec(ckpt[name], "ddim", 10, 0.0, 0, 8)
    clip = sampling_clip(loaded[2])
    assert clip is not None and clip == loaded[2]["x0_clip"]
    its, _ = h._iterators(spec, loaded)
    steps = list(its[0])
    assert max(float(s.x0.abs().max()) for s in steps) <= clip + 1e-6


def test_quadratic_spacing_visits_its_timesteps_in_both_lanes_and_says_so(h, ckpt):
    quad = [100, 81, 64, 49, 36, 25, 16, 9, 4, 1]  # T = 100: 100 (k / 10)^2 for k = 10 .. 1
    session, outs = run(h, ckpt["tiny-points"], sampler="ddim", steps=10, n=4, compare=True, sampler_b="dpm++2m",
                        steps_b=10)
    linear_end = session.traj.frames[-1][0].x_t
    session = ReverseSession()
    list(h.play(ckpt["tiny-points"], "ddim", 10, 0.0, 0, 4, True, "dpm++2m", 10, 0.0, "max", session, "quadratic"))
    lanes = session.spec.lanes
    assert [lane.spacing for lane in lanes] == ["quadratic", "quadratic"] and session.traj.complete
    assert [f[0].t for f in session.traj.frames[:-1]] == quad and [f[1].t for f in session.traj.frames[:-1]] == quad
    assert not np.array_equal(session.traj.frames[-1][0].x_t, linear_end)  # other timesteps, another sample
    assert "quadratic spacing" in animation.lane_title(lanes[0], session.traj.frames[0][0])
    _, stats = list(h.sample(ckpt["tiny-points"], "ddim", 10, 0.0, 0, 4, "quadratic"))[-1]
    assert stats["spacing"] == "quadratic"
    with pytest.raises(gr.Error, match="unknown timestep spacing 'cubic'; choose one of linear, quadratic"):
        list(h.play(ckpt["tiny-points"], "ddim", 10, 0.0, 0, 4, False, "ddpm", 10, 0.0, "max", ReverseSession(),
                    "cubic"))
    # a link carries it, and restores the control and the run
    name = h.entry(ckpt["tiny-points"])["name"]
    problems = []
    out = h.restore({"tab": "reverse", "checkpoint": name, "steps": 10, "n": 4, "spacing": "quadratic"}, problems)
    assert problems == [] and out[14]["value"] == "quadratic" and out[19].spec.lanes[0].spacing == "quadratic"


def test_sampling_states_its_cost_and_refuses_what_would_hold_the_queue(h, ckpt, monkeypatch):
    from explorer import costs

    model = h.load(ckpt["tiny-digits"])[0]
    per_call = costs.COSTS.seconds_per_call(ckpt["tiny-digits"], model, (1, 8, 8), 4, h.ctx.device)
    assert per_call > 0 and costs.COSTS.seconds_per_call(ckpt["tiny-digits"], model, (1, 8, 8), 4,
                                                         h.ctx.device) == per_call  # measured once, remembered
    spec, loaded = h.spec(ckpt["tiny-digits"], "ddpm", 200, 0.0, 0, 4)
    assert h.estimate(spec, loaded) == (pytest.approx(200 * per_call), per_call)
    monkeypatch.setattr(costs.COSTS, "seconds_per_call", lambda *a: 1.5)  # as a slow laptop would measure
    with pytest.raises(gr.Error) as info:
        next(h.sample(ckpt["tiny-digits"], "ddpm", 200, 0.0, 0, 4))
    message = str(info.value.message)
    assert "about 5 min on this device (1500 ms per step x 200 steps at n = 4)" in message
    assert "at most 2 min" in message and "at most 80 steps" in message and "DDIM with 50 steps" in message


def test_compare_runs_both_samplers_from_the_same_noise(h, ckpt):
    session, outs = run(h, ckpt["tiny-digits"], sampler="ddpm", steps=200, compare=True, sampler_b="ddim",
                        steps_b=10, n=4)
    traj = session.traj
    first = traj.frames[0]
    np.testing.assert_array_equal(first[0].x_t, first[1].x_t)
    assert len(traj) == session.total == 201
    assert {s.i for f in traj.frames for s in [f[1]]} == set(range(11))  # DDIM moved 10 times, then done
    assert all(s.done for s in traj.frames[-1])
    assert last_picture(outs).shape[0] > 2 * 200  # two rows of grids
    assert "DDIM" in outs[-1][2] and "DDPM" in outs[-1][2]


def test_pause_then_play_goes_on_with_the_same_run(h, ckpt):
    session, gen = play(h, ckpt["tiny-digits"], sampler="ddpm", steps=200, speed="30")
    for _ in range(3):
        next(gen)
    first = session.traj.frames[0]
    assert h.pause(session) == gr.skip()  # while playing, the generator itself shows where it paused
    assert "Paused" in h.pause(session)   # with nothing playing, Pause answers itself
    rest = list(gen)  # the generator notices and ends with a closing view: paused, slider free
    assert len(rest) == 1 and "paused" in rest[0][2] and rest[0][3]["interactive"] is True
    assert rest[0][0] == gr.skip()  # the frame on screen is where it paused: not sent a second time
    ticks = session.traj.ticks
    assert session.computing and ticks < 201
    _, again = play(h, ckpt["tiny-digits"], sampler="ddpm", steps=200, speed="max", session=session)
    list(again)
    assert session.traj.frames[0] is first and session.traj.complete and session.traj.ticks == 201


def test_stop_keeps_the_frames_and_play_starts_over(h, ckpt):
    session, gen = play(h, ckpt["tiny-digits"], sampler="ddpm", steps=200, speed="30")
    for _ in range(3):
        next(gen)
    assert h.stop(session) == (gr.skip(),) * 4  # while playing, the generator itself shows the end
    last = list(gen)
    assert len(last) == 1 and "Stopped" in last[0][2] and "stopped" in last[0][2]
    assert last[0][0] == gr.skip()  # the frame on screen is where it stopped: not sent a second time
    assert last[0][3]["interactive"] is True
    kept = len(session.traj)
    assert session.clock is None and not session.computing and kept >= 3
    assert "Stopped" in h.stop(session)[2]  # with nothing playing, Stop answers itself
    assert h.scrub(1, session)[2].startswith("DDPM: step **2**")
    old = session.traj
    _, again = play(h, ckpt["tiny-digits"], sampler="ddpm", steps=200, speed="max", session=session)
    next(again)
    again.close()
    assert session.traj is not old and len(session.traj) == 1


def test_step_back_and_forward_and_past_the_end_computes(h, ckpt):
    session, gen = play(h, ckpt["tiny-digits"], sampler="ddim", steps=10, speed="10")  # paced: mid-run after 3
    for _ in range(3):
        next(gen)
    h.pause(session)
    list(gen)
    at, ticks = session.cursor, session.traj.ticks
    h.back(session)
    assert session.cursor == at - 1
    h.forward(session)
    h.forward(session)
    assert session.cursor == at + 1 and session.traj.ticks == ticks + 1  # one new step computed
    out = h.step(-100, session)
    assert session.cursor == 0 and "step **1** of 10" in out[2]


def test_scrub_clamps_and_stops_playback(h, ckpt):
    session, outs = run(h, ckpt["tiny-digits"], sampler="ddim", steps=10)
    out = h.scrub(10_000, session)
    assert session.cursor == len(session.traj) - 1 and "**done**" in out[2]
    assert out[3] == gr.skip()  # the slider that sent the value is left alone
    session.token = object()
    h.scrub(2, session)
    assert session.cursor == 2 and session.token is None


def test_replay_of_a_finished_run_starts_from_the_beginning(h, ckpt):
    session, _ = run(h, ckpt["tiny-digits"], sampler="ddim", steps=10)
    frames = session.traj.frames
    _, gen = play(h, ckpt["tiny-digits"], sampler="ddim", steps=10, session=session)
    first = next(gen)
    assert "step **1** of 10" in first[2]
    list(gen)
    assert session.traj.frames is frames  # replayed, not recomputed


def test_points_show_trails_and_the_models_field(h, ckpt):
    session, outs = run(h, ckpt["tiny-points"], sampler="ddim", steps=10, n=50)
    # while playing, frames are server-drawn pictures (cheap for the browser); the closing view is the figure
    first, later = outs[0], outs[1:-1]
    assert isinstance(first[0]["value"], np.ndarray) and first[0]["visible"]
    # the hidden figure is emptied once (Gradio's page deep-copies a component's properties on updates
    # without a value); later frames send the picture alone and leave the plot be
    assert first[1] == {"__type__": "update", "value": None, "visible": False}
    assert all(isinstance(o[0], np.ndarray) and o[1] == gr.skip() for o in later)
    assert outs[-1][0]["visible"] is False
    fig = outs[-1][1]["value"]
    assert isinstance(fig, Figure) and outs[-1][1]["visible"] is True
    names = [tr["name"] for tr in fig.data]
    assert "-eps field" in names and "x_t" in names
    assert [im["name"] for im in fig.layout["images"]] == ["data"]  # the training data, one picture
    # the arrows are the model's eps at the frame's t, asked of core
    snap = session.traj.frames[3][0]
    pts, eps, spacing = h.field(session, snap.t)
    _, want = model_predictions(session.model, session.schedule, torch.from_numpy(pts), snap.t, "eps")
    np.testing.assert_allclose(eps, want.numpy(), rtol=1e-5, atol=1e-6)
    assert spacing == pytest.approx(2 * 3.2 / 16)
    mid = h.picture(session, 5)
    assert [tr["name"] for tr in mid.data].count("trails") == 1


def test_caption_and_slider_go_out_less_often_than_frames_and_end_right(h, ckpt, monkeypatch):
    from explorer.tabs import reverse_handlers

    monkeypatch.setitem(reverse_handlers.MAX_FPS, "points", 1e6)  # every frame goes out
    monkeypatch.setattr(reverse_handlers, "CAPTION_FPS", 1e-6)  # no words between the first and the closing view
    session, outs = run(h, ckpt["tiny-points"], sampler="ddim", steps=10, n=50)
    first, later, last = outs[0], outs[1:-1], outs[-1]
    assert "step **1** of 10" in first[2] and "computing" in first[2]
    assert first[3]["interactive"] is False
    assert len(later) == len(session.traj) - 2 and all(isinstance(o[0], np.ndarray) for o in later)
    assert all(o[2] == gr.skip() and o[3] == gr.skip() for o in later)
    top = len(session.traj) - 1
    assert "**done**" in last[2] and "complete" in last[2]
    assert last[3] == {"__type__": "update", "maximum": top, "value": top, "interactive": True}
    # at the usual rate, the captions that do go out while playing name their own frame and say computing
    monkeypatch.setattr(reverse_handlers, "CAPTION_FPS", 1e6)
    session, outs = run(h, ckpt["tiny-points"], sampler="ddim", steps=10, n=50, seed=1)
    assert len(outs) == len(session.traj)
    for o in outs[1:-1]:
        assert "computing" in o[2] and o[3]["maximum"] >= o[3]["value"] and "interactive" not in o[3]


def test_signals_show_line_plots(h, ckpt):
    session, outs = run(h, ckpt["tiny-signals"], sampler="dpm++2m", steps=8, n=3)
    fig = outs[-1][1]["value"]
    assert isinstance(fig, Figure) and len(fig.data) == 3 * 3 and len(fig.data[0]["y"]) == 32


def test_few_step_ddpm_warns_but_runs(h, ckpt):
    session, gen = play(h, ckpt["tiny-digits"], sampler="ddpm", steps=5)
    with pytest.warns(UserWarning, match="DDPM with 5 of T=200 steps"):
        outs = list(gen)
    assert session.traj.complete and len(outs) >= 1


# --- export -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["tiny-digits", "tiny-points"])
def test_export_gif_and_mp4(h, ckpt, name):
    import imageio.v2 as imageio

    session, _ = run(h, ckpt[name], sampler="ddpm", steps=30, compare=True, sampler_b="ddim", steps_b=5, n=6)
    gif = Path(h.export("gif", session))
    assert gif.suffix == ".gif" and "ddpm30-vs-ddim5-seed0" in gif.name
    raster = h.raster(session, 0)
    with Image.open(gif) as im:
        assert im.size == (raster.shape[1], raster.shape[0])
        assert 2 <= im.n_frames <= 31
    mp4 = Path(h.export("mp4", session))
    reader = imageio.get_reader(mp4, format="FFMPEG")
    try:
        n_frames = sum(1 for _ in reader)
    finally:
        reader.close()
    assert n_frames >= 31  # every recorded frame, then the last one held


# --- the API through gradio_client ------------------------------------------------------------------

def test_api_sample_returns_the_picture_and_stats(client, ckpt):
    image, stats = client.predict(ckpt["tiny-digits"], "ddim", 10, 0.0, 5, 4, api_name="/reverse_sample")
    assert Path(image).is_file()
    assert stats["n"] == 4 and stats["steps"] == 10 and stats["shape"] == [4, 1, 8, 8] and stats["finite"]


def test_api_play_streams_frames_then_export(client, ckpt):
    job = client.submit(ckpt["tiny-digits"], "ddim", 20, 0.0, 0, 4, False, "ddpm", 10, 0.0, "100",
                        api_name="/reverse_play")
    job.result(timeout=120)
    outputs = job.outputs()
    assert len(outputs) >= 2
    image, plot, caption, scrub = outputs[-1]
    assert Path(image).is_file() and "complete" in caption
    gif = client.predict("gif", api_name="/reverse_export")
    assert Path(gif).suffix == ".gif" and Path(gif).stat().st_size > 0


def test_api_errors_are_messages_not_tracebacks(client, ckpt):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="between 1 and 200"):
        client.predict(ckpt["tiny-digits"], "ddim", 201, 0.0, 0, 4, api_name="/reverse_sample")
    with pytest.raises(AppError, match=r"steps \(sampler\) must be a whole number between 1 and 200, got 0"):
        client.predict(ckpt["tiny-digits"], "ddim", 0, 0.0, 0, 4, api_name="/reverse_sample")  # the checkpoint's range
    with pytest.raises(AppError, match="eta must be a number from 0 to 1, got 2"):  # the control's own bound
        client.predict(ckpt["tiny-digits"], "ddim", 10, 2.0, 0, 4, api_name="/reverse_sample")
    with pytest.raises(AppError, match="Unknown checkpoint"):
        client.predict("/etc", "ddim", 10, 0.0, 0, 4, api_name="/reverse_sample")


# --- restoring a link ----------------------------------------------------------------------------

def test_a_link_with_a_frame_shows_the_same_picture_as_playing_to_it(h, ckpt):
    session, outs = run(h, ckpt["tiny-digits"], sampler="ddim", steps=10, seed=5, n=4)
    session.cursor = 6
    want = h.view(session, 6)[0]
    name = h.entry(ckpt["tiny-digits"])["name"]
    link = {"tab": "reverse", "checkpoint": name, "sampler": "ddim", "steps": 10, "seed": 5, "n": 4, "frame": 6}
    for recorded in (True, False):  # the run above was recorded; then computed live up to the frame
        if not recorded:
            h.recordings.clear()
        problems = []
        out = h.restore(link, problems)
        assert problems == [] and len(out) == 20
        (ck, sampler, steps, eta, seed, n, info, steps_b, kind, explain, compare, second, sampler_b, eta_b, spacing,
         image, plot, caption, scrub, restored) = out
        assert spacing["value"] == "linear"
        assert ck["value"] == ckpt["tiny-digits"] and sampler["value"] == "ddim" and steps["value"] == 10
        assert steps_b["maximum"] == steps_b["value"] == 200  # never above this model's T (Play would refuse it)
        assert compare["value"] is False and second["visible"] is False and len(restored.spec.lanes) == 1
        assert seed["value"] == 5 and n["value"] == 4 and kind == "image"
        assert np.array_equal(image["value"], want) and image["visible"] is True
        assert scrub["value"] == 6 and restored.cursor == 6 and restored.recorded is recorded
        assert ("recorded earlier" in caption) is recorded and "paused" in caption


def test_a_link_or_lesson_stop_without_a_frame_opens_on_the_first_frame_even_when_not_recorded(h, ckpt):
    h.recordings.clear()
    name = h.entry(ckpt["tiny-digits"])["name"]
    out = h.restore({"tab": "reverse", "checkpoint": name, "sampler": "ddpm", "steps": 200, "seed": 3, "n": 4}, [])
    image, scrub, restored = out[15], out[18], out[19]
    assert image["visible"] is True and image["value"] is not None  # the noise it starts from, not an empty box
    assert restored.cursor == 0 and scrub["value"] == 0 and not restored.recorded
    assert "Ready: press Play (or Space). 200 steps, computed live" in out[17] and "paused" not in out[17]  # nothing has played yet
    session, _ = run(h, ckpt["tiny-digits"], sampler="ddpm", steps=200, seed=3, n=4)
    assert np.array_equal(image["value"], h.view(session, 0)[0])  # the same first frame Play shows


def test_a_link_with_bad_reverse_settings_falls_back_and_says_why(h, ckpt):
    problems = []
    name = h.entry(ckpt["tiny-digits"])["name"]
    out = h.restore({"tab": "reverse", "checkpoint": name, "sampler": "euler", "steps": 5000, "n": 999}, problems)
    assert out[1]["value"] == "ddim" and out[2]["value"] == 50 and out[5]["value"] == 16
    assert any("sampler='euler' is not one of" in p for p in problems)
    assert any("steps=5000 is more than this model's T=200" in p for p in problems)
    assert any("n=999 is more than 64" in p for p in problems)
    session, _ = run(h, ckpt["tiny-digits"], sampler="ddim", steps=10)
    h.select_checkpoint(ckpt["tiny-signals"], "ddim", 50, "ddim", 50, 4, "image", session)  # another model
    assert session.traj is None and session.spec is None  # its run went with it: Step has nothing
    with pytest.raises(gr.Error, match="press Play first"):
        h.step(1, session)
    problems = []
    h.restore({"tab": "reverse", "checkpoint": "no-such-model"}, problems)
    assert problems and "there is no checkpoint 'no-such-model' here" in problems[0]
    assert all(o == gr.skip() for o in h.restore({"tab": "forward", "steps": 3}, []))  # a lesson stop elsewhere
    assert all(o == gr.skip() for o in h.restore({"tab": "forward", OPENING: True}, [])[:14])  # page opens


def test_a_link_or_lesson_stop_can_put_a_second_sampler_beside_the_first(h, ckpt):
    name = h.entry(ckpt["tiny-digits"])["name"]
    link = {"tab": "reverse", "checkpoint": name, "sampler": "ddim", "steps": 10, "seed": 1, "n": 4,
            "compare": True, "sampler_b": "ddpm", "steps_b": 20}
    problems = []
    out = h.restore(link, problems)
    compare, second, sampler_b, eta_b, steps_b, restored = out[10], out[11], out[12], out[13], out[7], out[19]
    assert problems == [] and compare["value"] is True and second["visible"] is True
    assert sampler_b["value"] == "ddpm" and steps_b["value"] == 20 and eta_b["visible"] is False
    assert [(lane.sampler, lane.steps) for lane in restored.spec.lanes] == [("ddim", 10), ("ddpm", 20)]
    assert "DDPM" in out[9]  # the explanation names both samplers
    problems = []
    out = h.restore({**link, "sampler_b": "euler", "steps_b": 999}, problems)
    assert out[12]["value"] == "ddpm" and out[7]["value"] == 200  # DDPM's default: all T steps
    assert any("sampler_b='euler' is not one of" in p for p in problems)
    assert any("steps_b=999 is more than this model's T=200" in p for p in problems)


def test_a_long_play_says_its_cost_up_front_and_the_time_left(h, ckpt, monkeypatch, capsys):
    from explorer import costs

    monkeypatch.setattr(costs.COSTS, "seconds_per_call", lambda *a: 0.1)  # as a slow laptop would measure
    session, gen = play(h, ckpt["tiny-digits"], sampler="ddpm", steps=200, n=4, speed="max")
    first = next(gen)
    next(gen)
    gen.close()
    said = capsys.readouterr().out
    assert "This run: computing takes about 20 s on this device (100 ms per step)" in said
    assert "DDIM with 50 steps would take about 5 s" in said
    assert "of computing left" in first[2] and session.estimate == pytest.approx(20.0)


def test_the_time_left_follows_the_runs_own_pace_when_the_machine_is_slower_than_measured(h, ckpt, monkeypatch):
    from explorer import costs

    monkeypatch.setattr(costs.COSTS, "seconds_per_call", lambda *a: 0.001)  # measured when the machine was quiet
    session, gen = play(h, ckpt["tiny-digits"], sampler="ddpm", steps=200, n=4, speed="max")
    next(gen)
    assert "computing left" not in h.progress(session, playing=True)  # 0.2 s in all: nothing to say
    tick = session.clock.tick

    def busy_tick():  # now each step takes 25 ms: the laptop got busy
        time.sleep(0.025)
        return tick()

    session.clock.tick = busy_tick
    while session.timed < 12:
        next(gen)
    gen.close()
    left = session.total - session.traj.ticks
    line = h.progress(session, playing=True)
    seconds = float(line.split("About ")[1].split(" s of computing left")[0])
    assert seconds >= 0.02 * left, line  # from the estimate it would say 0.2 s in all, from the pace over 3.7 s


# --- recorded runs -------------------------------------------------------------------------------

def test_a_run_already_computed_is_replayed_in_any_session_without_computing(h, ckpt):
    first, outs = run(h, ckpt["tiny-digits"], sampler="ddim", steps=10, seed=7, n=4)
    assert not first.recorded and "computed live" in outs[-1][2]
    again, gen = play(h, ckpt["tiny-digits"], sampler="ddim", steps=10, seed=7, n=4, speed="max")
    frame0 = next(gen)
    assert again.recorded and again.traj is first.traj and again.clock is None and again.cursor == 0
    assert "recorded earlier" in frame0[2] and "replaying" in frame0[2]
    rest = list(gen)
    assert again.cursor == len(first.traj) - 1 and "complete" in rest[-1][2]
    assert np.array_equal(last_picture([frame0, *rest]), last_picture(outs))
    other, _ = run(h, ckpt["tiny-digits"], sampler="ddim", steps=10, seed=8, n=4)  # a changed setting: live
    assert not other.recorded and other.traj is not first.traj


def test_a_stopped_run_is_not_recorded(h, ckpt):
    session, gen = play(h, ckpt["tiny-digits"], sampler="ddpm", steps=200, speed="30")
    next(gen)
    h.stop(session)
    list(gen)
    assert len(h.recordings) == 0
    again, gen = play(h, ckpt["tiny-digits"], sampler="ddpm", steps=200, speed="30")
    next(gen)
    assert not again.recorded and again.computing
    h.stop(again)
    list(gen)


def test_api_cancel_stops_a_long_sample_and_frees_the_queue(app, client, ckpt):
    """Cancel ends a running 'Sample to the end' between steps: the next request runs instead of waiting.

    The model is slowed (30 ms per call at n = 64) and its calls counted: uncancelled, the first request
    would run all 200 steps before the second could start (one sampling request at a time).
    """
    import time

    model = app.ctx.load_checkpoint(ckpt["tiny-digits"])[0]
    calls = {64: 0, 2: 0}

    def slow(module, args):
        n = args[0].shape[0]
        if n in calls:
            calls[n] += 1
        if n == 64:
            time.sleep(0.03)

    hook = model.register_forward_pre_hook(slow)
    try:
        job = client.submit(ckpt["tiny-digits"], "ddpm", 200, 0.0, 1, 64, api_name="/reverse_sample")
        while calls[64] < 10 and not job.done():   # wait until it is sampling
            time.sleep(0.02)
        assert not job.done()
        job.cancel()   # what the Cancel button does: the queue cancels the running event
        image, stats = client.predict(ckpt["tiny-digits"], "ddim", 5, 0.0, 0, 2, api_name="/reverse_sample")
        assert stats["n"] == 2 and stats["steps"] == 5 and calls[2] >= 5
        # the queue is free; the cancelled loop must have stopped too, not go on in its thread: it has
        # stopped once 3 s pass without a call of its model (uncancelled it calls every 30 ms to step 200)
        seen = -1
        while seen != calls[64] and calls[64] < 200:
            seen = calls[64]
            time.sleep(3)
        assert calls[64] < 100, f"the cancelled run went on: {calls[64]} of 200 steps"
    finally:
        hook.remove()


# --- the page's Play: frames through the live feed ------------------------------------------------

def play_live(h, path, session=None, **kw):
    args = dict(sampler="ddim", steps=10, eta=0.0, seed=0, n=4, compare=False, sampler_b="ddpm", steps_b=20,
                eta_b=0.0, speed="max")
    args.update(kw)
    session = session if session is not None else ReverseSession()
    return session, h.play_live(path, *args.values(), session)


def take_all(feed, got: list) -> None:
    """A page's player: take the newest frame until the feed closes."""
    import time as _time

    seq = 0
    while not feed.closed:
        frame = feed.take(seq)
        if frame is None:
            _time.sleep(0.002)
            continue
        seq = frame[0]
        got.append(frame)


def test_live_play_sends_frames_through_the_feed_and_only_two_views_through_gradio(h, ckpt):
    import re
    import threading

    from explorer.feed import FEEDS

    session, gen = play_live(h, ckpt["tiny-digits"], sampler="ddpm", steps=200)
    first = next(gen)
    assert len(first) == 5 and "step **1** of 200" in first[2] and "computing" in first[2]
    token = re.fullmatch(r'<span data-feed="([\w-]+)"></span>', first[4]).group(1)
    feed = FEEDS.get(token)
    got: list = []
    taker = threading.Thread(target=take_all, args=(feed, got))
    taker.start()
    rest = list(gen)
    taker.join(timeout=30)
    assert len(rest) == 1, "the frames between the first and the closing view go through the feed"
    closing = rest[0]
    assert "complete" in closing[2] and closing[4] == "" and FEEDS.get(token) is None
    assert isinstance(closing[0], np.ndarray)  # the page's picture from Gradio is the first frame: the last one goes out
    assert len(got) >= 3
    indices = [g[3] for g in got]
    assert indices == sorted(indices) and len(set(indices)) == len(indices)
    assert all(g[1][:2] == b"\xff\xd8" for g in got)  # JPEG
    for _, _, caption, index, frames in got:
        assert f"Frame {index} of" in caption and "computing" in caption and index < frames


def test_live_play_draws_no_frame_the_page_has_not_asked_for(h, ckpt, monkeypatch):
    """With no page taking frames, the run computes to its end but draws a single frame for the feed."""
    from explorer.tabs import reverse_handlers
    from explorer.tabs.reverse_handlers import ReverseHandlers

    # no pacing gap: on a quick machine the whole run can end within one gap, and no frame would be due
    monkeypatch.setattr(reverse_handlers, "LIVE_FPS", dict.fromkeys(reverse_handlers.LIVE_FPS, 1e9))
    drawn = []
    raster = ReverseHandlers.raster
    monkeypatch.setattr(ReverseHandlers, "raster", lambda self, s, k, **kw: drawn.append(k) or raster(self, s, k, **kw))
    session, gen = play_live(h, ckpt["tiny-points"], sampler="ddpm", steps=50, seed=3)
    outs = list(gen)
    assert len(outs) == 2 and "complete" in outs[1][2]
    # the first view's picture, one frame for the feed that nobody took, and the closing view's picture
    assert len(drawn) == 3 and drawn[-1] == session.cursor


def test_a_run_computed_faster_than_the_frame_slots_ends_in_a_slot_of_its_own(h, ckpt, monkeypatch):
    """The closing view (the final frame) waits for the next free slot of the frame grid, so the page shows
    the frame before it for its slot (sent just after it, that frame was never shown). Slots of 100 s here:
    the whole run falls in the first view's slot, and the play ends by waiting out the rest of it."""
    from explorer.tabs import reverse_handlers

    monkeypatch.setattr(reverse_handlers, "LIVE_FPS", dict.fromkeys(reverse_handlers.LIVE_FPS, 0.01))
    waits = []  # what the play waits before its closing view (recorded, not slept)
    until_free = reverse_handlers.FrameSlots.until_free
    monkeypatch.setattr(reverse_handlers.FrameSlots, "until_free", lambda self: waits.append(until_free(self)) or 0.0)
    session, gen = play_live(h, ckpt["tiny-points"], sampler="ddim", steps=10, seed=3)
    outs = list(gen)
    assert len(outs) == 2 and "complete" in outs[1][2]  # no frame in between: no slot was free
    assert len(waits) == 1 and 90 < waits[0] <= 100


def test_a_live_2d_play_ends_on_its_last_picture_and_the_figure_comes_when_the_page_asks(h, ckpt):
    """The page's Play of a 2-D run ends on the last frame's picture (the figure stays hidden) with a word
    that the interactive figure waits, new for each play; `figure` then draws it for the frame shown.
    Nothing while a run plays, for an image run, or with no run; the API's Play still ends on the figure."""
    import re

    session, gen = play_live(h, ckpt["tiny-points"], sampler="ddim", steps=10, seed=3)
    closing = list(gen)[-1]
    assert "complete" in closing[2] and session.cursor == len(session.traj) - 1
    np.testing.assert_array_equal(closing[0]["value"], h.raster(session, session.cursor, themed=True))
    assert closing[0]["visible"] is True and closing[1] == {"__type__": "update", "visible": False}
    key = re.fullmatch(r'<span data-figure-later="([\w-]+)"></span>', closing[4]).group(1)
    _, again = play_live(h, ckpt["tiny-points"], session=session, sampler="ddim", steps=10, seed=3)
    assert re.fullmatch(r'<span data-figure-later="([\w-]+)"></span>', list(again)[-1][4]).group(1) != key

    image, plot = h.figure(session)
    assert image == {"__type__": "update", "visible": False} and plot["visible"] is True
    assert plot["value"].to_json() == h.picture(session, session.cursor).to_json()

    session.token = object()  # a run playing: nothing
    assert h.figure(session) == (gr.skip(), gr.skip())
    session.token = None
    assert h.figure(None) == (gr.skip(), gr.skip())
    digits, gen = play_live(h, ckpt["tiny-digits"], sampler="ddim", steps=10)
    assert list(gen)[-1][4] == ""  # image runs end on their picture as always: nothing waits
    assert h.figure(digits) == (gr.skip(), gr.skip())

    api = list(h.play(ckpt["tiny-points"], "ddim", 10, 0.0, 4, 4, False, "ddpm", 20, 0.0, "max", ReverseSession()))
    assert api[-1][0] == {"__type__": "update", "visible": False} and api[-1][1]["visible"] is True


def test_live_play_pause_ends_the_feed_and_the_run_goes_on_with_play(h, ckpt):
    import threading

    session, gen = play_live(h, ckpt["tiny-digits"], sampler="ddpm", steps=200, speed="30")
    next(gen)  # the first view
    threading.Timer(0.3, h.pause, args=(session,)).start()
    closing = list(gen)[-1]
    assert "paused" in closing[2] and closing[4] == ""
    at = session.cursor
    assert 0 < at < 200
    _, again = play_live(h, ckpt["tiny-digits"], session=session, sampler="ddpm", steps=200)
    outs = list(again)
    assert "complete" in outs[-1][2] and session.traj.ticks == 201


# --- Play's first frame before Play's event: the session's armed feed -------------------------------

def armed_feed(h, session):
    import re

    from explorer.feed import FEEDS

    token = re.fullmatch(r'<span data-armed="([\w-]+)"></span>', h.arm(session)).group(1)
    return FEEDS.get(token)


def test_a_play_click_gets_the_next_recorded_frame_from_the_armed_feed_and_play_goes_on_from_it(h, ckpt):
    import threading

    path = ckpt["tiny-digits"]
    session, _ = run(h, path, sampler="ddim", steps=10, seed=5)
    h.scrub(3, session)
    assert h.arm(ReverseSession()) == "" and h.arm(None) == ""  # no run: nothing to arm
    feed = armed_feed(h, session)
    assert armed_feed(h, session) is feed  # asked again at rest: the same feed
    ahead = feed.peek()  # the page's look ahead: frame 5 as it will be sent, and nothing moves
    assert ahead[2] == 4 and "Frame 4 of 10" in ahead[1] and session.cursor == 3 and feed.armed
    assert feed.start()  # the page's Play click (play=1), before Play's event reaches the server
    seq, data, caption, index, frames = feed.take(0)
    assert (index, frames) == (4, 11) and data[:2] == b"\xff\xd8" and "Frame 4 of 10" in caption
    sent = np.asarray(Image.open(__import__("io").BytesIO(data)), dtype=float)
    off = [np.abs(h.raster(session, k, themed=True) - sent).mean() for k in (3, 4)]
    assert off[1] < 2 < off[0], f"the frame sent is frame 5 (JPEG aside): mean differences {off}"
    _, gen = play_live(h, path, session=session, sampler="ddim", steps=10, seed=5, speed="30")
    first = next(gen)  # Gradio's image gets the frame the page shows already; the play goes on from it
    assert np.array_equal(first[0], h.picture(session, 4))
    assert "Frame 4 of 10" in first[2] and first[4] == f'<span data-feed="{feed.token}"></span>'
    got: list = []
    taker = threading.Thread(target=take_all, args=(feed, got))
    taker.start()
    closing = list(gen)[-1]
    taker.join(timeout=30)
    assert "complete" in closing[2] and session.cursor == 10
    indices = [g[3] for g in got]  # (the taker starts from nothing, so it may take frame 5 again first)
    assert indices == sorted(indices) and indices[0] >= 4 and indices[-1] > 4
    assert session.armed is None and h.arm(session) != f'<span data-armed="{feed.token}"></span>'  # a new one


def test_an_armed_feed_draws_nothing_for_a_new_run_a_stopped_run_or_while_one_plays(h, ckpt):
    from explorer.feed import FEEDS

    path = ckpt["tiny-digits"]
    session, _ = run(h, path, sampler="ddim", steps=10, seed=5)
    feed = armed_feed(h, session)
    session.token = object()  # a play is on (its event arrived first)
    assert not feed.start() and feed.armed
    session.token = None
    # the page's settings changed (a new seed): the click's frame came from the run before, so the
    # play gets a new feed and shows its own first picture
    assert feed.start() and feed.started == 0  # at the end of a complete run, Play replays from frame 0
    _, gen = play_live(h, path, session=session, sampler="ddim", steps=10, seed=6)
    first = next(gen)
    assert isinstance(first[0], np.ndarray) and feed.closed and f'"{feed.token}"' not in first[4]
    list(gen)
    # a run stopped part-way starts over on Play: nothing to replay from the armed feed
    _, gen = play_live(h, path, session=session, sampler="ddpm", steps=200, seed=7, speed="30")
    next(gen)
    h.stop(session)
    list(gen)
    assert not session.traj.complete
    again = armed_feed(h, session)
    assert not again.start() and again.armed and FEEDS.get(again.token) is again


def test_the_armed_feed_draws_a_scrubbed_frame_as_its_picture_without_moving_the_session(h, ckpt):
    path = ckpt["tiny-digits"]
    session, _ = run(h, path, sampler="ddim", steps=10, seed=5)
    h.scrub(3, session)
    feed = armed_feed(h, session)
    data, caption, index, frames = feed.view(7)
    assert (index, frames, caption) == (7, 11, "") and session.cursor == 3 and feed.armed
    sent = np.asarray(Image.open(__import__("io").BytesIO(data)), dtype=float)
    off = [np.abs(h.raster(session, k, themed=True) - sent).mean() for k in (3, 7)]
    assert off[1] < 2 < off[0], f"the picture is frame 7 (JPEG aside): mean differences {off}"
    assert feed.view(11) is None and feed.view(-1) is None  # no such frame
    session.token = object()  # a play is on: its frames come from its own feed
    assert feed.view(7) is None
    session.token = None
    import threading

    got = []
    with session.lock:  # the session is busy (a step, Play's event): declined, not waited for
        asker = threading.Thread(target=lambda: got.append(feed.view(7)))
        asker.start()
        asker.join(timeout=30)
    assert got == [None]


def test_the_caption_typesets_small_numbers_as_powers_of_ten():
    from explorer.tabs.reverse_text import tex_number

    assert tex_number(4.04e-05) == r"4.04 \times 10^{-5}" and tex_number(1e-10) == r"1 \times 10^{-10}"
    assert tex_number(0.5) == "0.5" and tex_number(0.99987) == "1" and tex_number(0.0123) == "0.0123"


def test_a_replayed_runs_line_names_its_steps_only_where_its_frames_leave_some_out(h, ckpt):
    """'Frame 0 of 10 · 10 steps' said the same number twice, and the line wrapped under the presenter
    view's picture; a run recorded every k-th step still says how many steps it took."""
    run(h, ckpt["tiny-digits"], steps=10)  # computed, kept: the same setting again replays
    session, outs = run(h, ckpt["tiny-digits"], steps=10)
    assert session.recorded
    line = h.progress(session)
    assert line.startswith("Frame 10 of 10 · recorded earlier, replayed without computing") and "steps" not in line
    session.traj.stride, session.traj.ticks = 4, 41  # as if 40 steps were recorded every 4th
    assert h.progress(session).startswith("Frame 10 of 10 · 40 steps (recording every 4th to bound memory) · "
                                          "recorded earlier")
