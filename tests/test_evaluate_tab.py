"""The Evaluate tab: its handlers called directly, and its API endpoints through gradio_client."""
from __future__ import annotations

import csv
import re
import threading

import gradio as gr
import numpy as np
import torch
import pytest

from core.config import DataConfig, DiffusionConfig, RunConfig, TrainConfig
from core.data import load_dataset
from core.training import Trainer
from explorer.context import AppContext
from explorer.measured import MAX_BYTES
from explorer.quiz import STORE
from explorer.render import Figure
from explorer.tabs import evaluate_figures as ef
from explorer.tabs import evaluate_handlers as eh
from explorer.tabs.evaluate_figures import fmt
from explorer.tabs.evaluate_handlers import EvaluateHandlers, history_points
from reverse_checkpoints import SPECS

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


@pytest.fixture(scope="module")
def h(app_settings, trained_checkpoints):
    return EvaluateHandlers(AppContext(app_settings))


def finish(gen):
    """Run a streaming handler to its end; returns (every progress output, the last outputs)."""
    outs = list(gen)
    assert len({len(o) for o in outs}) == 1  # every yield fills the same outputs
    return [o[0] for o in outs], outs[-1]


# --- small pieces ---------------------------------------------------------------------------

def test_history_points_spread_over_the_run():
    entries = [{"name": f"step-{i}", "steps": i} for i in range(30, 0, -1)]
    picked = history_points(entries, most=5)
    assert [e["steps"] for e in picked] == [1, 8, 15, 23, 30]  # indices round(linspace(0, 29, 5))
    assert history_points(entries[:3], most=5) == sorted(entries[:3], key=lambda e: e["steps"])


def test_select_describes_the_checkpoint(h, ckpt):
    info, n = h.select(ckpt["tiny-points"])
    assert "gaussians8" in info and "mlp" in info and "T = 100" in info and n == eh.DEFAULT_N["points"]
    with pytest.raises(gr.Error, match="Unknown checkpoint"):
        h.select("/no/such/checkpoint")


def test_a_shipped_model_shows_its_recorded_figures_until_evaluate_measures_again(h, ckpt, tmp_path):
    import html
    import json
    from pathlib import Path

    from core.samplers import sampler_name

    shipped = Path(__file__).resolve().parent.parent / "assets" / "checkpoints" / "moons"
    stored = json.loads((shipped / "figures.json").read_text())
    table = ef.stored_figures(shipped)
    text = re.sub(r"<[^>]+>", "", table)  # as read on the page (a name's note in brackets lies in a span)
    assert "Recorded with this model" in table and "Press <b>Evaluate</b> to measure again" in table
    for run in stored["runs"]:  # one table per sampler setting, every figure in it with its reading
        assert f"by {html.escape(sampler_name(run['sampler']))} ({fmt(run['steps'])} steps" in table
        if run.get("spacing", "linear") != "linear":  # every option that is not the default is said
            assert f"steps, {run['spacing']} spacing, seed 0)" in table
        for f in run["metrics"].values():
            assert html.escape(f["label"]) in text and fmt(f["value"]) in table
            if f.get("floor") is not None:
                assert ef.fmt_pm(f["floor"], f.get("floor_sd")) in table
    assert table.count("<table>") == len(stored["runs"])
    # each run's main figures marked: as many marks as the runs' overall readings name figures
    named = sum(len(r["overall"][g]) for r in stored["runs"] for g in ("same", "worse", "better"))
    assert named > 0 and table.count("class='ev-main'") == named
    assert h.figures_at_rest(ckpt["tiny-points"]) == ef.EVALUATE_PROMPT  # trained here: nothing recorded
    # choosing a model also clears an earlier evaluation's warnings and MSE chart (another model's)
    table2, warnings, mse = h.figures_view_at_rest(ckpt["tiny-points"])
    assert table2 == ef.EVALUATE_PROMPT and warnings == "" and isinstance(mse, Figure)
    assert mse.to_json().startswith('{"data":[]') and "press Evaluate" in mse.to_json()
    assert h.figures_at_rest(None) == ef.EVALUATE_PROMPT
    with pytest.raises(gr.Error, match="Unknown checkpoint"):  # only listed checkpoints are read
        h.figures_at_rest("/no/such/checkpoint")
    for bad in ("{not json", json.dumps({"runs": "x"}), json.dumps([1, 2]), "x" * (MAX_BYTES + 1)):
        (tmp_path / "figures.json").write_text(bad)
        assert ef.stored_figures(tmp_path) == ef.EVALUATE_PROMPT


