"""explorer.render: tensors to images and plotly figures."""
import json
import math

import numpy as np
import pytest
import torch

from core.schedules import make_schedule
from explorer import render


# --- images ---------------------------------------------------------------------------------

def test_to_uint8_maps_the_data_range_and_clips():
    x = torch.tensor([[-1.0, 0.0, 1.0, 3.0, -7.0]])
    assert render.to_uint8(x).tolist() == [[0, 128, 255, 255, 0]]


def test_to_uint8_layouts():
    rgb = torch.zeros(3, 4, 5)
    rgb[0] = 1.0  # red channel full
    out = render.to_uint8(rgb)
    assert out.shape == (4, 5, 3) and out.dtype == np.uint8
    assert out[0, 0].tolist() == [255, 128, 128]
    assert render.to_uint8(torch.zeros(1, 4, 5)).shape == (4, 5)  # one channel -> greyscale 2-D
    with pytest.raises(ValueError, match="1 or 3 channels"):
        render.to_uint8(torch.zeros(2, 4, 4))
    with pytest.raises(ValueError, match="shape"):
        render.to_uint8(torch.zeros(4))


def test_tiny_images_are_upscaled_by_whole_factors_nearest_neighbour():
    digit = torch.rand(1, 8, 8) * 2 - 1
    big = render.image(digit, min_size=256)
    assert big.shape == (256, 256)
    small = render.to_uint8(digit)
    assert np.array_equal(big[::32, ::32], small)  # each pixel became a 32x32 block
    assert np.array_equal(big[31::32, 31::32], small)
    photo = torch.zeros(3, 200, 300)
    assert render.image(photo, min_size=256).shape == (200, 300, 3)  # big enough: untouched


def test_signed_image_centres_zero():
    eps = torch.tensor([[[-3.0, 0.0, 3.0, 10.0]]])
    assert render.signed_image(eps, limit=3.0, min_size=1).tolist() == [[0, 128, 255, 255]]


def test_grid_lays_out_a_batch():
    batch = torch.ones(5, 3, 8, 8)
    g = render.grid(batch, nrow=3, pad=2, min_size=8)
    assert g.shape == (2 * (8 + 2) + 2, 3 * (8 + 2) + 2, 3)
    assert g[2, 2].tolist() == [255, 255, 255]
    with pytest.raises(ValueError, match="batch"):
        render.grid(torch.ones(3, 8, 8))


@pytest.mark.parametrize("side, k", [(8, 8), (32, 2), (64, 1)])
def test_grid_tiles_grow_by_a_whole_factor_until_a_row_reaches_min_size(side, k):
    batch = torch.rand(16, 3, side, side) * 2 - 1
    g = render.grid(batch, pad=2, min_size=240)  # 4 x 4 tiles
    assert g.shape == (4 * (k * side + 2) + 2,) * 2 + (3,)
    assert 4 * k * side >= 240
    tile = g[2:2 + k * side, 2:2 + k * side]
    np.testing.assert_array_equal(tile, render.upscale(render.to_uint8(batch[0]), k * side))
    assert (tile[::k, ::k] == render.to_uint8(batch[0])).all()  # nearest neighbour: each pixel a k x k block


def test_labelled_strip_resizes_frames_and_adds_captions():
    frames = [np.full((32, 32, 3), 40, np.uint8), np.full((32, 32), 200, np.uint8)]
    strip = render.labelled_strip(frames, ["t = 0", "t = 10"], size=64, pad=4, font_size=12)
    assert strip.shape[1] == 2 * (64 + 4) + 4
    assert strip.shape[0] > 64 + 8  # room for the captions
    assert strip[4 + 10, 4 + 10].tolist() == [40, 40, 40]
    assert strip[4 + 10, 4 + 68 + 10].tolist() == [200, 200, 200]  # greyscale became RGB
    with pytest.raises(ValueError, match="one label per frame"):
        render.labelled_strip(frames, ["only one"])
    dark = render.labelled_strip(frames, ["t = 0", "t = 10"], size=64, pad=4, font_size=12, dark=True)
    assert dark[0, 0].tolist() == [0, 0, 0] and dark[4 + 10, 4 + 10].tolist() == [40, 40, 40]
    assert dark[64 + 8:, :].max() > 150  # light captions on the black band


