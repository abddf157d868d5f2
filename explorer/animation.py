"""Draw the frames of a recorded reverse trajectory, and export them as GIF or MP4.

A frame holds one `Snapshot` per lane (sampler). Each lane is drawn as a row:
- images: three grids side by side, x_t | predicted x0 | predicted eps (one uint8 RGB image);
- 2-D points: x_t with particle trails over the model's denoising field | predicted x0 (plotly);
- signals: x_t | predicted x0 | predicted eps as line plots (plotly).
Points and signals also have a raster form (`*_raster`), drawn with Pillow, because plotly cannot
write GIF/MP4 frames without a browser engine. Nothing here computes a diffusion quantity: the
field arrows arrive as (grid points, eps) from the caller, which asked the model.
"""
from __future__ import annotations

import base64
import io
import math
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
from PIL import Image, ImageDraw

from core.samplers import sampler_name

from . import raster, render
from .render import PALETTE, Figure, _axis, _font, _layout, _num
from .trajectory import EPS_RANGE, X_RANGE, Lane, Snapshot, dequantise

POINTS_LIM = 3.5        # 2-D data is roughly unit scale; x_T ~ N(0, I) stays inside +-3.5
SIGNAL_LIM = 3.5
MAX_TRAILS = 150        # particles that get a trail: more only clutters the picture and the JSON
MAX_POINTS = 1500
FIELD_COLOR = "rgba(71, 85, 105, 0.55)"
X0_COLOR = "#ea580c"
ARROW_HEAD = 0.3        # a field arrow's head: this share of the grid spacing at most (0.6 of a short arrow)
REFERENCE_PX = 640      # the data's picture behind predicted x0: about twice a panel's size on a laptop ...
REFERENCE_DOT_PX = 3.0  # ... so its dots, shown at about half size, are 3 px across
REFERENCE_ALPHA = 110   # of 255: faint, under the predictions
HEADER = 32             # px of the title bar above each image row
# Text drawn into frames is sized for a projector: at least 20 px where the presenter view shows the
# frame at 1024 px wide (an image frame is about 1,000 px wide and shown at about that size).
FRAME_FONT = 22
PLOT_FONT = 16           # 2-D and signal frames are narrower and shown enlarged


def lane_name(lane: Lane) -> str:
    """'DDIM (eta 0.5)', 'DPM-Solver++ 2M SDE, quadratic spacing': the sampler and its options."""
    name = sampler_name(lane.sampler)
    if lane.eta is not None:
        name += f" (eta {lane.eta:g})"
    if lane.spacing != "linear":
        name += f", {lane.spacing} spacing"
    return name


def lane_progress(snap: Snapshot) -> str:
    """'step 3/50 · t = 940', or 'done after 50 steps' once x_0 is reached."""
    return f"done after {snap.n} steps" if snap.done else f"step {snap.i + 1}/{snap.n} · t = {snap.t}"


def lane_title(lane: Lane, snap: Snapshot) -> str:
    """'DDIM (eta 0.0) · step 3/50 · t = 940', or '... · done after 50 steps' once x_0 is reached."""
    return f"{lane_name(lane)} · {lane_progress(snap)}"


LONG_NAME = 18  # characters: a longer sampler name goes on its own line above the step, in every frame of the run


def lane_title_lines(lane: Lane, snap: Snapshot) -> list[str]:
    """The lane's title as the frames draw it: one line, or, for a long name ('DDIM (eta 1), quadratic
    spacing'), the name and then the step, which side by side or beside the next panel's title would run
    into them. Decided by the lane alone, so every frame of a run has the same layout."""
    name = lane_name(lane)
    return [f"{name} · {lane_progress(snap)}"] if len(name) <= LONG_NAME else [name, lane_progress(snap)]


def title_lines(lanes: Sequence[Lane]) -> int:
    """How many lines the longest lane title of these lanes takes (1 or 2)."""
    return 2 if any(len(lane_name(lane)) > LONG_NAME for lane in lanes) else 1


# --- images -----------------------------------------------------------------------------------

IMAGE_LABELS = ("x_t (the current state)", "predicted x0", "predicted noise eps")