def test_a_shipped_model_shows_its_recorded_mse_per_timestep_until_evaluate_measures_again(h, tmp_path):
    import json
    from pathlib import Path

    paths = {Path(p).name: p for _, p in h.choices()}
    for name in ("digits", "swiss_roll", "signals_gru"):
        recorded = json.loads((Path(paths[name]) / "figures.json").read_text())["mse"]
        _, _, fig = h.figures_view_at_rest(paths[name])
        d = json.loads(fig.to_json())
        curve = d["data"][-1]
        assert np.allclose(curve["x"], recorded["per_t"]["t"], rtol=1e-3)
        assert np.allclose(curve["y"], recorded["per_t"]["mse"], rtol=1e-3)  # the recorded numbers, rounded
        assert f"recorded, n = {recorded['n']:,}" in d["layout"]["xaxis"]["title"]["text"]
        assert d["data"][0]["fill"] == "toself"  # the band of ±2 standard errors
    # a file with no curve, or a broken one, gives the chart saying what Evaluate will show
    stored = json.loads((Path(paths["moons"]) / "figures.json").read_text())
    for mse in (None, {"n": 10, "per_t": {"t": [1, 2], "mse": [0.5], "sem": [0.1, 0.1]}},
                {"n": 10, "per_t": {"t": [1], "mse": [-1.0], "sem": [0.1]}},
                {"n": "10", "per_t": {"t": [1], "mse": [1.0], "sem": [0.1]}}, "x"):
        (tmp_path / "figures.json").write_text(json.dumps({**stored, "mse": mse}))
        assert ef.stored_mse(tmp_path) is None
    assert "press Evaluate" in eh.mse_at_rest(tmp_path).to_json()


def test_a_shipped_model_opens_visual_inspection_on_its_recorded_samples(h, ckpt):
    from pathlib import Path

    from explorer import recordings

    paths = {Path(p).name: p for _, p in h.choices()}
    kind, gen, real, gen_label, real_label = h.recorded_samples(paths["digits"])
    meta, traj = recordings.load(Path(paths["digits"]) / recordings.FILE)
    n = meta["setting"]["n"]
    assert kind == "image" and gen_label == f"{n} samples of the recorded run (DDIM, 50 steps, seed 0)"
    assert real_label == f"{n} real samples" and gen.ndim == 2 and gen.shape == real.shape  # two grids alike (grey)
    final = traj.frames[-1][0].x_t
    assert final.dtype == np.uint8 and final.shape[0] == n  # the finished samples, as the Reverse tab ends on
    outs = h.inspection_at_rest(paths["swiss_roll"])
    assert outs[0]["visible"] is False and isinstance(outs[1]["value"], Figure)  # points: scatter plots
    assert h.recorded_samples(ckpt["tiny-points"]) is None  # trained here: no recording
    emptied = h.inspection_at_rest(ckpt["tiny-points"])  # no recording: no other model's samples left on show
    assert emptied[1]["value"] is None and emptied[3]["value"] is None and emptied[1]["visible"] is True


