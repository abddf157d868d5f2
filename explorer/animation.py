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

import math
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from PIL import Image, ImageDraw

from . import render
from .render import PALETTE, Figure, _axis, _font, _layout, _num
from .trajectory import EPS_RANGE, X_RANGE, Lane, Snapshot, dequantise

POINTS_LIM = 3.5        # 2-D data is roughly unit scale; x_T ~ N(0, I) stays inside +-3.5
SIGNAL_LIM = 3.5
MAX_TRAILS = 150        # particles that get a trail: more only clutters the picture and the JSON
MAX_POINTS = 1500
FIELD_COLOR = "rgba(71, 85, 105, 0.55)"
X0_COLOR = "#ea580c"
HEADER = 32             # px of the title bar above each image row
# Text drawn into frames is sized for a projector: at least 20 px where the presenter view shows the
# frame at 1024 px wide (an image frame is about 1,000 px wide and shown at about that size).
FRAME_FONT = 22
PLOT_FONT = 16           # 2-D and signal frames are narrower and shown enlarged


def lane_title(lane: Lane, snap: Snapshot) -> str:
    """'DDIM (eta 0.0) · step 3/50 · t = 940', or '... · done after 50 steps' once x_0 is reached."""
    name = lane.sampler.upper() if lane.sampler != "dpm++2m" else "DPM-Solver++ 2M"
    if lane.eta is not None:
        name += f" (eta {lane.eta:g})"
    if snap.done:
        return f"{name} · done after {snap.n} steps"
    return f"{name} · step {snap.i + 1}/{snap.n} · t = {snap.t}"


# --- images -----------------------------------------------------------------------------------

IMAGE_LABELS = ("x_t (the current state)", "predicted x0", "predicted noise eps")


def _titled(img: np.ndarray, title: str, color: str) -> np.ndarray:
    canvas = Image.new("RGB", (img.shape[1], img.shape[0] + HEADER), "white")
    canvas.paste(Image.fromarray(img), (0, HEADER))
    draw = ImageDraw.Draw(canvas)
    draw.rectangle([6, 10, 18, 22], fill=color)
    draw.text((26, 4), title, fill="#111827", font=_font(FRAME_FONT))
    return np.asarray(canvas)


def _stack(rows: Sequence[np.ndarray]) -> np.ndarray:
    width = max(r.shape[1] for r in rows)
    padded = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    return np.concatenate(padded, axis=0)


def image_frame(frame: Sequence[Snapshot], lanes: Sequence[Lane], min_size: int = 240) -> np.ndarray:
    """One RGB uint8 image (H, W, 3): a titled row of three grids per lane."""
    rows = []
    for k, (lane, s) in enumerate(zip(lanes, frame)):
        panels = [
            render.grid(dequantise(s.x_t, X_RANGE), min_size=min_size),
            render.grid(dequantise(s.x0, X_RANGE), min_size=min_size),
            render.grid(dequantise(s.eps, EPS_RANGE), lo=-EPS_RANGE, hi=EPS_RANGE, min_size=min_size),
        ]
        labels = ("x_0 (the sample)",) + IMAGE_LABELS[1:] if s.done else IMAGE_LABELS
        strip = render.labelled_strip(panels, labels, font_size=FRAME_FONT)
        rows.append(_titled(strip, lane_title(lane, s), PALETTE[k % len(PALETTE)]))
    return _stack(rows)


# --- 2-D points: plotly -----------------------------------------------------------------------

def _f32(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float32)


def _segments(starts: np.ndarray, ends: np.ndarray) -> tuple[list, list]:
    """Line segments as one trace's x / y lists, separated by None (one trace draws them all)."""
    n = len(starts)
    xs = np.full(3 * n, np.nan)
    ys = np.full(3 * n, np.nan)
    xs[0::3], xs[1::3] = starts[:, 0], ends[:, 0]
    ys[0::3], ys[1::3] = starts[:, 1], ends[:, 1]
    return _num(xs, 3), _num(ys, 3)


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