def _titled(img: np.ndarray, title: str, color: str, dark: bool = False) -> np.ndarray:
    ground, _, ink = render.CHROME[dark]
    canvas = Image.new("RGB", (img.shape[1], img.shape[0] + HEADER), ground)
    canvas.paste(Image.fromarray(img), (0, HEADER))
    draw = ImageDraw.Draw(canvas)
    draw.rectangle([6, 10, 18, 22], fill=color)
    draw.text((26, 4), title, fill=ink, font=_font(FRAME_FONT))
    return np.asarray(canvas)


def _stack(rows: Sequence[np.ndarray], dark: bool = False) -> np.ndarray:
    width = max(r.shape[1] for r in rows)
    padded = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=0 if dark else 255) for r in rows]
    return np.concatenate(padded, axis=0)


def image_frame(frame: Sequence[Snapshot], lanes: Sequence[Lane], min_size: int = 240, dark: bool = False) -> np.ndarray:
    """One RGB uint8 image (H, W, 3): a titled row of three grids per lane.

    dark: titles and captions on black, for the page's dark theme (exports keep the light ground).
    """
    rows = []
    for k, (lane, s) in enumerate(zip(lanes, frame)):
        gap = render.GRID_GAP[dark]
        panels = [
            render.grid(dequantise(s.x_t, X_RANGE), min_size=min_size, gap=gap),
            render.grid(dequantise(s.x0, X_RANGE), min_size=min_size, gap=gap),
            render.grid(dequantise(s.eps, EPS_RANGE), lo=-EPS_RANGE, hi=EPS_RANGE, min_size=min_size, gap=gap),
        ]
        labels = ("x_0 (the sample)",) + IMAGE_LABELS[1:] if s.done else IMAGE_LABELS
        strip = render.labelled_strip(panels, labels, font_size=FRAME_FONT, dark=dark)
        rows.append(_titled(strip, lane_title(lane, s), PALETTE[k % len(PALETTE)], dark))
    return _stack(rows, dark)


# --- 2-D points: plotly -----------------------------------------------------------------------

def _f32(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float32)


def _inside(p: np.ndarray, lim: float) -> np.ndarray:
    """The points (N, 2) of `p` inside the square panel [-lim, lim]^2. Plotly draws markers past an axis
    constrained to a square domain, over the titles and the next panel; a panel shows its square only."""
    return p[(np.abs(p) <= lim).all(axis=1)]


def _arrow_paths(starts: np.ndarray, ends: np.ndarray, head: float) -> tuple[list, list]:
    """Arrows as one lines trace's x / y lists: each shaft and the two strokes of its head (length
    min(head, 0.6 |end - start|), spread like the pictures' heads), separated by None.

    Plotly's arrow markers styled each of the field's points one by one, a third of the 2-D figure's
    drawing time in the browser; strokes of one path cost almost nothing more than the shafts."""
    starts, ends = _f32(starts).reshape(-1, 2), _f32(ends).reshape(-1, 2)
    d = ends - starts
    length = np.hypot(d[:, 0], d[:, 1])
    u = np.divide(d, length[:, None], out=np.zeros_like(d), where=length[:, None] > 0)
    side = np.stack([-u[:, 1], u[:, 0]], axis=1)
    h = np.minimum(head, 0.6 * length)[:, None]
    base = ends - u * h
    left, right = base + side * h * 0.5, base - side * h * 0.5
    gap = np.full_like(starts, np.nan)
    # per arrow: start, end, gap, left, end, right, gap (the head drawn as one stroke through the tip)
    path = np.stack([starts, ends, gap, left, ends, right, gap], axis=1).reshape(-1, 2)
    return _num(path[:, 0], 3), _num(path[:, 1], 3)


