"""Training and evaluation figures: valid plotly JSON, the right traces, empty states that say why."""
from __future__ import annotations

import json
import math

import numpy as np

from explorer import charts


def parsed(fig) -> dict:
    return json.loads(fig.to_json())  # also proves the JSON is strict (no NaN)


def test_loss_chart_has_raw_and_smoothed_on_a_log_axis_with_a_marker():
    fig = parsed(charts.loss_chart(([1, 2, 3], [1.0, float("nan"), 0.5]), ([1, 2, 3], [1.0, 0.9, 0.8]), marked=2))
    raw, smooth = fig["data"]
    assert raw["x"] == [1, 2, 3] and raw["y"] == [1.0, None, 0.5]  # NaN becomes a gap
    assert smooth["y"] == [1.0, 0.9, 0.8]
    assert fig["layout"]["yaxis"]["type"] == "log"
    # plotly labels a log axis spanning over a decade "5, 10^-1, 2, 5, 1" (digits only) unless it is
    # given a number format; with ".2~g" it reads "0.05, 0.1, 0.2, 0.5, 1" (checked in chromium)
    assert fig["layout"]["yaxis"]["tickformat"] == ".2~g" and "exponentformat" not in fig["layout"]["yaxis"]
    assert fig["layout"]["shapes"][0]["x0"] == 2
    # the line says what it marks, on the side with room: right of a line in the left half, left of one in the right
    label, = fig["layout"]["annotations"]
    assert label["text"] == "samples shown" and label["x"] == 2 and label["xanchor"] == "right"
    early = parsed(charts.loss_chart(([1, 2, 3], [1.0, 0.7, 0.5]), ([1, 2, 3], [1.0, 0.9, 0.8]), marked=1))
    assert early["layout"]["annotations"][0]["xanchor"] == "left"
    unmarked = parsed(charts.loss_chart(([1, 2], [1.0, 0.5]), ([1, 2], [1.0, 0.8])))["layout"]
    assert not unmarked.get("shapes") and not unmarked.get("annotations")


def test_log_ticks_never_crowd_a_short_or_a_long_log_axis():
    assert charts.log_ticks([0.15, 0.4, 1.1]) == [0.2, 0.3, 0.5, 1.0]  # plotly's own: 0.2, 0.3, ..., 0.9, 1
    assert charts.log_ticks([0.004, 1.2]) == [0.01, 0.03, 0.1, 0.3, 1.0]  # 2.5 decades: 1 and 3
    assert charts.log_ticks([1e-4, 0.5]) == [1e-4, 1e-3, 1e-2, 0.1]  # 3.7 decades: the powers of ten
    assert charts.log_ticks([1e-7, 10.0]) == [1e-7, 1e-5, 1e-3, 0.1, 10.0]  # 8 decades: every other one
    assert charts.log_ticks([0.26, 0.28]) == [0.2, 0.3]  # a narrow band: the ticks either side
    assert charts.log_ticks([float("nan"), 0.0, -1.0]) is None  # nothing to span: plotly chooses
    fig = parsed(charts.loss_chart(([1, 2, 3], [0.15, 0.4, 1.1]), ([1, 2, 3], [0.9, 0.6, 0.3])))
    assert fig["layout"]["yaxis"]["tickvals"] == [0.2, 0.3, 0.5, 1.0]


def test_empty_charts_say_what_to_do():
    for fig in (charts.loss_chart(([], []), ([], [])), charts.lr_chart(([], [])),
                charts.per_t_map([], [], None), charts.per_t_latest([], None),
                charts.metric_history([], {"FID": []})):
        d = parsed(fig)
        note = d["layout"]["annotations"][0]["text"]
        assert d["data"] == [] and note
        # wrapped, so a chart a quarter of a 1024-px page wide shows all of it
        assert all(len(line) <= charts.NOTE_WIDTH for line in note.split("<br>"))
    assert parsed(charts.lr_chart(([], [])))["layout"]["annotations"][0]["text"] == \
        "the schedule appears once<br>training runs"


def test_per_t_map_is_bins_by_steps_of_log_loss():
    edges = [0, 25, 50, 75, 100]
    rows = [[1.0, 0.1, None, 0.01], [10.0, 0.1, 0.1, float("nan")]]
    d = parsed(charts.per_t_map([10, 20], rows, edges))
    heat = d["data"][0]
    assert heat["x"] == [10, 20] and heat["y"] == [12.5, 37.5, 62.5, 87.5]
    z = heat["z"]
    assert len(z) == 4 and len(z[0]) == 2
    assert z[0] == [0.0, 1.0] and z[1] == [-1.0, -1.0] and z[2] == [None, -1.0] and z[3] == [-2.0, None]


def test_per_t_latest_compares_early_and_now():
    rows = [[float(i + k) for k in range(3)] for i in range(6)]
    d = parsed(charts.per_t_latest(rows, [0, 1, 2, 3]))
    early, now = d["data"]
    assert now["y"] == rows[-1] and early["y"] == rows[2] and now["x"] == [0.5, 1.5, 2.5]
    assert d["layout"]["title"]["text"] == "Loss per t: early (dotted) vs now" and early["line"]["dash"] == "dot"
    # the title says what y is: an axis title beside the presenter view's enlarged tick labels ran into them
    assert "title" not in d["layout"]["yaxis"] and d["layout"]["yaxis"]["type"] == "log"
    first = parsed(charts.per_t_latest(rows[:3], [0, 1, 2, 3]))  # too early to compare: the newest line alone
    assert len(first["data"]) == 1 and first["layout"]["title"]["text"] == "Loss per timestep now"


def test_mse_band_and_metric_history_panels():
    d = parsed(charts.mse_per_t([1, 2], [0.5, 0.25], [0.4, 0.2], [0.6, 0.3]))
    band, line = d["data"]
    assert band["y"] == [0.6, 0.3, 0.2, 0.4] and line["y"] == [0.5, 0.25]
    h = parsed(charts.metric_history([100, 200], {"FID": [3.0, 2.0], "KID": [None, None], "recall": [0.5, 0.6]}))
    assert [t["name"] for t in h["data"]] == ["FID", "recall"]  # a metric with no values gets no panel
    assert h["data"][1]["xaxis"] == "x2" and h["layout"]["xaxis2"]["domain"][0] > h["layout"]["xaxis"]["domain"][1]


def test_closest_pairs_joins_each_pair():
    train = np.random.default_rng(0).normal(size=(50, 2))
    g, r = np.array([[0.0, 0.0], [1.0, 1.0]]), np.array([[0.1, 0.0], [1.0, 1.2]])
    d = parsed(charts.closest_pairs_points(train, g, r))
    lines = d["data"][1]
    assert lines["x"] == [0.0, 0.1, None, 1.0, 1.0, None]
    assert d["data"][3]["name"] == "generated" and d["data"][3]["x"] == [0.0, 1.0]
    assert not any(isinstance(v, float) and math.isnan(v) for v in lines["y"] if v is not None)