def points_figure(frame: Sequence[Snapshot], lanes: Sequence[Lane], trails: Sequence[Sequence[Snapshot]],
                  fields: Sequence[tuple[np.ndarray, np.ndarray, float] | None], reference=None,
                  lim: float = POINTS_LIM, row_height: int = 360) -> Figure:
    """Per lane a row: [x_t, its trails and the field] [predicted x0 over the data]; fixed equal axes.

    trails: per lane the recent snapshots (oldest first); fields: per lane (grid points (G, 2),
    eps at them (G, 2), grid spacing) or None; reference: optional (M, 2) data points.
    """
    nrows = len(lanes)
    data, annotations = [], []
    lay = _layout(row_height * nrows, margin=dict(l=36, r=8, t=30, b=24))
    gap_y = 0.16 / max(nrows, 1)
    h = (1 - gap_y * (nrows - 1)) / nrows
    rng = [-lim, lim]
    for r, (lane, s) in enumerate(zip(lanes, frame)):
        color = PALETTE[r % len(PALETTE)]
        y_dom = [1 - (r + 1) * h - r * gap_y, 1 - r * h - r * gap_y]
        for c in range(2):
            ax = 2 * r + c + 1
            suffix = "" if ax == 1 else str(ax)
            x_dom = [0.0, 0.485] if c == 0 else [0.515, 1.0]
            lay[f"xaxis{suffix}"] = _axis(domain=x_dom, range=rng, anchor=f"y{suffix}", constrain="domain")
            lay[f"yaxis{suffix}"] = _axis(domain=y_dom, range=rng, anchor=f"x{suffix}", scaleanchor=f"x{suffix}",
                                          scaleratio=1, constrain="domain")
            xref, yref = f"x{suffix}", f"y{suffix}"
            if c == 0:
                title = lane_title(lane, s) + (": the samples x_0" if s.done else "")
            else:
                title = "predicted x0 (grey: data)"
            annotations.append(dict(text=title, x=sum(x_dom) / 2, y=y_dom[1], xref="paper", yref="paper",
                                    yanchor="bottom", showarrow=False, font=dict(size=11)))
            if c == 0:
                fld = fields[r] if fields else None
                if fld is not None:
                    starts, ends = field_arrows(fld[0], fld[1], fld[2])
                    xs, ys = _segments(starts, ends)
                    tip = [0, 7, 0] * len(starts)
                    data.append(dict(type="scatter", mode="lines+markers", x=xs, y=ys, xaxis=xref, yaxis=yref,
                                     name="-eps field", hoverinfo="skip", line=dict(color=FIELD_COLOR, width=1),
                                     marker=dict(symbol="arrow", angleref="previous", size=tip, color=FIELD_COLOR)))
                tx, ty = _trail_xy(trails[r] if trails else [])
                if tx:
                    data.append(dict(type="scatter", mode="lines", x=tx, y=ty, xaxis=xref, yaxis=yref, name="trails",
                                     hoverinfo="skip", line=dict(color=color, width=1), opacity=0.35))
                p = _f32(s.x_t[:MAX_POINTS])
                data.append(dict(type="scatter", mode="markers", x=_num(p[:, 0], 3), y=_num(p[:, 1], 3),
                                 xaxis=xref, yaxis=yref, name="x_t", marker=dict(size=4, color=color, opacity=0.8)))
            else:
                if reference is not None:
                    ref = _f32(reference)[:MAX_POINTS]
                    data.append(dict(type="scatter", mode="markers", x=_num(ref[:, 0], 3), y=_num(ref[:, 1], 3),
                                     xaxis=xref, yaxis=yref, name="data", hoverinfo="skip",
                                     marker=dict(size=3, color=render.GREY, opacity=0.35)))
                p = _f32(s.x0[:MAX_POINTS])
                data.append(dict(type="scatter", mode="markers", x=_num(p[:, 0], 3), y=_num(p[:, 1], 3),
                                 xaxis=xref, yaxis=yref, name="predicted x0",
                                 marker=dict(size=4, color=X0_COLOR, opacity=0.75)))
    lay["annotations"] = annotations
    return Figure(data, lay)


# --- signals: plotly --------------------------------------------------------------------------

SIGNAL_PANELS = (("x_t", "x_t", SIGNAL_LIM), ("predicted x0", "x0", 1.5), ("predicted noise eps", "eps", SIGNAL_LIM))