def field_arrows(points: np.ndarray, eps: np.ndarray, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """Arrow starts and ends for the denoising direction -eps, scaled so the longest is 0.9 * spacing.

    The score is -eps / sigma_t: its direction is -eps; its size is rescaled so arrows stay legible at every t.
    """
    v = -_f32(eps)
    norm = float(np.linalg.norm(v, axis=1).max()) if len(v) else 0.0
    scale = 0.9 * spacing / norm if norm > 0 else 0.0
    return _f32(points), _f32(points) + v * scale


def _trail_xy(history: Sequence[Snapshot]) -> tuple[list, list]:
    """Trails of the first MAX_TRAILS particles through the given snapshots: one polyline each."""
    if len(history) < 2:
        return [], []
    path = np.stack([_f32(s.x_t[:MAX_TRAILS]) for s in history], axis=1)  # (P, K, 2)
    p, k, _ = path.shape
    full = np.full((p, k + 1, 2), np.nan, dtype=np.float32)
    full[:, :k] = path
    flat = full.reshape(-1, 2)
    return _num(flat[:, 0], 3), _num(flat[:, 1], 3)


def _panel_title(text: str, x_dom, first: bool, y: float, size: int) -> dict:
    """A panel's title above it: the first panel of a row (the lane's, the longest) from its left edge,
    the others up to their right edge. The presenter view sets every title at 20 px: titles grown from
    their centres ran into each other at 1024 px, grown away from each other they keep apart (`align`
    sets the text's SVG anchor, so the page's larger font grows the text from that edge)."""
    side = "left" if first else "right"
    return dict(text=text, x=x_dom[0] if first else x_dom[1], xanchor=side, align=side, y=y,
                xref="paper", yref="paper", yanchor="bottom", showarrow=False, font=dict(size=size))


def _lane_columns(nlanes: int) -> list[list[tuple[float, float]]]:
    """x domains (paper fractions) of each lane's two panels [x_t, predicted x0] when the lanes sit
    side by side: a small gap inside a lane, a wider one between lanes."""
    inner, between = 0.02, 0.06
    w = (1 - inner * nlanes - between * (nlanes - 1)) / (2 * nlanes)
    out = []
    for r in range(nlanes):
        left = r * (2 * w + inner + between)
        out.append([(left, left + w), (left + w + inner, left + 2 * w + inner)])
    return out


LANE_TITLE_SHIFT = 28  # px between a lane's title and its panels' titles below it (20 px text in the presenter view)
TITLE_LINE = 26        # px of one more line of title (20 px text in the presenter view)


def points_figure(frame: Sequence[Snapshot], lanes: Sequence[Lane], trails: Sequence[Sequence[Snapshot]],
                  fields: Sequence[tuple[np.ndarray, np.ndarray, float] | None], reference=None,
                  lim: float = POINTS_LIM, height: int = 360) -> Figure:
    """Per lane two panels: [x_t, its trails and the field] [predicted x0 over the data]; fixed equal axes.

    One lane: the two panels, each titled. Several lanes (samplers compared) sit side by side in one
    row, each lane's title above its two panels: a wide, short view (the presenter view with its
    lesson card, a laptop's screen) then shows every panel at a useful size, where lanes in rows
    shrank them to a few centimetres. trails: per lane the recent snapshots (oldest first); fields:
    per lane (grid points (G, 2), eps at them (G, 2), grid spacing) or None; reference: optional
    (M, 2) data points.
    """
    nlanes = len(lanes)
    data, annotations, images = [], [], []
    wide = nlanes > 1
    extra = TITLE_LINE * (title_lines(lanes) - 1)  # a long sampler name takes a line of its own
    lay = _layout(height, margin=dict(l=36, r=8, t=30 + (LANE_TITLE_SHIFT if wide else 0) + extra, b=24))
    columns = _lane_columns(nlanes) if wide else [[(0.0, 0.485), (0.515, 1.0)]]
    rng = [-lim, lim]
    for r, (lane, s) in enumerate(zip(lanes, frame)):
        color = PALETTE[r % len(PALETTE)]
        y_dom = [0.0, 1.0]
        if wide:
            (a, _), (_, b) = columns[r]
            annotations.append(dict(text="<br>".join(lane_title_lines(lane, s)), x=(a + b) / 2, xanchor="center", y=1.0,
                                    yshift=LANE_TITLE_SHIFT, xref="paper", yref="paper", yanchor="bottom",
                                    showarrow=False, font=dict(size=11, color=color)))
        for c in range(2):
            ax = 2 * r + c + 1
            suffix = "" if ax == 1 else str(ax)
            x_dom = list(columns[r][c])
            lay[f"xaxis{suffix}"] = _axis(domain=x_dom, range=rng, anchor=f"y{suffix}", constrain="domain")
            lay[f"yaxis{suffix}"] = _axis(domain=y_dom, range=rng, anchor=f"x{suffix}", scaleanchor=f"x{suffix}",
                                          scaleratio=1, constrain="domain", showticklabels=c == 0)
            if wide:
                title = "x_t" if c == 0 else "predicted x0"
            else:
                title = "<br>".join(lane_title_lines(lane, s)) if c == 0 else "predicted x0 (grey: data)"
            annotations.append(_panel_title(title, x_dom, first=c == 0, y=y_dom[1], size=11))
            xref, yref = f"x{suffix}", f"y{suffix}"
            if c == 0:
                fld = fields[r] if fields else None
                if fld is not None:
                    starts, ends = field_arrows(fld[0], fld[1], fld[2])
                    xs, ys = _arrow_paths(starts, ends, ARROW_HEAD * fld[2])
                    data.append(dict(type="scatter", mode="lines", x=xs, y=ys, xaxis=xref, yaxis=yref,
                                     name="-eps field", hoverinfo="skip", line=dict(color=FIELD_COLOR, width=1)))
                tx, ty = _trail_xy(trails[r] if trails else [])
                if tx:
                    data.append(dict(type="scatter", mode="lines", x=tx, y=ty, xaxis=xref, yaxis=yref, name="trails",
                                     hoverinfo="skip", line=dict(color=color, width=1), opacity=0.35))
                p = _inside(_f32(s.x_t[:MAX_POINTS]), lim)
                data.append(dict(type="scatter", mode="markers", x=_num(p[:, 0], 3), y=_num(p[:, 1], 3),
                                 xaxis=xref, yaxis=yref, name="x_t", marker=dict(size=4, color=color, opacity=0.8)))
            else:
                if reference is not None:
                    images.append(dict(source=reference_picture(reference, lim), xref=xref, yref=yref, x=-lim,
                                       y=lim, sizex=2 * lim, sizey=2 * lim, xanchor="left", yanchor="top",
                                       sizing="stretch", layer="below", name="data"))
                p = _inside(_f32(s.x0[:MAX_POINTS]), lim)
                data.append(dict(type="scatter", mode="markers", x=_num(p[:, 0], 3), y=_num(p[:, 1], 3),
                                 xaxis=xref, yaxis=yref, name="predicted x0",
                                 marker=dict(size=4, color=X0_COLOR, opacity=0.75)))
    lay["annotations"] = annotations
    if images:
        lay["images"] = images
    return Figure(data, lay)


def reference_picture(reference: np.ndarray, lim: float = POINTS_LIM) -> str:
    """The training points as faint grey dots on a transparent square picture spanning [-lim, lim]^2
    (a PNG data URI), drawn once per data set: the figure shows one picture where 1,500 SVG markers
    took a third to a half of its drawing time in the browser. Dots as in the playing frames."""
    ref = _f32(reference)[:MAX_POINTS]
    key = (ref.shape, hash(ref.tobytes()), lim)
    uri = _REFERENCE_PICTURES.get(key)
    if uri is None:
        size = REFERENCE_PX
        mask = np.zeros((size + 1, size + 1, 3), dtype=np.uint8)
        box = (0, 0, size, size)
        raster.dots(mask, _to_px(ref, box, lim), (255, 255, 255), REFERENCE_DOT_PX, box)
        rgba = np.zeros((size + 1, size + 1, 4), dtype=np.uint8)
        rgba[..., :3] = _rgb(render.GREY)
        rgba[..., 3] = (mask[..., 0] > 0) * REFERENCE_ALPHA
        buf = io.BytesIO()
        Image.fromarray(rgba, "RGBA").save(buf, format="PNG")
        uri = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
        if len(_REFERENCE_PICTURES) >= 8:
            _REFERENCE_PICTURES.pop(next(iter(_REFERENCE_PICTURES)))
        _REFERENCE_PICTURES[key] = uri
    return uri


_REFERENCE_PICTURES: dict[tuple, str] = {}


# --- signals: plotly --------------------------------------------------------------------------

SIGNAL_GAP = 0.075  # between a lane's three panels, as a fraction of the width
SIGNAL_PANELS = (("x_t", "x_t", SIGNAL_LIM), ("predicted x0", "x0", 1.5), ("predicted noise eps", "eps", SIGNAL_LIM))


def signal_figure(frame: Sequence[Snapshot], lanes: Sequence[Lane], max_lines: int = 4,
                  row_height: int = 250) -> Figure:
    """Per lane a row of three line plots: x_t | predicted x0 | predicted eps, first `max_lines` samples."""
    nrows = len(lanes)
    data, annotations = [], []
    extra = TITLE_LINE * (title_lines(lanes) - 1)  # a long sampler name takes a line of its own
    lay = _layout(row_height * nrows + extra, margin=dict(l=40, r=8, t=30 + extra, b=24))
    gap_y = 0.12 / max(nrows, 1)
    h = (1 - gap_y * (nrows - 1)) / nrows
    # the gap holds the next panel's y tick labels: "-1.5" at the presenter view's 20 px needs about 50 px
    gap_x = SIGNAL_GAP
    width = (1 - 2 * gap_x) / 3
    for r, (lane, s) in enumerate(zip(lanes, frame)):
        y_dom = [1 - (r + 1) * h - r * gap_y, 1 - r * h - r * gap_y]
        for c, (label, attr, ylim) in enumerate(SIGNAL_PANELS):
            ax = 3 * r + c + 1
            suffix = "" if ax == 1 else str(ax)
            x_dom = [c * (width + gap_x), c * (width + gap_x) + width]
            lay[f"xaxis{suffix}"] = _axis(domain=x_dom, anchor=f"y{suffix}", showticklabels=False)
            # 10% of room beyond the limits: the top tick's label then sits below the panel titles
            lay[f"yaxis{suffix}"] = _axis(domain=y_dom, range=[-1.1 * ylim, 1.1 * ylim], anchor=f"x{suffix}")
            if c == 0:
                title = "<br>".join(lane_title_lines(lane, s)) + f": {'x_0' if s.done else label}"
            else:
                title = label
            annotations.append(_panel_title(title, x_dom, first=c == 0, y=y_dom[1], size=12))
            arr = _f32(getattr(s, attr))
            for k, line in enumerate(arr.reshape(arr.shape[0], -1)[:max_lines]):
                data.append(dict(type="scatter", mode="lines", y=_num(line, 3), xaxis=f"x{suffix}", yaxis=f"y{suffix}",
                                 name=f"#{k}", hoverinfo="skip", line=dict(color=PALETTE[k % len(PALETTE)], width=1.6)))
    lay["annotations"] = annotations
    return Figure(data, lay)


# --- raster forms (export) --------------------------------------------------------------------

def _rgb(color: str) -> tuple[int, int, int]:
    color = color.lstrip("#")
    return tuple(int(color[i:i + 2], 16) for i in (0, 2, 4))


def _mix(color: str, alpha: float) -> tuple[int, int, int]:
    """An opaque colour that looks like `color` at `alpha` on white (GIF has no partial transparency)."""
    r, g, b = _rgb(color)
    return tuple(int(round(255 + (v - 255) * alpha)) for v in (r, g, b))


class _Panel:
    """A square or rectangular plot area on a Pillow canvas with data -> pixel mapping."""

    def __init__(self, draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], xlim, ylim):
        self.draw, self.box, self.xlim, self.ylim = draw, box, xlim, ylim
        draw.rectangle(box, outline=(203, 213, 225), fill=(255, 255, 255))

    def px(self, xy: np.ndarray) -> np.ndarray:
        x0, y0, x1, y1 = self.box
        u = (xy[..., 0] - self.xlim[0]) / (self.xlim[1] - self.xlim[0])
        v = (xy[..., 1] - self.ylim[0]) / (self.ylim[1] - self.ylim[0])
        return np.stack([x0 + u * (x1 - x0), y1 - v * (y1 - y0)], axis=-1)

    def inside(self, p: np.ndarray) -> np.ndarray:
        x0, y0, x1, y1 = self.box
        return (p[..., 0] >= x0) & (p[..., 0] <= x1) & (p[..., 1] >= y0) & (p[..., 1] <= y1)