# --- figures --------------------------------------------------------------------------------

def valid(fig):
    """A figure must survive plotly's own validation and strict JSON (no NaN / Infinity)."""
    fig.to_plotly()  # raises on any unknown property or bad value
    return json.loads(fig.to_json())


def test_scatter_has_fixed_equal_axes_and_a_reference():
    pts = torch.randn(3000, 2)
    fig = render.scatter(pts, reference=pts * 0.5, lim=3.0)
    d = valid(fig)
    assert d["layout"]["xaxis"]["range"] == [-3.0, 3.0] == d["layout"]["yaxis"]["range"]
    assert d["layout"]["yaxis"]["scaleanchor"] == "x"
    assert len(d["data"]) == 2 and len(d["data"][1]["x"]) == render.MAX_POINTS
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        render.scatter(torch.zeros(5, 3))


def test_signals_draws_one_line_per_sequence():
    x = torch.randn(3, 1, 16)
    d = valid(render.signals(x, reference=x[:1]))
    assert len(d["data"]) == 1 + 3
    assert d["layout"]["yaxis"]["range"] == [-3.5, 3.5]


@pytest.mark.parametrize("kind,item", [("points", torch.randn(50, 2)), ("signal", torch.randn(1, 1, 32))])
def test_panels_put_items_side_by_side(kind, item):
    d = valid(render.panels(kind, [item, item, item], ["a", "b", "c"]))
    axes = {t["xaxis"] for t in d["data"]}
    assert axes == {"x", "x2", "x3"}
    assert [a["text"] for a in d["layout"]["annotations"]] == ["a", "b", "c"]
    with pytest.raises(ValueError, match="points"):
        render.panels("image", [item], ["a"])


def test_schedule_curves_mark_t_and_survive_infinite_snr():
    s = make_schedule("cosine", 1000)
    fig = render.schedule_curves([("cosine", s.to_numpy())], t=300, title="x")
    d = valid(fig)
    marker = d["data"][2]
    assert marker["x"] == [300]
    assert marker["y"][0] == pytest.approx(float(s.alpha_bar[300]), rel=1e-3)
    snr_marker = d["data"][3]
    assert snr_marker["y"][0] == pytest.approx(float(s.snr[300]), rel=1e-3)
    assert d["data"][1]["x"][0] == 1  # SNR(0) = inf is left out
    assert d["layout"]["yaxis2"]["type"] == "log"
    assert marker["meta"] == {"follows": 0} and snr_marker["meta"] == {"follows": 1}  # for MARKERS_JS
    assert d["layout"]["shapes"][0]["x0"] == 300
    d0 = valid(render.schedule_curves([("cosine", s.to_numpy())], t=0))
    assert d0["data"][3]["y"] == [None]  # the SNR marker is empty at t = 0, where SNR is infinite


def test_markers_js_targets_the_given_plots():
    js = render.markers_js("a", "b", slider="s")
    assert '"#a .js-plotly-plot, #b .js-plotly-plot"' in js and "SELECTORS" not in js
    assert '"#s input[type=number]"' in js and "SLIDER" not in js


def test_schedule_curves_compare_several():
    curves = [(n, make_schedule(n, 200).to_numpy()) for n in ("linear", "cosine", "sigmoid")]
    d = valid(render.schedule_curves(curves, t=50))
    assert len(d["data"]) == 3 * 4
    # one legend entry per schedule: its colour is its solid alpha-bar and its dotted SNR
    assert [tr["name"] for tr in d["data"] if tr.get("showlegend", True)] == ["linear", "cosine", "sigmoid"]
    assert d["layout"]["xaxis"]["range"] == [0, 200]