def signal_figure(frame: Sequence[Snapshot], lanes: Sequence[Lane], max_lines: int = 4,
                  row_height: int = 250) -> Figure:
    """Per lane a row of three line plots: x_t | predicted x0 | predicted eps, first `max_lines` samples."""
    nrows = len(lanes)
    data, annotations = [], []
    lay = _layout(row_height * nrows, margin=dict(l=40, r=8, t=30, b=24))
    gap_y = 0.12 / max(nrows, 1)
    h = (1 - gap_y * (nrows - 1)) / nrows
    width, gap_x = (1 - 2 * 0.03) / 3, 0.03
    for r, (lane, s) in enumerate(zip(lanes, frame)):
        y_dom = [1 - (r + 1) * h - r * gap_y, 1 - r * h - r * gap_y]
        for c, (label, attr, ylim) in enumerate(SIGNAL_PANELS):
            ax = 3 * r + c + 1
            suffix = "" if ax == 1 else str(ax)
            x_dom = [c * (width + gap_x), c * (width + gap_x) + width]
            lay[f"xaxis{suffix}"] = _axis(domain=x_dom, anchor=f"y{suffix}", showticklabels=False)
            lay[f"yaxis{suffix}"] = _axis(domain=y_dom, range=[-ylim, ylim], anchor=f"x{suffix}")
            if c == 0:
                title = f"{lane_title(lane, s)}: {'x_0' if s.done else label}"
            else:
                title = label
            annotations.append(dict(text=title, x=x_dom[0], xanchor="left", y=y_dom[1], xref="paper", yref="paper",
                                    yanchor="bottom", showarrow=False, font=dict(size=12)))
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
    run, so it is drawn once (1,200 dots were most of a frame's drawing time) and pasted after."""
    ref = _f32(reference)[:MAX_POINTS]
    key = (ref.shape, hash(ref.tobytes()), size, lim)
    panel = _REFERENCE_PANELS.get(key)
    if panel is None:
        panel = Image.new("RGB", (size + 1, size + 1), "white")
        draw = ImageDraw.Draw(panel)
        _dots(draw, _Panel(draw, (0, 0, size, size), (-lim, lim), (-lim, lim)), ref, _mix(render.GREY, 0.5),
              radius=1.2)
        if len(_REFERENCE_PANELS) >= 8:
            _REFERENCE_PANELS.pop(next(iter(_REFERENCE_PANELS)))
        _REFERENCE_PANELS[key] = panel
    return panel


def points_raster(frame: Sequence[Snapshot], lanes: Sequence[Lane], trails, fields, reference=None,
                  lim: float = POINTS_LIM, size: int = 300) -> np.ndarray:
    """The same picture as `points_figure`, drawn with Pillow: (H, W, 3) uint8."""
    pad, cap = 8, PLOT_FONT + 10
    w = 2 * size + 3 * pad
    h = len(lanes) * (size + cap + pad) + pad
    canvas = Image.new("RGB", (w, h), "white")
    draw = ImageDraw.Draw(canvas)
    font = _font(PLOT_FONT)
    for r, (lane, s) in enumerate(zip(lanes, frame)):
        color = PALETTE[r % len(PALETTE)]
        top = pad + r * (size + cap + pad)
        for c in range(2):
            left = pad + c * (size + pad)
            title = lane_title(lane, s) if c == 0 else "predicted x0 (grey: data)"
            draw.text((left, top + 3), title, fill="#111827", font=font)
            panel = _Panel(draw, (left, top + cap, left + size, top + cap + size), (-lim, lim), (-lim, lim))
            if c == 0:
                fld = fields[r] if fields else None
                if fld is not None:
                    starts, ends = field_arrows(fld[0], fld[1], fld[2])
                    a, b = panel.px(starts), panel.px(ends)
                    for p, q in zip(a, b):
                        _arrow(draw, p, q, (100, 116, 139))
                hist = trails[r] if trails else []
                if len(hist) >= 2:
                    path = panel.px(np.stack([_f32(x.x_t[:MAX_TRAILS]) for x in hist], axis=1))
                    faint = _mix(color, 0.35)
                    for line in path:
                        ok = panel.inside(line).all()
                        if ok:
                            draw.line([tuple(p) for p in line], fill=faint, width=1)
                _dots(draw, panel, _f32(s.x_t[:MAX_POINTS]), _rgb(color))
            else:
                if reference is not None:
                    canvas.paste(_reference_panel(reference, size, lim), (left, top + cap))
                _dots(draw, panel, _f32(s.x0[:MAX_POINTS]), _rgb(X0_COLOR))
    return np.asarray(canvas)


def _arrow(draw, p: np.ndarray, q: np.ndarray, fill, head: float = 4.0) -> None:
    """A line p -> q with a small filled head at q (pixel coordinates)."""
    d = q - p
    length = float(np.hypot(*d))
    draw.line([tuple(p), tuple(q)], fill=fill, width=1)
    if length < 1.0:
        return
    u = d / length
    side = np.array([-u[1], u[0]])
    h = min(head, 0.6 * length)
    base = q - u * h
    draw.polygon([tuple(q), tuple(base + side * h * 0.5), tuple(base - side * h * 0.5)], fill=fill)


def _dots(draw, panel: _Panel, pts: np.ndarray, fill, radius: float = 2.0) -> None:
    p = panel.px(pts)
    for x, y in p[panel.inside(p) & np.isfinite(p).all(axis=-1)]:
        draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=fill)


