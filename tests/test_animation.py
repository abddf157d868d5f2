"""explorer.animation: trajectory frames for every data kind, and GIF / MP4 export."""
from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import torch
from PIL import Image

from explorer import animation, render
from explorer.trajectory import Lane, snapshot

LANES = (Lane("ddpm", "DDPM", 10), Lane("ddim", "DDIM", 5, 0.5))


def image_frame_parts(n=4, shape=(1, 8, 8), seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand((n, *shape), generator=g) * 2 - 1
    eps = torch.randn((n, *shape), generator=g)
    return x, eps


def test_lane_title_names_sampler_step_and_t():
    s = snapshot("points", 2, 10, 800, torch.zeros(1, 2), torch.zeros(1, 2), torch.zeros(1, 2))
    assert animation.lane_title(LANES[0], s) == "DDPM · step 3/10 · t = 800"
    assert animation.lane_title(LANES[1], s).startswith("DDIM (eta 0.5) · step 3/10")
    done = snapshot("points", 10, 10, 0, torch.zeros(1, 2), torch.zeros(1, 2), torch.zeros(1, 2))
    assert "done" in animation.lane_title(LANES[0], done)
    sde = Lane("dpm++2m-sde", "DPM-Solver++ 2M SDE", 50, None, "quadratic")
    assert animation.lane_title(sde, s) == "DPM-Solver++ 2M SDE, quadratic spacing · step 3/10 · t = 800"


def test_image_frame_shows_the_three_grids_of_each_lane():
    x, eps = image_frame_parts()
    s = snapshot("image", 0, 10, 1000, x, x, eps)
    one = animation.image_frame((s,), LANES[:1])
    two = animation.image_frame((s, s), LANES)
    assert one.dtype == np.uint8 and one.ndim == 3 and one.shape[2] == 3
    assert two.shape[0] == 2 * one.shape[0] and two.shape[1] == one.shape[1]
    # the x_t grid sits under the title bar, left-most, exactly as render.grid draws it
    grid = render.grid(x, min_size=240)
    pad = 6  # labelled_strip's padding
    top = animation.HEADER + pad
    patch = one[top:top + grid.shape[0], pad:pad + grid.shape[1], 0]
    np.testing.assert_allclose(patch.astype(int), grid.astype(int), atol=1)



def test_image_frame_on_the_dark_ground_keeps_the_pictures_and_recolours_only_the_chrome():
    x, eps = image_frame_parts()
    s = snapshot("image", 0, 10, 1000, x, x, eps)
    light = animation.image_frame((s, s), LANES)
    dark = animation.image_frame((s, s), LANES, dark=True)
    assert dark.shape == light.shape
    assert light[0, 0].tolist() == [255, 255, 255] and dark[0, 0].tolist() == [0, 0, 0]  # the ground
    title = dark[4:animation.HEADER - 4, 26:300]
    assert title.max() > 200 and light[4:animation.HEADER - 4, 26:300].min() < 60  # light text on black, dark on white
    # the grids are the same data, between grey gaps instead of white ones
    grid = render.grid(x, min_size=240, gap=render.GRID_GAP[True])
    pad, top = 6, animation.HEADER + 6
    np.testing.assert_allclose(dark[top:top + grid.shape[0], pad:pad + grid.shape[1], 0].astype(int),
                               grid.astype(int), atol=1)
    assert grid[0, 0] == render.GRID_GAP[True] == 72

def test_field_arrows_point_along_minus_eps_and_fit_the_grid():
    pts = np.array([[0.0, 0.0], [1.0, 1.0]], dtype=np.float32)
    eps = np.array([[1.0, 0.0], [0.0, -2.0]], dtype=np.float32)
    starts, ends = animation.field_arrows(pts, eps, spacing=0.5)
    d = ends - starts
    np.testing.assert_allclose(d[1], [0.0, 0.45], atol=1e-6)     # the longest is 0.9 * spacing
    np.testing.assert_allclose(d[0], [-0.225, 0.0], atol=1e-6)   # others keep their relative size
    _, still = animation.field_arrows(pts, np.zeros_like(eps), 0.5)
    np.testing.assert_array_equal(still, pts)


def points_parts(n=30, steps=5):
    g = torch.Generator().manual_seed(0)
    snaps = [snapshot("points", i, steps, 100 - 20 * i, torch.randn(n, 2, generator=g), torch.randn(n, 2, generator=g),
                      torch.randn(n, 2, generator=g)) for i in range(steps)]
    axis = np.linspace(-3, 3, 5, dtype=np.float32)
    grid = np.stack(np.meshgrid(axis, axis), -1).reshape(-1, 2)
    field = (grid, -grid, 1.5)
    return snaps, field


def test_points_figure_has_field_trails_points_and_x0_per_lane():
    snaps, field = points_parts()
    ref = np.zeros((7, 2), dtype=np.float32)
    fig = animation.points_figure((snaps[-1], snaps[-1]), LANES, [snaps, snaps[-2:]], [field, field], ref)
    names = [tr["name"] for tr in fig.data]
    assert names.count("-eps field") == 2 and names.count("trails") == 2
    assert names.count("x_t") == 2 and names.count("predicted x0") == 2
    # the data: one picture behind each predicted-x0 panel (axes 2 and 4), spanning the panel's square
    pictures = fig.layout["images"]
    assert [(im["name"], im["xref"], im["yref"]) for im in pictures] == [("data", "x2", "y2"), ("data", "x4", "y4")]
    lim = animation.POINTS_LIM
    assert (pictures[0]["x"], pictures[0]["y"], pictures[0]["sizex"], pictures[0]["sizey"]) == (-lim, lim, 2 * lim, 2 * lim)
    assert pictures[0]["source"].startswith("data:image/png;base64,")
    trail = fig.data[names.index("trails")]
    assert len(trail["x"]) == 30 * (5 + 1)  # each particle's 5 positions, then a gap
    arrows = fig.data[names.index("-eps field")]
    assert arrows["mode"] == "lines" and "marker" not in arrows  # heads are strokes of the same path
    assert len(arrows["x"]) == 7 * 25  # shaft, gap, head (left, tip, right), gap
    assert fig.layout["xaxis"]["range"] == [-animation.POINTS_LIM, animation.POINTS_LIM]
    assert "yaxis4" in fig.layout and "yaxis5" not in fig.layout
    fig.to_json()  # valid JSON for the browser


def test_compared_lanes_sit_side_by_side_each_titled_above_its_two_panels():
    snaps, field = points_parts()
    fig = animation.points_figure((snaps[-1], snaps[-1]), LANES, [snaps, snaps], [field, field], None)
    lay = fig.to_dict()["layout"]
    doms = [lay[f"xaxis{'' if k == 1 else k}"]["domain"] for k in range(1, 5)]
    assert all(lay[f"yaxis{'' if k == 1 else k}"]["domain"] == [0.0, 1.0] for k in range(1, 5))  # one row
    assert all(a[1] < b[0] for a, b in zip(doms, doms[1:])) and doms[0][0] == 0.0 and doms[-1][1] <= 1.0
    assert doms[2][0] - doms[1][1] > doms[1][0] - doms[0][1]  # lanes further apart than a lane's panels
    widths = {round(d[1] - d[0], 6) for d in doms}
    assert len(widths) == 1  # four equal panels
    texts = [a["text"] for a in lay["annotations"]]
    assert texts[0].startswith("DDPM") and texts[3].startswith("DDIM (eta 0.5)")
    assert texts.count("x_t") == 2 and texts.count("predicted x0") == 2
    lane = lay["annotations"][0]
    assert lane["x"] == pytest.approx((doms[0][0] + doms[1][1]) / 2) and lane["yshift"] > 0  # centred above its pair
    one = animation.points_figure((snaps[-1],), LANES[:1], [snaps], [field], None).to_dict()["layout"]
    assert [a["text"] for a in one["annotations"]][1] == "predicted x0 (grey: data)"  # one lane: as before
    # the live frames drawn on the server follow the same arrangement: one row, wider than tall
    one_px = animation.points_raster((snaps[-1],), LANES[:1], [snaps], [field], None)
    two_px = animation.points_raster((snaps[-1], snaps[-1]), LANES, [snaps, snaps], [field, field], None)
    assert two_px.shape[1] > 2 * one_px.shape[1] - 20 and two_px.shape[0] < 1.3 * one_px.shape[0]


def test_points_figure_shows_only_points_inside_its_square_panels():
    snaps, field = points_parts()
    lim = animation.POINTS_LIM
    far = np.array(snaps[-1].x0, dtype=np.float32)
    far[:3] = [[lim + 1, 0.0], [0.0, -lim - 0.5], [9.0, 9.0]]  # a wild x0 prediction at large t
    s = snapshot("points", 4, 5, 20, torch.as_tensor(snaps[-1].x_t), torch.as_tensor(far), torch.as_tensor(snaps[-1].eps))
    fig = animation.points_figure((s,), LANES[:1], [[s]], [field])
    x0 = fig.data[[tr["name"] for tr in fig.data].index("predicted x0")]
    inside = far[(np.abs(far) <= lim).all(axis=1)]
    assert len(x0["x"]) == len(inside) == len(far) - 3
    np.testing.assert_allclose(x0["x"], inside[:, 0], rtol=5e-3, atol=1e-3)  # three significant digits


def test_signal_figure_draws_three_panels_per_lane():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 1, 32, generator=g)
    s = snapshot("signal", 1, 10, 50, x, x, x)
    fig = animation.signal_figure((s, s), LANES, max_lines=3)
    assert len(fig.data) == 2 * 3 * 3
    assert len(fig.data[0]["y"]) == 32
    assert "xaxis6" in fig.layout
    # three significant digits keep the JSON small
    np.testing.assert_allclose(fig.data[0]["y"], x[0, 0].numpy(), rtol=5e-3, atol=1e-3)