_REFERENCE_PANELS: dict[tuple, Image.Image] = {}


def _reference_panel(reference: np.ndarray, size: int, lim: float) -> Image.Image:
    """A size x size white panel with the training points in faint grey: the same for every frame of a
    run, so it is drawn once and pasted after."""
    ref = _f32(reference)[:MAX_POINTS]
    key = (ref.shape, hash(ref.tobytes()), size, lim)
    panel = _REFERENCE_PANELS.get(key)
    if panel is None:
        arr = np.full((size + 1, size + 1, 3), 255, dtype=np.uint8)
        box = (0, 0, size, size)
        raster.dots(arr, _to_px(ref, box, lim), _mix(render.GREY, 0.5), 1.2, box)
        panel = Image.fromarray(arr)
        if len(_REFERENCE_PANELS) >= 8:
            _REFERENCE_PANELS.pop(next(iter(_REFERENCE_PANELS)))
        _REFERENCE_PANELS[key] = panel
    return panel


def _to_px(xy: np.ndarray, box: tuple[int, int, int, int], lim: float) -> np.ndarray:
    """Data coordinates in [-lim, lim]^2 -> pixels of `box` (y up in the data, down on screen)."""
    x0, y0, x1, y1 = box
    u = (xy[..., 0] + lim) / (2 * lim)
    v = (xy[..., 1] + lim) / (2 * lim)
    return np.stack([x0 + u * (x1 - x0), y1 - v * (y1 - y0)], axis=-1)