def signal_raster(frame: Sequence[Snapshot], lanes: Sequence[Lane], max_lines: int = 4,
                  size: tuple[int, int] = (300, 170)) -> np.ndarray:
    """The same picture as `signal_figure`, drawn with Pillow: (H, W, 3) uint8."""
    pw, ph = size
    pad, cap = 8, PLOT_FONT + 10
    w = 3 * pw + 4 * pad
    h = len(lanes) * (ph + cap + pad) + pad
    canvas = Image.new("RGB", (w, h), "white")
    draw = ImageDraw.Draw(canvas)
    font = _font(PLOT_FONT)
    for r, (lane, s) in enumerate(zip(lanes, frame)):
        top = pad + r * (ph + cap + pad)
        for c, (label, attr, ylim) in enumerate(SIGNAL_PANELS):
            left = pad + c * (pw + pad)
            title = f"{lane_title(lane, s)}" if c == 0 else label
            draw.text((left, top + 3), title, fill="#111827", font=font)
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


def _even_canvas(frames: Iterable[np.ndarray], multiple: int) -> list[np.ndarray]:
    """Pad every frame (white) to one size whose sides are multiples of `multiple` (video codecs want that)."""
    frames = [f if f.ndim == 3 else np.repeat(f[..., None], 3, axis=2) for f in frames]
    if not frames:
        raise ValueError("no frames to export")
    hmax = max(f.shape[0] for f in frames)
    wmax = max(f.shape[1] for f in frames)
    hh = math.ceil(hmax / multiple) * multiple
    ww = math.ceil(wmax / multiple) * multiple
    return [np.pad(f, ((0, hh - f.shape[0]), (0, ww - f.shape[1]), (0, 0)), constant_values=255) for f in frames]


def export(frames: Sequence[np.ndarray], path: str | Path, fps: float = 15.0, hold_last: float = 1.0) -> Path:
    """Write RGB uint8 frames (H, W, 3) to `path` (.gif or .mp4); the last frame is held `hold_last` seconds."""
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"export format must be one of {', '.join(EXPORT_FORMATS)}, got {path.suffix!r}")
    if not 1 <= fps <= 60:
        raise ValueError(f"fps must be between 1 and 60, got {fps}")
    frames = list(frames)
    if not frames:
        raise ValueError("no frames to export")
    held = int(round(hold_last * fps))
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "gif":
        # Fast octree quantisation: median cut was 85% of a GIF export (about 0.25 s a frame for the
        # shapes model, 20x octree's cost) for a little less colour error. The held last frame is
        # quantised once and repeated.
        pil = [Image.fromarray(f).quantize(colors=255, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
               for f in _even_canvas(frames, 1)]
        pil += [pil[-1]] * held
        # GIF delays are whole hundredths of a second; Pillow takes milliseconds.
        pil[0].save(path, save_all=True, append_images=pil[1:], duration=int(round(1000 / fps)), loop=0,
                    optimize=False, disposal=1)
    else:
        import imageio.v2 as imageio

        frames = _even_canvas(frames, 16)  # H.264 in yuv420p needs even sides; 16 avoids ffmpeg's resize warning
        frames += [frames[-1]] * held
        # x264's "veryfast" preset: the default ("medium") spent most of an export encoding
        with imageio.get_writer(path, format="FFMPEG", mode="I", fps=fps, codec="libx264", quality=7,
                                pixelformat="yuv420p", macro_block_size=16,
                                output_params=["-preset", "veryfast"]) as writer:
            for f in frames:
                writer.append_data(f)
    return path