def test_a_shipped_model_opens_memorisation_on_its_recorded_samples_nearest_training_examples(h, ckpt):
    from pathlib import Path

    from core.data import load_dataset

    paths = {Path(p).name: p for _, p in h.choices()}
    kind, value, caption = h.recorded_pairs(paths["digits"])
    kind_s, gen, *_ = h.recorded_samples(paths["digits"])
    assert kind == "image" and value.dtype == np.uint8 and value.ndim == 2  # two rows of grey pictures
    assert caption.startswith("Top row: generated · bottom row: nearest training example. The 8 generated samples "
                              "closest to a training example (pixels)") and "Near-copies: " in caption
    assert caption.endswith("samples of the recorded run (DDIM, 50 steps); **Evaluate** looks again with n samples, "
                            "in the classifier's features.")
    # the pairs are the recorded samples and their true nearest training examples, closest first
    _, gen_x, train, *_ = h._recording(paths["digits"])
    d = torch.cdist(gen_x.flatten(1).double(), train.x.flatten(1).double())
    nearest = d.min(1).values.sort().values[:8]
    shown = [float(x) for x in caption.split("distances ")[1].split(";")[0].split(", ")]
    assert shown == pytest.approx(nearest.tolist(), rel=1e-3)
    assert load_dataset("digits").x.shape == train.x.shape
    outs = h.pairs_at_rest(paths["swiss_roll"])
    assert outs[0]["visible"] is False and isinstance(outs[1]["value"], Figure) and "example (the plane)" in outs[2]
    emptied = h.pairs_at_rest(ckpt["tiny-points"])  # trained here: no recording, no other model's pairs
    assert emptied[1]["value"] is None and emptied[2].startswith("Press **Evaluate**")


# --- one evaluation -------------------------------------------------------------------------

def test_points_evaluation_streams_progress_then_every_view(h, ckpt):
    progress, out = finish(h.evaluate(ckpt["tiny-points"], 60, "ddim", 10, 0))
    assert len(progress) >= 2 and "done in" in progress[-1]
    table, warnings, mse, s_img, s_plot, r_img, r_plot, p_img, p_plot, caption, figures = out[1:]
    for label in ("Sliced Wasserstein-2", "MMD^2", "Precision (k-NN)", "Recall", "Memorisation", "floor"):
        assert label in table
    assert "figure(s) carry a warning" in warnings and "n=60 is below" in table
    assert isinstance(mse, Figure) and s_plot["visible"] and isinstance(s_plot["value"], Figure)
    assert r_plot["visible"] and p_plot["visible"] and "closest to a training example" in caption
    assert figures["n"] == 60 and set(figures["metrics"]) >= {"mse", "swd", "mmd", "precision", "recall"}
    swd = figures["metrics"]["swd"]
    assert swd["interval"][0] <= swd["value"] <= swd["interval"][1] and swd["floor"] is not None
    # the floor is the mean ± sd of several real draws, and each figure is read against it
    assert swd["floor_sd"] > 0 and swd["vs_floor"]["how"] == "ratio"
    assert swd["vs_floor"]["estimate"] == pytest.approx(swd["value"] / swd["floor"])
    assert "id='ev-overall'" in table and figures["overall"]["says"] in table
    assert "against the floor" in table and "real data (mean ± sd)" in table
    assert ef.fmt_pm(swd["floor"], swd["floor_sd"]) in table  # the floor to the digits its spread allows
    # the main figures (the overall reading's) are marked, the others not
    main = set(figures["overall"]["same"] + figures["overall"]["worse"] + figures["overall"]["better"])
    assert main == {"swd", "mmd", "precision", "recall"} & set(figures["metrics"])
    for key in figures["metrics"]:
        row = table.split(f"id='ev-row-{key}'")[1].split("</td>")[0]
        assert ("class='ev-main'" in row) == (key in main), key
    assert swd["vs_floor"]["says"] in ("indistinguishable from data", "worse than data", "beyond real data's own")


def test_image_evaluation_shows_grids_and_pairs(h, ckpt):
    _, out = finish(h.evaluate(ckpt["tiny-digits"], 40, "ddim", 5, 0))
    table, _, _, s_img, _, r_img, _, p_img, _, caption, figures = out[1:]
    assert "FID" in table and "KID" in table and "Inception Score" in table
    assert s_img["value"].dtype == np.uint8 and s_img["value"].shape[1] >= 512  # a large, zoomable grid
    assert r_img["value"].shape == s_img["value"].shape
    assert p_img["visible"] and caption.startswith("Top row: generated")
    assert any("FID" in w for w in figures["warnings"])  # n = 40 is far too few for FID


