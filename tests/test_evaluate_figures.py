"""The Evaluate tab's figures in words: digits as the spread allows, intervals, a figure against its floor."""
from __future__ import annotations

import html
import re

import pytest

from explorer.tabs import evaluate_figures as ef
from explorer.tabs.evaluate_figures import fmt


def test_numbers_are_formatted_for_a_table():
    assert [fmt(v) for v in (None, float("nan"), 1200, 0.123456, 1.5e-6, 123456.0, 0.0)] == \
        ["–", "–", "1,200", "0.1235", "1.50e-06", "1.23e+05", "0"]


def test_a_floor_is_shown_to_the_digits_its_spread_allows():
    assert ef.fmt_pm(0.9315, 0.01099) == "0.931 ± 0.011"  # a spread starting 10-35: 2 significant digits
    assert ef.fmt_pm(0.9087, 8.42e-4) == "0.9087 ± 0.0008"  # 35-95: 1 digit
    assert ef.fmt_pm(9.811, 9.95e-4) == "9.8110 ± 0.0010"  # 95-99 rounds up a decade: 2 digits of it
    assert ef.fmt_pm(9.81138, 9.9499e-4) == "9.8114 ± 0.0010"
    assert ef.fmt_pm(53.2, 12.3) == "53 ± 12" and ef.fmt_pm(1234.0, 356.0) == "1,200 ± 400"
    assert ef.fmt_pm(0.9911, 0.0) == "0.9911 ± 0"  # identical draws: said, not hidden
    assert ef.fmt_pm(4e-6, 1e-9) == f"{fmt(4e-6)} ± {fmt(1e-9)}"  # more than 6 decimals: plain figures
    assert ef.fmt_pm(0.5, None) == "0.5" and ef.fmt_pm(0.5, float("nan")) == "0.5 ± –"


@pytest.mark.parametrize("how, estimate, interval, shown", [
    ("difference", -0.008616, (-0.0524, 0.0672), "-0.009 [-0.052, 0.067]"),  # 2 digits of the half-width 0.06
    ("difference", -0.0002, (-0.0939, 0.0841), "+0.000 [-0.094, 0.084]"),  # never "-0.000"
    ("difference", 0.004454, (-0.0256, 0.0256), "+0.004 [-0.026, 0.026]"),
    ("ratio", 0.927, (0.663, 1.44), "×0.93 [0.66, 1.44]"),
    ("ratio", 58.2, (32.7, 121.0), "×58 [33, 121]"),
])
def test_a_figure_against_its_floor_is_shown_to_the_digits_its_interval_allows(how, estimate, interval, shown):
    cell = ef.vs_floor_cell({"better": "lower", "vs_floor": {"how": how, "estimate": estimate, "interval": interval,
                                                            "verdict": "same", "says": "indistinguishable"}})
    assert re.sub("<[^>]+>", "", cell.split("<div")[0]) == shown


def test_a_figure_with_a_fixed_mark_names_it_beside_its_reading():
    # memorisation's floor is the fixed 1 (as near the training set as real data); the presenter view hides
    # the floor's column, so the reading names it
    cell = ef.vs_floor_cell({"better": "closer to floor", "floor": 1.0, "vs_floor": None})
    assert re.sub("<[^>]+>", "", cell) == "closer to floor is better (floor 1)"
    assert re.sub("<[^>]+>", "", ef.vs_floor_cell({"better": "lower", "floor": None})) == "lower is better"


def test_a_figures_own_interval_is_shown_to_2_digits_of_its_half_width():
    assert ef.fmt_interval(0.6266, 1.33) == "[0.63, 1.33]"
    assert ef.fmt_interval(-0.004504, 0.1041) == "[-0.005, 0.104]"
    assert ef.fmt_interval(None, None) == "[–, –]" and ef.fmt_interval(0.5, 0.5) == "[0.5, 0.5]"  # no width


@pytest.mark.parametrize("label, name, note", [
    ("Precision (k-NN)", "Precision", " (k-NN)"),
    ("Memorisation, pixels (nearest / typical real)", "Memorisation, pixels", " (nearest / typical real)"),
    ("FID", "FID", ""),
    ("a (b) c", "a (b) c", ""),  # brackets inside a name are not a closing note
    ("MMD^2 <x> (RBF)", "MMD^2 &lt;x&gt;", " (RBF)"),
])
def test_a_figures_name_keeps_its_closing_note_apart_for_the_presenter_view_to_hide(label, name, note):
    cell = ef.label_html(label)
    shown = re.sub(r"<span class='ev-label-note'>.*?</span>", "", cell)
    assert re.sub("<[^>]+>", "", shown) == name
    assert re.sub("<[^>]+>", "", cell) == name + note.replace("<", "&lt;").replace(">", "&gt;")


@pytest.mark.parametrize("verdict, says, short", [("same", "indistinguishable from data", "≈ real data"),
                                                  ("worse", "worse than data", "worse than data"),
                                                  ("better", "beyond real data's own", "beyond data")])
def test_a_reading_comes_in_full_and_in_a_few_words_in_its_colour(verdict, says, short):
    cell = ef.vs_floor_cell({"better": "lower", "vs_floor": {"how": "ratio", "estimate": 1.0, "interval": (0.9, 1.1),
                                                            "verdict": verdict, "says": says}})
    div = cell[cell.index("<div"):]
    assert f"color:{ef.VERDICT_COLOUR[verdict]}" in div  # the spans inherit it (.ev-verdict span)
    assert f"<span class='ev-says'>{html.escape(says)}</span>" in div and f"<span class='ev-says-short'>{short}</span>" in div