def test_rasters_draw_points_and_signals():
    snaps, field = points_parts()
    img = animation.points_raster((snaps[-1],), LANES[:1], [snaps], [field], None)
    assert img.dtype == np.uint8 and img.shape[2] == 3
    blue = np.array(Image.new("RGB", (1, 1), render.PALETTE[0]).getpixel((0, 0)))
    assert (np.abs(img.astype(int) - blue).sum(axis=2) < 10).sum() > 30  # the particles are there
    x = torch.zeros(2, 1, 16)
    sig = animation.signal_raster((snapshot("signal", 0, 1, 5, x, x, x),), LANES[:1])
    assert sig.shape[1] > sig.shape[0] and sig.dtype == np.uint8


def test_a_long_sampler_name_takes_its_own_line_in_every_frame_of_a_run():
    """'DPM-Solver++ 2M SDE, quadratic spacing · step 3/50 · t = 900' is wider than a lane: the name goes on a
    line of its own above the step (it ran into the next lane's title), the same in every frame of the run so
    the pictures keep one size; the panels' titles stay on the band's last line; short names stay on one."""
    snaps, field = points_parts()
    long = Lane("dpm++2m-sde", "DPM-Solver++ 2M SDE", 5, None, "quadratic")
    assert animation.lane_title_lines(long, snaps[0]) == ["DPM-Solver++ 2M SDE, quadratic spacing",
                                                          f"step 1/5 · t = {snaps[0].t}"]
    assert animation.lane_title_lines(LANES[1], snaps[0]) == [animation.lane_title(LANES[1], snaps[0])]
    assert animation.title_lines(LANES) == 1 and animation.title_lines((LANES[0], long)) == 2
    short = animation.points_raster((snaps[-1],), LANES[:1], [snaps], [field], None)
    first, last = (animation.points_raster((s,), (long,), [snaps], [field], None) for s in (snaps[0], snaps[-1]))
    assert first.shape == last.shape and first.shape[0] > short.shape[0] and first.shape[1] == short.shape[1]
    pair = [animation.points_raster((s, s), (LANES[0], long), [snaps] * 2, [field] * 2, None) for s in snaps[::2]]
    assert len({p.shape for p in pair}) == 1
    fig = animation.points_figure((snaps[0],), (long,), [snaps], [field]).to_dict()["layout"]
    assert fig["annotations"][0]["text"] == "DPM-Solver++ 2M SDE, quadratic spacing<br>" + f"step 1/5 · t = {snaps[0].t}"
    plain = animation.points_figure((snaps[0],), LANES[:1], [snaps], [field]).to_dict()["layout"]
    assert fig["margin"]["t"] > plain["margin"]["t"]
    x = torch.zeros(2, 1, 16)
    s = snapshot("signal", 0, 1, 5, x, x, x)
    assert animation.signal_raster((s,), (long,)).shape[0] > animation.signal_raster((s,), LANES[:1]).shape[0]
    assert animation.signal_figure((s,), (long,)).to_dict()["layout"]["annotations"][0]["text"].startswith(
        "DPM-Solver++ 2M SDE, quadratic spacing<br>")