def points_raster(frame: Sequence[Snapshot], lanes: Sequence[Lane], trails, fields, reference=None,
                  lim: float = POINTS_LIM, size: int = 300) -> np.ndarray:
    """The same picture as `points_figure`, drawn with Pillow (text, frames) and numpy (dots,
    arrows, trails: explorer.raster): (H, W, 3) uint8."""
    nlanes = len(lanes)
    wide = nlanes > 1  # lanes side by side, each titled above its two panels, as in points_figure
    # a wide frame is shown smaller (about 0.63 of its size in the presenter view at 1024x768 with the
    # lesson card): its text is twice as large, so it still reads at 20 px; a lane title of a long sampler
    # name takes two lines (lane_title_lines), each of which fits above its lane's two panels
    size_font = 2 * PLOT_FONT if wide else PLOT_FONT
    pad, cap, between = 8, size_font + 10, 40
    nlines = title_lines(lanes)  # a long sampler name takes a line of its own
    w = nlanes * (2 * size + pad) + (nlanes - 1) * between + 2 * pad
    top = pad + (nlines * cap if wide else 0)
    head = cap if wide else nlines * cap  # the panel titles' band (one lane: its title is the first panel's)
    h = top + head + size + pad
    canvas = Image.new("RGB", (w, h), "white")
    draw = ImageDraw.Draw(canvas)
    font = _font(size_font)
    boxes = []
    for r, (lane, s) in enumerate(zip(lanes, frame)):
        lane_left = pad + r * (2 * size + pad + between)
        if wide:
            for k, line in enumerate(lane_title_lines(lane, s)):
                tw = draw.textlength(line, font=font)
                draw.text((lane_left + max(0.0, (2 * size + pad - tw) / 2), pad + 3 + k * cap), line,
                          fill=PALETTE[r % len(PALETTE)], font=font)
        row = []
        for c in range(2):
            left = lane_left + c * (size + pad)
            if wide:
                lines = ["x_t" if c == 0 else "predicted x0"]
            else:
                lines = lane_title_lines(lane, s) if c == 0 else ["predicted x0 (grey: data)"]
            skip = head // cap - len(lines)  # a one-line title on the band's last line: the long name's is free
            for k, line in enumerate(lines):
                tx = left if c == 0 else left + size - draw.textlength(line, font=font)
                draw.text((tx, top + 3 + (k + skip) * cap), line, fill="#111827", font=font)
            box = (left, top + head, left + size, top + head + size)
            draw.rectangle(box, outline=(203, 213, 225), fill=(255, 255, 255))
            if c == 1 and reference is not None:
                canvas.paste(_reference_panel(reference, size, lim), (left, top + head))
            row.append(box)
        boxes.append(row)
    arr = np.array(canvas)
    for r, (lane, s) in enumerate(zip(lanes, frame)):
        color = PALETTE[r % len(PALETTE)]
        (bx, by0, bx1, by1), box_x0 = boxes[r]
        inner = (bx + 1, by0 + 1, bx1 - 1, by1 - 1)  # the panel's outline stays
        fld = fields[r] if fields else None
        if fld is not None:
            starts, ends = field_arrows(fld[0], fld[1], fld[2])
            raster.arrows(arr, _to_px(starts, boxes[r][0], lim), _to_px(ends, boxes[r][0], lim),
                          (100, 116, 139), inner)
        hist = trails[r] if trails else []
        if len(hist) >= 2:
            path = _to_px(np.stack([_f32(x.x_t[:MAX_TRAILS]) for x in hist], axis=1), boxes[r][0], lim)
            raster.polylines(arr, path, _mix(color, 0.35), inner)
        raster.dots(arr, _to_px(_f32(s.x_t[:MAX_POINTS]), boxes[r][0], lim), _rgb(color), 2.0, inner)
        x0_box = (box_x0[0] + 1, box_x0[1] + 1, box_x0[2] - 1, box_x0[3] - 1)
        raster.dots(arr, _to_px(_f32(s.x0[:MAX_POINTS]), box_x0, lim), _rgb(X0_COLOR), 2.0, x0_box)
    return arr