def test_results_are_cached_per_settings(h, ckpt):
    path = ckpt["tiny-signals"]
    r1, g1 = h.run(path, 30, "ddim", 5, 1)
    r2, g2 = h.run(path, 30, "ddim", 5, 1)
    assert r1 is r2 and g1 is g2
    r3, _ = h.run(path, 30, "ddim", 5, 2)
    assert r3 is not r1 and "spectrum" in r3["metrics"]


def test_closing_the_stream_cancels_the_work(h, ckpt):
    gen = h.evaluate(ckpt["tiny-digits"], 400, "ddpm", 200, 123)
    first = next(gen)
    assert "ev-progress" in first[0]
    gen.close()  # what gradio does when Cancel is pressed or the page goes away
    for t in threading.enumerate():
        if t.name == "evaluation":
            t.join(60)
    key = [k for k in eh._RESULTS_CACHE if k[0] == ckpt["tiny-digits"] and k[5] == 123]
    assert key == []  # stopped before a result was made


def test_an_evaluation_says_its_cost_first_and_one_over_the_limit_is_refused_with_what_fits(h, ckpt, monkeypatch):
    from explorer import costs

    # 10 ms per model call on a batch of 250 digits, as if measured here
    monkeypatch.setattr(costs.COSTS, "seconds_per_call", lambda key, model, shape, n, device: 0.01)
    # 2000 samples in 8 batches of 250, 1000 DDPM steps each: 8000 calls, 80 s
    say = h._cost(ckpt["tiny-digits"], 2000, "ddpm", 1000, 7)
    assert "DDPM 1000 steps x 2000 samples will take about 80 s here" in say
    assert "Faster: DDIM 50 steps x 2000 samples (about 4 s)" in say
    assert h._cost(ckpt["tiny-digits"], 250, "ddim", 50, 7) is None  # 0.5 s: nothing to say
    with pytest.raises(gr.Error, match=r"would take about .* at most 2 min is allowed: try DDIM 50 steps"):
        next(h.evaluate(ckpt["tiny-digits"], 20000, "ddpm", 2000, 7))  # 80 batches x 2000 steps: 27 min
    assert not [k for k in eh._RESULTS_CACHE if k[0] == ckpt["tiny-digits"] and k[5] == 7]  # nothing ran


@pytest.mark.parametrize("args, message", [
    ((5, "ddim", 10, 0), "n must be a whole number between 10 and 100000"),
    ((50, "euler", 10, 0), "unknown sampler 'euler'"),
    ((50, "ddim", 0, 0), "steps must be a whole number between 1"),
    ((50, "ddim", 10, -1), "seed must be a whole number between 0"),
])
def test_bad_settings_are_refused_before_any_work(h, ckpt, args, message):
    with pytest.raises(gr.Error, match=message):
        next(h.evaluate(ckpt["tiny-points"], *args))


# --- history over a run ---------------------------------------------------------------------

def test_history_evaluates_each_checkpoint_of_a_run(h, app_settings):
    data_name, params, model, T = SPECS["tiny-points"]
    config = RunConfig(model=model, diffusion=DiffusionConfig("linear", T, "eps"), data=DataConfig(data_name, params),
                       train=TrainConfig(steps=20, batch_size=32, warmup_steps=2, preview_every=0))
    trainer = Trainer(config, load_dataset(data_name, **params), "cpu")
    run = app_settings.runs_dir / "history-run"
    for stop in (10, 20):
        while trainer.step_count < stop:
            trainer.step()
        trainer.save(run / f"step-{stop:07d}", train_state=False)
    path = str(run / "step-0000020")
    assert [e["steps"] for e in h.run_entries(path)] == [10, 20]
    outs = list(h.history(path, 40, "ddim", 5, 0))
    progress, fig, table = outs[-1]
    assert "2 checkpoints evaluated" in progress
    assert [t["x"] for t in fig.data][0] == [10, 20]
    assert "Sliced Wasserstein-2" in [t["name"] for t in fig.data]
    assert "| step-0000010 | 10 |" in table and "| step-0000020 | 20 |" in table