def test_pick_frames_spreads_and_keeps_the_ends():
    assert animation.pick_frames(5, 10) == [0, 1, 2, 3, 4]
    picks = animation.pick_frames(1001, 50)
    assert picks[0] == 0 and picks[-1] == 1000 and len(picks) <= 50
    assert animation.pick_frames(0, 10) == []


def frames(k=4, h=37, w=51):
    out = []
    for i in range(k):
        f = np.full((h, w, 3), 255, np.uint8)
        f[:, : (i + 1) * w // k] = (40 * i, 100, 200)
        out.append(f)
    return out


def test_export_gif_keeps_frames_timing_and_holds_the_last(tmp_path):
    path = animation.export(frames(), tmp_path / "a.gif", fps=10, hold_last=0.5)
    with Image.open(path) as im:
        # the held copies of the last frame merge into one frame shown 0.1 + 0.5 s
        assert im.n_frames == 4 and im.size == (51, 37)
        assert im.info["duration"] == 100
        im.seek(1)
        assert np.asarray(im.convert("RGB"))[0, 0].tolist() == [40, 100, 200]
        im.seek(3)
        assert im.info["duration"] == 600


def test_export_mp4_pads_to_codec_friendly_size(tmp_path):
    import imageio.v2 as imageio

    path = animation.export(frames(6), tmp_path / "a.mp4", fps=12, hold_last=0)
    reader = imageio.get_reader(path, format="FFMPEG")
    try:
        got = [f for f in reader]
        assert reader.get_meta_data()["fps"] == 12
    finally:
        reader.close()
    assert len(got) == 6
    assert got[0].shape[0] % 16 == 0 and got[0].shape[1] % 16 == 0
    assert abs(int(got[-1][10, 10, 2]) - 200) < 12  # colours survive the codec, roughly


def test_export_rejects_bad_requests(tmp_path):
    with pytest.raises(ValueError, match="gif, mp4"):
        animation.export(frames(), tmp_path / "a.avi")
    with pytest.raises(ValueError, match="fps must be between 1 and 60"):
        animation.export(frames(), tmp_path / "a.gif", fps=0)
    with pytest.raises(ValueError, match="no frames"):
        animation.export([], tmp_path / "a.gif")


def test_field_arrows_heads_are_strokes_through_the_tip():
    starts = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]], dtype=np.float32)
    ends = np.array([[1.0, 0.0], [1.0, 1.1], [2.0, 2.0]], dtype=np.float32)  # long, short, none
    xs, ys = animation._arrow_paths(starts, ends, head=0.25)
    path = np.array([[np.nan if x is None else x, np.nan if y is None else y] for x, y in zip(xs, ys)]).reshape(3, 7, 2)
    start, tip, gap, left, tip2, right, gap2 = path[0].tolist()
    assert start == [0, 0] and tip == tip2 == [1, 0] and all(map(np.isnan, gap + gap2))
    assert left == pytest.approx([0.75, 0.125]) and right == pytest.approx([0.75, -0.125])  # head 0.25 long
    short = path[1]  # a head at most 0.6 of its arrow
    assert np.hypot(*(short[4] - (short[3] + short[5]) / 2)) == pytest.approx(0.06, abs=1e-3)
    assert np.isfinite(path[2, [0, 1, 3, 4, 5]]).all()  # a zero arrow draws nothing wrong (a point)


def test_reference_picture_puts_the_data_where_the_axes_say():
    lim = animation.POINTS_LIM
    ref = np.array([[0.0, 0.0], [-3.0, 3.0], [2.0, -1.0]], dtype=np.float32)
    uri = animation.reference_picture(ref, lim)
    assert uri == animation.reference_picture(ref.copy(), lim)  # drawn once per data set
    img = np.array(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))))
    size = img.shape[0] - 1
    assert img.shape == (size + 1, size + 1, 4)

    def alpha(x, y):  # data coordinates -> the picture's pixel (y up in the data, down in the picture)
        return img[round((lim - y) / (2 * lim) * size), round((x + lim) / (2 * lim) * size), 3]

    assert alpha(0, 0) > 0 and alpha(-3, 3) > 0 and alpha(2, -1) > 0
    assert alpha(1, 1) == 0 and alpha(-2, -2) == 0 and img[..., 3].max() < 255  # faint, transparent elsewhere