def signal_raster(frame: Sequence[Snapshot], lanes: Sequence[Lane], max_lines: int = 4,
                  size: tuple[int, int] = (300, 170)) -> np.ndarray:
    """The same picture as `signal_figure`, drawn with Pillow: (H, W, 3) uint8."""
    pw, ph = size
    pad, line_h = 8, PLOT_FONT + 10
    cap = title_lines(lanes) * line_h  # a long sampler name takes a line of its own
    w = 3 * pw + 4 * pad
    h = len(lanes) * (ph + cap + pad) + pad
    canvas = Image.new("RGB", (w, h), "white")
    draw = ImageDraw.Draw(canvas)
    font = _font(PLOT_FONT)
    for r, (lane, s) in enumerate(zip(lanes, frame)):
        top = pad + r * (ph + cap + pad)
        for c, (label, attr, ylim) in enumerate(SIGNAL_PANELS):
            left = pad + c * (pw + pad)
            titles = lane_title_lines(lane, s) if c == 0 else [label]
            skip = cap // line_h - len(titles)  # the other panels' titles on the last line: the first is free
            for k, title in enumerate(titles):
                draw.text((left, top + 3 + (k + skip) * line_h), title, fill="#111827", font=font)
            arr = _f32(getattr(s, attr))
            lines = arr.reshape(arr.shape[0], -1)[:max_lines]
            length = lines.shape[1]
            panel = _Panel(draw, (left, top + cap, left + pw, top + cap + ph), (0, max(length - 1, 1)), (-ylim, ylim))
            zero = panel.px(np.array([[0.0, 0.0], [length - 1, 0.0]]))
            draw.line([tuple(zero[0]), tuple(zero[1])], fill=(226, 232, 240), width=1)
            for k, line in enumerate(lines):
                xy = np.stack([np.arange(length, dtype=np.float32), np.clip(line, -ylim, ylim)], axis=1)
                draw.line([tuple(p) for p in panel.px(xy)], fill=_rgb(PALETTE[k % len(PALETTE)]), width=2)
    return np.asarray(canvas)


