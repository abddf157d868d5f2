"""What a model's recorded figures say of each sampler setting: met or missed, why, and the fastest that meets."""
from __future__ import annotations

import json

from explorer.measured import MAX_BYTES, Measured, fastest_met, measured_md, measured_settings, read_figures

WHY_MISSED = ["mean of 4 sample seeds: SWD 1.45x real's own (> 1.3)", "precision 0.964 (>= 0.95)",
              "recall 0.868 (< 0.95)"]


def run(sampler, steps, met, why=(), **kw):
    return {"sampler": sampler, "steps": steps, "n": 2000, "seed": 0, "goal": {"met": met, "why": list(why)}, **kw}


def toy_record():
    return {"kind": "points", "runs": [
        run("ddpm", 1000, True, ["mean of 4 sample seeds: SWD 1.09x real's own (<= 1.3)"]),
        run("ddim", 50, False, WHY_MISSED),
        run("no-such-sampler", 10, True),           # not a sampler of this app: left out
        {"sampler": "ddim", "goal": {"met": True}},  # no steps: left out
        run("dpm++2m-sde", 50, True, spacing="quadratic"),
        run("dpm++2m-sde", 50, True),               # as few steps, recorded later: the first one wins
    ]}


def test_each_setting_is_read_with_its_verdict_and_what_missed_it():
    settings = measured_settings(toy_record())
    assert [(m.sampler, m.steps, m.spacing, m.met) for m in settings] == [
        ("ddpm", 1000, "linear", True), ("ddim", 50, "linear", False), ("dpm++2m-sde", 50, "quadratic", True),
        ("dpm++2m-sde", 50, "linear", True)]
    ddim = settings[1]
    assert ddim.missed_by == ["SWD 1.45x real's own (> 1.3)", "recall 0.868 (< 0.95)"]  # not the ones it meets
    assert settings[2].label == "DPM-Solver++ 2M SDE, 50 steps, quadratic spacing"
    assert Measured("ddim", 50, "linear", 0.5, None, True, ()).label == "DDIM, 50 steps, eta 0.5"


def test_the_fastest_setting_that_meets_the_goal_is_the_one_with_fewest_steps():
    settings = measured_settings(toy_record())
    best = fastest_met(settings)
    assert (best.sampler, best.steps, best.spacing) == ("dpm++2m-sde", 50, "quadratic")
    assert fastest_met([m for m in settings if not m.met]) is None
    assert fastest_met([]) is None


def test_the_list_marks_met_and_missed_and_says_why():
    words = measured_md(measured_settings(toy_record()), "points")
    lines = words.splitlines()
    assert "measured at n = 2,000" in lines[0] and "title=" in lines[0]  # the goal itself on hover
    assert lines[1:] == ["- ✓ DDPM, 1000 steps",
                         "- ✗ DDIM, 50 steps: SWD 1.45x real's own (> 1.3), recall 0.868 (< 0.95)",
                         "- ✓ DPM-Solver++ 2M SDE, 50 steps, quadratic spacing",
                         "- ✓ DPM-Solver++ 2M SDE, 50 steps"]


def test_a_model_with_no_numeric_goal_says_nothing_here():
    record = {"kind": "signal", "runs": [run("ddim", 50, None)]}
    assert measured_md(measured_settings(record), "signal") == ""
    assert fastest_met(measured_settings(record)) is None


def test_a_stricter_goal_is_shown_beside_the_first_with_its_first_reasons():
    quality = {"met": False, "why": ["FID 5.4x real's own (> 2)", "KID +0.0635 above its floor (> 0.0586)",
                                     "precision 0.933 (>= 0.9)",
                                     "ground level median 0.141, 99th pct 0.292 (outside real's 0.001-0.250)"]}
    record = {"kind": "image", "runs": [run("ddim", 50, True, quality=quality)]}
    (m,) = measured_settings(record)
    assert m.quality is False and len(m.quality_missed_by) == 3  # precision is met
    assert measured_md([m], "image").splitlines()[1] == (
        "- ✓ DDIM, 50 steps; the stricter image-quality goal ✗: FID 5.4x real's own (> 2), "
        "KID +0.0635 above its floor (> 0.0586), …")


def test_only_a_readable_record_is_read(tmp_path):
    assert read_figures(None) is None and read_figures(tmp_path / "gone") is None
    file = tmp_path / "figures.json"
    for bad in ("{not json", json.dumps({"runs": "x"}), json.dumps({"runs": []}), json.dumps([1, 2]),
                "x" * (MAX_BYTES + 1)):
        file.write_text(bad)
        assert read_figures(tmp_path) is None
    file.write_text(json.dumps(toy_record()))
    assert read_figures(tmp_path) == toy_record()


def test_of_settings_as_fast_the_one_nearer_the_stricter_goal_is_offered():
    grainy = {"met": False, "why": ["FID 58.2x real's own (> 2)", "precision 0.847 (< 0.9)",
                                    "ground grain (90th pct) 2.9/255, tinted 48.3% (not flat: real 0.0/255, 0.0%)"]}
    plain = {"met": False, "why": ["FID 5.4x real's own (> 2)", "precision 0.933 (>= 0.9)"]}
    record = {"kind": "image", "runs": [run("ddim", 50, True, quality=grainy),
                                        run("dpm++2m-sde", 50, True, quality=plain, spacing="quadratic"),
                                        run("dpm++2m", 20, False)]}
    best = fastest_met(measured_settings(record))
    assert (best.sampler, best.spacing) == ("dpm++2m-sde", "quadratic")