def test_a_checkpoint_in_a_root_folder_is_a_run_alone(h, ckpt):
    assert [e["path"] for e in h.run_entries(ckpt["tiny-points"])] == [ckpt["tiny-points"]]


# --- the quiz -------------------------------------------------------------------------------

def test_quiz_for_two_participants(h, ckpt, tmp_path):
    with pytest.raises(gr.Error, match="image model"):
        h.quiz_new(ckpt["tiny-points"], 3)
    status = h.quiz_new(ckpt["tiny-digits"], 3, seed=0)
    assert "6 pictures" in status and "0 participant(s)" in status
    alice, img, text, group = h.quiz_next(None)
    bob = h.quiz_next(None)[0]
    assert alice["id"] != bob["id"] and img.dtype == np.uint8 and "1 of 6" in text and group["visible"]
    truth = {it.id: it.source for it in STORE.deck.items}
    for k in range(6):  # alice answers right every time, bob always says "real"
        alice, *_ = h.quiz_vote(alice, truth[alice["item"]], 5)
        out = h.quiz_vote(bob, "real", 2)
        bob = out[0]
    summary, rows, gallery = out[-3:]
    assert "**2** participant(s), **12** answers" in summary and "fooled people **50%**" in summary
    assert len(rows) == 6 and all(r[2] == 2 for r in rows) and len(gallery) == 6
    assert "Done" in h.quiz_next(alice)[2]
    with pytest.raises(gr.Error, match="Take the quiz"):
        h.quiz_vote({"id": "x"}, "real", 3)
    rows = list(csv.DictReader(open(h.quiz_export())))
    assert len(rows) == 12 and {r["participant"] for r in rows} == {alice["id"], bob["id"]}


def test_quiz_results_hide_the_truth_until_revealed_and_never_show_unanswered_pictures(h, ckpt):
    h.quiz_new(ckpt["tiny-digits"], 2, seed=1)
    alice = h.quiz_next(None)[0]
    answered = alice["item"]
    summary, rows, gallery = h.quiz_vote(alice, "real", 4)[-3:]
    assert {r[1] for r in rows} == {"hidden", "not answered"} and "Reveal the answers" in summary
    assert all(caption.startswith("?") for _, caption in gallery)
    summary, rows, gallery = h.quiz_reveal(True)
    truth = {it.id: it.source for it in STORE.deck.items}
    for (item, source, votes, *_), (_, caption) in zip(rows, gallery):
        if item == answered:
            assert votes == 1 and source == truth[item] and caption[0] == ("R" if source == "real" else "G")
        else:  # an unanswered picture keeps its secret even after the reveal
            assert votes == 0 and source == "not answered" and caption.startswith("?")
    assert "Reveal the answers" not in summary
    rows = h.quiz_reveal(False)[1]
    assert {r[1] for r in rows} == {"hidden", "not answered"}
    h.quiz_reveal(True)
    h.quiz_new(ckpt["tiny-digits"], 2, seed=2)  # a new quiz starts hidden
    assert not STORE.revealed


# --- the API --------------------------------------------------------------------------------

def test_api_evaluates_a_checkpoint(client, ckpt):
    names = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    for name in ("/evaluate", "/evaluate_history", "/evaluate_cancel", "/evaluate_select", "/quiz_new",
                 "/quiz_next", "/quiz_vote_real", "/quiz_vote_generated", "/quiz_results", "/quiz_export"):
        assert name in names
    out = client.predict(ckpt["tiny-points"], 50, "ddim", 10, 0, api_name="/evaluate")
    figures = out[-1]
    assert figures["dataset"] == "gaussians8" and figures["metrics"]["swd"]["value"] > 0
    assert "done in" in out[0]


def test_api_quiz_round(client, ckpt):
    assert "4 pictures" in client.predict(ckpt["tiny-digits"], 2, 0, api_name="/quiz_new")
    client.predict(api_name="/quiz_next")
    out = client.predict(3, api_name="/quiz_vote_generated")
    summary = out[-3]
    assert "**1** answers" in summary or "1** answers" in summary