@pytest.mark.parametrize("T", [10, 100, 1000, 2000])
def test_schedule_curves_legend_lies_where_no_curve_passes(T):
    """The legend sits inside the plot at its top right: after 0.6 T every schedule's alpha-bar and SNR
    lie in the lower half of their axes (the SNR axis spans 10^-5 to 10^5), so no curve runs under it."""
    from core.schedules import SCHEDULES
    curves = [(n, make_schedule(n, T).to_numpy()) for n in SCHEDULES]
    d = valid(render.schedule_curves(curves, t=T // 2))
    legend = d["layout"]["legend"]
    assert (legend["xanchor"], legend["yanchor"]) == ("right", "top") and legend["x"] > 0.9 and legend["y"] > 0.9
    late = [tr for tr in d["data"] if tr["mode"] == "lines" and tr["x"][-1] == T]
    assert len(late) == 2 * len(SCHEDULES)
    for tr in late:
        ys = [y for x, y in zip(tr["x"], tr["y"]) if x >= 0.6 * T]
        low, high = (0.0, 1.02) if tr.get("yaxis") != "y2" else (-5.0, 5.0)
        ys = ys if tr.get("yaxis") != "y2" else [math.log10(y) for y in ys]
        assert max((y - low) / (high - low) for y in ys) < 0.5, tr["name"]


def test_histogram_is_a_density_and_keeps_outliers():
    values = torch.cat([torch.randn(20_000), torch.tensor([100.0, -100.0])])
    d = valid(render.histogram(values, bins=40, lim=4.0))
    bars = d["data"][0]
    assert sum(bars["y"]) * bars["width"] == pytest.approx(1.0, abs=2e-3)  # 4 significant digits per bin
    assert bars["y"][0] > 0 and bars["y"][-1] > 0  # the two outliers landed in the edge bins
    normal = d["data"][-1]
    assert normal["name"] == "N(0, 1)"
    assert max(normal["y"]) == pytest.approx(1 / math.sqrt(2 * math.pi), rel=1e-3)


def test_histogram_overlays_series_as_outlines():
    d = valid(render.histogram({"a": torch.randn(100), "b": torch.randn(100)}, normal=False))
    assert [t["type"] for t in d["data"]] == ["bar", "scatter"]


def test_step_encoding_plots():
    emb = torch.cat([torch.sin(torch.arange(8.0)), torch.cos(torch.arange(8.0))])
    d = valid(render.step_encoding(emb, 7))
    assert len(d["data"][0]["y"]) == 16
    grid = torch.rand(5, 16) * 2 - 1
    m = valid(render.step_encoding_map(grid, torch.arange(5) * 10, t=20))
    assert m["data"][0]["y"] == [0, 10, 20, 30, 40]
    assert m["layout"]["shapes"][0]["y0"] == 20


def test_numbers_are_rounded_and_non_finite_become_null():
    assert render._num([1.23456789, float("inf"), float("nan"), 0.0, -0.000123456]) == [
        1.235, None, None, 0.0, -0.0001235]


def test_with_title_sets_a_title():
    fig = render.scatter(torch.zeros(3, 2)).with_title("x_t")
    assert valid(fig)["layout"]["title"]["text"] == "x_t"


def test_gradio_plot_accepts_our_figures():
    """gr.Plot serialises any object with to_json() as plotly: guard that contract."""
    import gradio as gr

    fig = render.histogram(torch.randn(100))
    out = gr.Plot().postprocess(fig)
    assert out.type == "plotly"
    assert json.loads(out.plot) == json.loads(fig.to_json())


def test_stat_rows_formats_a_markdown_table():
    md = render.stat_rows([["", "mean"], ["a", 0.5], ["b", "x"]])
    assert md.splitlines() == ["|  | mean |", "|---|---|", "| a | 0.5000 |", "| b | x |"]


def test_histogram_bins_follow_the_sample_size():
    assert len(valid(render.histogram(torch.randn(64)))["data"][0]["x"]) == 16
    assert len(valid(render.histogram(torch.randn(900)))["data"][0]["x"]) == 36
    assert len(valid(render.histogram(torch.randn(100_000)))["data"][0]["x"]) == 72