# --- export -----------------------------------------------------------------------------------

EXPORT_FORMATS = ("gif", "mp4")


def pick_frames(count: int, most: int) -> list[int]:
    """Indices of at most `most` frames spread evenly over 0..count-1, always the first and the last."""
    if count <= 0:
        return []
    if count <= most:
        return list(range(count))
    return sorted(set(np.linspace(0, count - 1, most).round().astype(int).tolist()))


def _rgb3(f: np.ndarray) -> np.ndarray:
    return f if f.ndim == 3 else np.repeat(f[..., None], 3, axis=2)


def _canvas_size(frame: np.ndarray, multiple: int) -> tuple[int, int]:
    return math.ceil(frame.shape[0] / multiple) * multiple, math.ceil(frame.shape[1] / multiple) * multiple


def _fit(f: np.ndarray, hh: int, ww: int) -> np.ndarray:
    """Pad `f` (white) to hh x ww; a larger frame is first shrunk to fit, keeping its aspect."""
    f = _rgb3(f)
    if f.shape[0] > hh or f.shape[1] > ww:
        k = min(hh / f.shape[0], ww / f.shape[1])
        size = (max(1, int(f.shape[1] * k)), max(1, int(f.shape[0] * k)))
        f = np.asarray(Image.fromarray(f).resize(size, Image.Resampling.LANCZOS))
    return np.pad(f, ((0, hh - f.shape[0]), (0, ww - f.shape[1]), (0, 0)), constant_values=255)


