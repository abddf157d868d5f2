"""The shipped models' recorded figures (figures.json beside each) and assets/checkpoints/README.md agree:
the README's table is exactly what benchmarks/checkpoint_table.py writes from them and the meta, and
each recorded goal reading is what core.goals.check gives for the recorded figures. Nothing is sampled."""
import importlib.util
import json
from pathlib import Path

import pytest

from core.goals import check, check_image_quality, over_seeds

ROOT = Path(__file__).resolve().parent.parent
CKPTS = ROOT / "assets" / "checkpoints"
_spec = importlib.util.spec_from_file_location("checkpoint_table", ROOT / "benchmarks" / "checkpoint_table.py")
table = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(table)
RECORDED = sorted(p.parent.name for p in CKPTS.glob("*/figures.json"))


def test_readme_table_is_the_one_written_from_the_stored_figures_and_meta():
    # on a difference: python benchmarks/checkpoint_table.py rewrites it from the stored files
    assert table.section(table.README.read_text()) == table.table()


def test_every_shipped_checkpoint_has_a_row():
    shipped = sorted(p.parent.name for p in CKPTS.glob("*/model.safetensors"))
    assert shipped == sorted(table.ORDER)


@pytest.mark.parametrize("name", RECORDED)
def test_recorded_goal_readings_follow_from_the_recorded_figures(name):
    figs = json.loads((CKPTS / name / "figures.json").read_text())
    assert figs["checkpoint"] == name
    for run in figs["runs"]:
        # the 2-D toys' goal is read over several sample seeds; the others' on seed 0
        read = over_seeds(run["seeds"]) if "seeds" in run else run
        assert run["goal"] == check(figs["kind"], figs["dataset"], read), (name, run["sampler"])
        if figs["dataset"] == "shapes":  # and the stricter image-quality goal, from its figures and grounds
            assert run["quality"] == check_image_quality(run), (name, run["sampler"])
        if figs["kind"] == "points":
            assert len(run.get("seeds", [])) >= 4, (name, "a 2-D verdict on fewer than 4 sample seeds")


def test_where_a_model_trained_is_printed_from_its_meta():
    for name in table.ORDER:
        meta = json.loads((CKPTS / name / "config.json").read_text())["meta"]
        assert table.trained_on(meta) in table.row(name)
        assert (meta.get("device") or "not recorded") in table.trained_on(meta)
    assert "what the shipped ones were trained on" not in (CKPTS / "make_checkpoints.sh").read_text()


def test_a_changed_figure_is_caught(tmp_path, monkeypatch):
    assert RECORDED, "no shipped model has recorded figures (figures.json): the table test would check nothing"
    name = RECORDED[0]
    for f in ("config.json", "model.safetensors", "figures.json"):
        (tmp_path / name).mkdir(exist_ok=True)
        (tmp_path / name / f).write_bytes((CKPTS / name / f).read_bytes())
    figs = json.loads((tmp_path / name / "figures.json").read_text())
    first = next(iter(figs["runs"][0]["metrics"].values()))
    first["value"] = first["value"] * 1.5 + 1.0
    (tmp_path / name / "figures.json").write_text(json.dumps(figs))
    before = table.row(name)
    monkeypatch.setattr(table, "CKPTS", tmp_path)
    assert table.row(name) != before