def export(frames: Iterable[np.ndarray], path: str | Path, fps: float = 15.0, hold_last: float = 1.0,
           progress: Callable[[int], None] | None = None) -> Path:
    """Write RGB uint8 frames (H, W, 3) to `path` (.gif or .mp4); the last frame is held `hold_last` seconds.

    `frames` may be a lazy iterable: each frame is encoded as it arrives, so drawing the next frame
    overlaps with the encoder (x264 runs in its own process) and only GIF keeps frames in memory.
    Every frame is padded to the first frame's size (a larger one is shrunk to fit). `progress(k)`
    is called after the k-th frame is written. The file appears at `path` only when complete.
    """
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"export format must be one of {', '.join(EXPORT_FORMATS)}, got {path.suffix!r}")
    if not 1 <= fps <= 60:
        raise ValueError(f"fps must be between 1 and 60, got {fps}")
    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        raise ValueError("no frames to export")
    held = int(round(hold_last * fps))
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(f".{path.name}.part{path.suffix}")  # the suffix tells imageio the container
    # H.264 in yuv420p needs even sides; 16 avoids ffmpeg's resize warning
    hh, ww = _canvas_size(first, 16 if fmt == "mp4" else 1)
    done = 0

    def fitted():
        nonlocal done
        last = None
        for f in _chain(first, frames):
            last = _fit(f, hh, ww)
            yield last
            done += 1
            if progress is not None:
                progress(done)
        for _ in range(held):
            yield last

    try:
        if fmt == "gif":
            # Fast octree quantisation: median cut was 85% of a GIF export (about 0.25 s a frame for the
            # shapes model, 20x octree's cost) for a little less colour error. The held last frame is
            # quantised once and repeated.
            pil, previous = [], None
            for f in fitted():
                if f is previous:
                    pil.append(pil[-1])
                    continue
                previous = f
                pil.append(Image.fromarray(f).quantize(colors=255, method=Image.Quantize.FASTOCTREE,
                                                       dither=Image.Dither.NONE))
            # GIF delays are whole hundredths of a second; Pillow takes milliseconds.
            pil[0].save(part, format="GIF", save_all=True, append_images=pil[1:],
                        duration=int(round(1000 / fps)), loop=0, optimize=False, disposal=1)
        else:
            import imageio.v2 as imageio

            # x264's "veryfast" preset: the default ("medium") spent most of an export encoding
            with imageio.get_writer(part, format="FFMPEG", mode="I", fps=fps, codec="libx264", quality=7,
                                    pixelformat="yuv420p", macro_block_size=16,
                                    output_params=["-preset", "veryfast"]) as writer:
                for f in fitted():
                    writer.append_data(f)
        part.replace(path)
    finally:
        part.unlink(missing_ok=True)
    return path


def _chain(first: np.ndarray, rest: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    yield first
    yield from rest
