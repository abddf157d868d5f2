"""Tensors to images and plotly figures, in one place.

Images come back as uint8 numpy arrays (H, W, 3) or (H, W); gr.Image encodes them.
Figures are `Figure` objects: plain plotly dicts ({"data": [...], "layout": {...}}) that gr.Plot
renders through their `to_json()`. Building them as dicts rather than `plotly.graph_objects`
skips plotly's property validation, which costs ~10 ms per figure: too slow for views that follow
a slider while it is dragged. `Figure.to_plotly()` gives the validated object when wanted.

Sections: images, figure plumbing, points & signals, schedules, histograms, step encoding.
"""
from __future__ import annotations

import functools

import json
import math
from typing import Iterable, Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

# A qualitative palette that stays readable on a projector (plotly's D3 order, slightly deepened).
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf")
GREY = "#9ca3af"
PLOT_HEIGHT = 260


# --- images ---------------------------------------------------------------------------------

def _np(x) -> np.ndarray:
    if torch.is_tensor(x):
        return x.detach().to("cpu", torch.float32).numpy()
    return np.asarray(x, dtype=np.float32)


def to_uint8(x, lo: float = -1.0, hi: float = 1.0) -> np.ndarray:
    """One image (C, H, W) or (H, W) with values in [lo, hi] -> uint8 (H, W, 3) or (H, W); clipped."""
    a = _np(x)
    if a.ndim == 3:
        if a.shape[0] not in (1, 3):
            raise ValueError(f"expected 1 or 3 channels first, got shape {a.shape}")
        a = a[0] if a.shape[0] == 1 else a.transpose(1, 2, 0)
    elif a.ndim != 2:
        raise ValueError(f"expected an image of shape (C, H, W) or (H, W), got {a.shape}")
    scaled = (a - lo) * (255.0 / (hi - lo))
    return np.clip(scaled + 0.5, 0, 255).astype(np.uint8)


def upscale(img: np.ndarray, min_size: int = 256) -> np.ndarray:
    """Nearest-neighbour upscaling by a whole factor until the longer side reaches min_size.

    Tiny images (8x8 digits) would otherwise be smoothed into blur by the browser.
    """
    k = max(1, min_size // max(img.shape[0], img.shape[1]))
    if k == 1:
        return img
    return img.repeat(k, axis=0).repeat(k, axis=1)


def image(x, min_size: int = 256) -> np.ndarray:
    """A data image in [-1, 1] (C, H, W) -> displayable uint8, upscaled if tiny."""
    return upscale(to_uint8(x), min_size)


def signed_image(x, limit: float = 3.0, min_size: int = 256) -> np.ndarray:
    """A signed tensor such as noise eps ~ N(0, 1), mapped [-limit, limit] -> [0, 255] (0 is mid-grey)."""
    return upscale(to_uint8(x, -limit, limit), min_size)


def grid(batch, nrow: int | None = None, pad: int = 2, lo: float = -1.0, hi: float = 1.0,
         min_size: int = 256, gap: int = 255) -> np.ndarray:
    """A batch (B, C, H, W) -> one uint8 image laid out in rows of `nrow` (default: near-square).

    Tiles are enlarged by a whole factor until a row is at least `min_size` px wide, so a grid of
    32x32 images shows as large as one of 8x8 digits. gap: the grey level between tiles.
    """
    a = _np(batch)
    if a.ndim != 4:
        raise ValueError(f"expected a batch of shape (B, C, H, W), got {a.shape}")
    b, _, h, w = a.shape
    nrow = nrow or math.ceil(math.sqrt(b))
    ncol_rows = math.ceil(b / nrow)
    k = max(1, math.ceil(min_size / (nrow * max(h, w))))
    tiles = [upscale(to_uint8(a[i], lo, hi), k * max(h, w)) for i in range(b)]
    th, tw = tiles[0].shape[:2]
    shape = (ncol_rows * (th + pad) + pad, nrow * (tw + pad) + pad) + tiles[0].shape[2:]
    out = np.full(shape, gap, dtype=np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, nrow)
        out[pad + r * (th + pad): pad + r * (th + pad) + th, pad + c * (tw + pad): pad + c * (tw + pad) + tw] = tile
    return out


@functools.lru_cache(maxsize=16)
def _font(size: int):
    """Pillow's built-in font at `size` px (made once per size: loading it cost a few ms per frame)."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow built without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _resize(img: np.ndarray, size: int) -> np.ndarray:
    """Longer side to `size`: nearest-neighbour when enlarging (keeps pixels crisp), Lanczos when shrinking."""
    h, w = img.shape[:2]
    k = size / max(h, w)
    if k == 1:
        return img
    method = Image.Resampling.NEAREST if k > 1 else Image.Resampling.LANCZOS
    return np.asarray(Image.fromarray(img).resize((max(1, round(w * k)), max(1, round(h * k))), method))


# Ground and text of the chrome drawn around pictures (gaps, captions, titles): on a light page, and on a
# dark one (the high-contrast dark theme), where a white band around every picture would glare.
CHROME = {False: ("white", "#374151", "#111827"), True: ("black", "#d1d5db", "#f9fafb")}  # ground, caption, title
GRID_GAP = {False: 255, True: 72}  # between the tiles of a grid: grey on the dark ground parts black tiles too


def labelled_strip(frames: Sequence[np.ndarray], labels: Sequence[str], size: int | None = None, pad: int = 6,
                   font_size: int = 15, dark: bool = False) -> np.ndarray:
    """uint8 frames of one size side by side, each with a caption underneath -> one RGB uint8 image.

    size: resize every frame so its longer side is `size` px (None keeps them as they are).
    dark: black ground and light captions (`CHROME`) instead of white and dark.
    """
    if len(frames) != len(labels) or not frames:
        raise ValueError(f"need one label per frame and at least one frame, got {len(frames)} and {len(labels)}")
    rgb = [f if f.ndim == 3 else np.repeat(f[..., None], 3, axis=2) for f in frames]
    if size:
        rgb = [_resize(f, size) for f in rgb]
    h, w = rgb[0].shape[:2]
    band = _caption_band(tuple(labels), w, pad, font_size, bool(dark))
    out = np.full((h + pad + band.shape[0], band.shape[1], 3), 0 if dark else 255, dtype=np.uint8)
    for i, f in enumerate(rgb):
        x = pad + i * (w + pad)
        out[pad:pad + h, x:x + w] = f
    out[pad + h:] = band
    return out


@functools.lru_cache(maxsize=64)
def _caption_band(labels: tuple[str, ...], w: int, pad: int, font_size: int, dark: bool = False) -> np.ndarray:
    """The strip under `labelled_strip`'s frames with their captions centred: the same for every frame
    of an animation, so it is drawn once."""
    cap = font_size + 8
    ground, ink, _ = CHROME[dark]
    band = Image.new("RGB", (len(labels) * (w + pad) + pad, pad + cap), ground)
    draw = ImageDraw.Draw(band)
    font = _font(font_size)
    for i, label in enumerate(labels):
        x = pad + i * (w + pad)
        tw = draw.textlength(label, font=font)
        draw.text((x + (w - tw) / 2, 3), label, fill=ink, font=font)
    return np.asarray(band)


# --- figure plumbing ------------------------------------------------------------------------

class Figure:
    """A plotly figure kept as plain dicts; gr.Plot calls `to_json()`."""

    def __init__(self, data: list[dict], layout: dict, config: dict | None = None):
        self.data = data
        self.layout = layout
        self.config = config

    def to_dict(self) -> dict:
        d = {"data": self.data, "layout": self.layout}
        if self.config:
            d["config"] = self.config
        return d

    def to_json(self) -> str:
        # allow_nan=False: a NaN or inf would produce JSON the browser refuses; _num maps them to null.
        return json.dumps(self.to_dict(), allow_nan=False, separators=(",", ":"))

    def with_title(self, text: str) -> "Figure":
        """Set the title (top left, small) and make room for it; returns self."""
        self.layout["title"] = dict(text=text, x=0.02, xanchor="left", y=0.98, yanchor="top", font=dict(size=13))
        margin = self.layout.get("margin", {})
        self.layout["margin"] = dict(margin, t=max(36, margin.get("t", 0)))
        return self

    def to_plotly(self):
        """The validated plotly.graph_objects.Figure (slow; for tests and export)."""
        import plotly.graph_objects as go

        return go.Figure(self.to_dict())


def _num(values, digits: int = 4) -> list:
    """Numbers -> a JSON-safe list with `digits` significant digits; NaN and inf become null (a gap)."""
    a = np.asarray(_np(values) if torch.is_tensor(values) else values, dtype=np.float64).ravel()
    finite = np.isfinite(a)
    out = np.where(finite, a, 0.0)
    # Round to significant digits in one vectorised pass: keeps the JSON small for 1000-point curves.
    mag = np.floor(np.log10(np.abs(np.where(out == 0, 1.0, out))))
    scale = 10.0 ** (digits - 1 - mag)
    out = np.round(out * scale) / scale
    return [float(v) if ok else None for v, ok in zip(out.tolist(), finite.tolist())]


def _axis(**kw) -> dict:
    base = dict(gridcolor="rgba(120,120,120,0.18)", zeroline=False, linecolor="rgba(120,120,120,0.5)",
                ticks="outside", tickcolor="rgba(120,120,120,0.5)", automargin=True)
    base.update(kw)
    return base


def _layout(height: int = PLOT_HEIGHT, title: str | None = None, legend: bool = False, **kw) -> dict:
    """A figure's layout. A legend lies in a row above the plot, each entry 140 px wide: the presenter
    view enlarges the text to 20 px after plotly has placed it, and entries spaced by their own text
    width would then overlap; where the row is too narrow for all of them, plotly wraps them onto more
    rows. A title above a legend gets a row of its own for the same reason."""
    lay = dict(
        height=height,
        margin=dict(l=52, r=16, t=(68 if legend else 36) if title else 14, b=40),
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
        font=dict(family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size=12, color="#4b5563"),
        showlegend=legend,
        legend=dict(orientation="h", x=0, y=1.02, xanchor="left", yanchor="bottom", bgcolor="rgba(0,0,0,0)",
                    entrywidthmode="pixels", entrywidth=140),
        hovermode="closest",
        xaxis=_axis(),
        yaxis=_axis(),
    )
    lay.update(kw)
    if title:
        lay["title"] = dict(text=title, x=0.02, xanchor="left", y=0.98, yanchor="top", font=dict(size=13))
    return lay


# --- points and signals ---------------------------------------------------------------------

MAX_POINTS = 1500  # an SVG scatter of more points slows the browser without showing more


def scatter(points, reference=None, lim: float = 3.5, title: str | None = None,
            height: int = 300, color: str = PALETTE[0]) -> Figure:
    """2-D points (N, 2) on fixed, equal axes [-lim, lim]^2, so motion between frames is visible.

    reference: optional (M, 2) points drawn faint behind (e.g. the clean data x_0).
    """
    data = []
    if reference is not None:
        r = _np(reference)[:MAX_POINTS]
        data.append(dict(type="scatter", mode="markers", x=_num(r[:, 0]), y=_num(r[:, 1]), name="x₀",
                         marker=dict(size=3, color=GREY, opacity=0.45), hoverinfo="skip"))
    p = _np(points)[:MAX_POINTS]
    if p.ndim != 2 or p.shape[1] != 2:
        raise ValueError(f"expected points of shape (N, 2), got {p.shape}")
    data.append(dict(type="scatter", mode="markers", x=_num(p[:, 0]), y=_num(p[:, 1]), name="points",
                     marker=dict(size=4, color=color, opacity=0.75)))
    rng = [-lim, lim]
    return Figure(data, _layout(height, title,
                                xaxis=_axis(range=rng, constrain="domain"),
                                yaxis=_axis(range=rng, scaleanchor="x", scaleratio=1, constrain="domain"),
                                margin=dict(l=36, r=8, t=36 if title else 10, b=28)))


def signals(x, reference=None, ylim: float = 3.5, title: str | None = None, height: int = 260,
            max_lines: int = 8) -> Figure:
    """Sequences (N, 1, L), (N, L) or (L,) as line plots on a fixed y range [-ylim, ylim].

    reference: optional sequences of the same layout drawn faint behind (e.g. x_0).
    """
    def rows(a):
        a = _np(a)
        return a.reshape(-1, a.shape[-1])[:max_lines]

    data = []
    if reference is not None:
        for r in rows(reference):
            data.append(dict(type="scatter", mode="lines", y=_num(r), line=dict(color=GREY, width=1.5),
                             opacity=0.7, hoverinfo="skip", name="x₀"))
    for i, r in enumerate(rows(x)):
        data.append(dict(type="scatter", mode="lines", y=_num(r), name=f"#{i}",
                         line=dict(color=PALETTE[i % len(PALETTE)], width=1.8)))
    return Figure(data, _layout(height, title, xaxis=_axis(title=dict(text="position")),
                                yaxis=_axis(range=[-ylim, ylim])))


def panels(kind: str, items: Sequence, titles: Sequence[str], reference=None, height: int = 230) -> Figure:
    """Several point clouds or signals side by side in one figure (filmstrips, comparisons).

    kind: "points" or "signal"; items: one (N, 2) or (N, 1, L) tensor per panel.
    """
    if kind not in ("points", "signal"):
        raise ValueError(f"panels draw 'points' or 'signal' data, got {kind!r}")
    n = len(items)
    gap = 0.02
    width = (1 - gap * (n - 1)) / n
    data, lay = [], _layout(height, margin=dict(l=30, r=8, t=28, b=24))
    lay["annotations"] = []
    for i, (item, title) in enumerate(zip(items, titles)):
        ax = "" if i == 0 else str(i + 1)
        dom = [i * (width + gap), i * (width + gap) + width]
        if kind == "points":
            fig = scatter(item, reference)
            lim = fig.layout["xaxis"]["range"]
            lay[f"xaxis{ax}"] = _axis(domain=dom, range=lim, showticklabels=False, anchor=f"y{ax}")
            lay[f"yaxis{ax}"] = _axis(range=lim, showticklabels=i == 0, anchor=f"x{ax}")
        else:
            fig = signals(item, reference, max_lines=3)
            lay[f"xaxis{ax}"] = _axis(domain=dom, showticklabels=False, anchor=f"y{ax}")
            lay[f"yaxis{ax}"] = _axis(range=fig.layout["yaxis"]["range"], showticklabels=i == 0, anchor=f"x{ax}")
        for trace in fig.data:
            trace.update(xaxis=f"x{ax}", yaxis=f"y{ax}")
            if kind == "points":
                trace["marker"] = dict(trace["marker"], size=2.5)
            data.append(trace)
        lay["annotations"].append(dict(text=title, x=(dom[0] + dom[1]) / 2, y=1.0, xref="paper", yref="paper",
                                       yanchor="bottom", showarrow=False, font=dict(size=12)))
    return Figure(data, lay)


# --- schedules ------------------------------------------------------------------------------

def _every(n: int, most: int = 400) -> np.ndarray:
    """Indices 0..n-1 thinned to at most `most`, always keeping the last."""
    if n <= most:
        return np.arange(n)
    return np.unique(np.r_[np.linspace(0, n - 1, most).round().astype(int), n - 1])


def schedule_curves(curves: Sequence[tuple[str, dict]], t: int | None = None, height: int = PLOT_HEIGHT,
                    title: str | None = None) -> Figure:
    """alpha-bar(t) (left axis, linear) and SNR(t) (right axis, log) for one or more schedules.

    curves: (name, schedule.to_numpy()) pairs; t: the current timestep, marked on every curve and
    by a dashed line (layout.shapes[0]). SNR(0) is infinite (clean data), so the SNR curve starts
    at t = 1 and its marker is empty at t = 0. The legend names each schedule once: its colour is
    its solid alpha-bar and its dotted SNR (the axis titles say which is which). It lies inside the plot,
    at its top right, where no curve of any schedule here passes (after 0.6 T every alpha-bar is below
    0.35 and every SNR below 10^-0.3, the lower half of both axes): above the plot, a legend at the
    presenter view's 20 px took three rows of a chart only 250 px high, the curves 100 px. (The presenter
    view hides it and colours the compared pictures' labels instead: at 20 px its text ran out of the plot.)
    """
    data = []
    T = 1
    for i, (name, c) in enumerate(curves):
        color = PALETTE[i % len(PALETTE)]
        ts = np.asarray(c["t"])
        T = max(T, int(ts[-1]))
        idx = _every(len(ts))
        data.append(dict(type="scatter", mode="lines", x=ts[idx].tolist(), y=_num(c["alpha_bar"][idx]),
                         name=name, legendgroup=name, line=dict(color=color, width=2.2)))
        idx1 = np.unique(np.r_[1, idx[idx > 0]]) if len(ts) > 1 else idx[:0]  # SNR(0) is infinite
        data.append(dict(type="scatter", mode="lines", x=ts[idx1].tolist(), y=_num(c["snr"][idx1]),
                         name=f"SNR {name}", legendgroup=name, showlegend=False, yaxis="y2",
                         line=dict(color=color, width=1.6, dash="dot")))
        if t is not None:
            # meta.follows names the curve a marker sits on, so the browser can slide it along (MARKERS_JS).
            curve = len(data) - 2
            data.append(dict(type="scatter", mode="markers", x=[t], y=_num([c["alpha_bar"][t]]), showlegend=False,
                             marker=dict(size=10, color=color, line=dict(color="white", width=1.5)),
                             meta=dict(follows=curve),
                             hovertemplate=f"{name}: t=%{{x}}, ᾱ=%{{y:.4f}}<extra></extra>"))
            data.append(dict(type="scatter", mode="markers", x=[t], y=_num([c["snr"][t]]), yaxis="y2",
                             showlegend=False, marker=dict(size=8, color=color, symbol="diamond"),
                             meta=dict(follows=curve + 1),
                             hovertemplate=f"{name}: t=%{{x}}, SNR=%{{y:.3g}}<extra></extra>"))
    lay = _layout(height, title, legend=True,
                  xaxis=_axis(range=[0, T], title=dict(text="t")),
                  # the titles stand off from the tick labels by more than plotly's own gap: the presenter
                  # view enlarges the labels to 20 px after plotly has placed the titles beside them
                  yaxis=_axis(range=[0, 1.02], title=dict(text="ᾱ (solid)", standoff=18)),
                  yaxis2=_axis(type="log", overlaying="y", side="right", showgrid=False,
                               range=[-5, 5], title=dict(text="SNR (dotted, log)", standoff=22),
                               exponentformat="power"),
                  margin=dict(l=52, r=58, t=36 if title else 14, b=40))
    lay["legend"] = dict(orientation="v", x=0.98, y=0.98, xanchor="right", yanchor="top", bgcolor="rgba(0,0,0,0)")
    if t is not None:
        lay["shapes"] = [dict(type="line", x0=t, x1=t, y0=0, y1=1, yref="paper",
                              line=dict(color="rgba(100,100,100,0.5)", width=1, dash="dash"))]
    return Figure(data, lay)


# Moves the t markers of schedule_curves figures in the browser, with no round trip to the server:
# each marker trace's meta.follows names its curve; its y is interpolated on that curve at t.
# The redraw waits until the browser is idle (at most 150 ms) and only the latest t is drawn, so
# it never delays the x_t image arriving at the same moment. Returns t, so an event can also pass
# the value on to an output.
MARKERS_JS = """
(t, ...rest) => {
  const at = (xs, ys, x) => {
    if (!xs || !xs.length || x < xs[0] || x > xs[xs.length - 1]) return null;
    let lo = 0, hi = xs.length - 1;
    while (hi - lo > 1) { const mid = (lo + hi) >> 1; if (xs[mid] <= x) lo = mid; else hi = mid; }
    if (xs[hi] === xs[lo] || ys[lo] === null || ys[hi] === null) return ys[lo];
    return ys[lo] + (ys[hi] - ys[lo]) * (x - xs[lo]) / (xs[hi] - xs[lo]);
  };
  const move = () => {
    const P = window.Plotly, t = window.__markersT;
    window.__markersPending = false;
    for (const gd of document.querySelectorAll(SELECTORS)) {
      if (!P || !gd.data || !gd.layout || gd.offsetParent === null) continue;
      const idx = [], xs = [], ys = [];
      gd.data.forEach((tr, i) => {
        const f = tr.meta && tr.meta.follows;
        if (f === undefined || !gd.data[f]) return;
        idx.push(i); xs.push([t]); ys.push([at(gd.data[f].x, gd.data[f].y, t)]);
      });
      if (!idx.length) continue;
      try { P.update(gd, {x: xs, y: ys}, {"shapes[0].x0": t, "shapes[0].x1": t}, idx); } catch (e) {}
    }
  };
  window.__markersT = t;
  if (!window.__markersPending) {
    window.__markersPending = true;
    if (window.requestIdleCallback) requestIdleCallback(move, {timeout: 150}); else setTimeout(move, 30);
  }
  // A plot drawn after the last move (on a busy machine its first drawing can come after a quick drag)
  // shows the server's figure with its marker at an older t. Twice a second, while the slider still
  // holds the t last moved to, a marker elsewhere is moved there; a t set by the server (a link, a
  // lesson) moves the slider as well, so its figures are left alone.
  if (!window.__markersWatch) {
    window.__markersWatch = setInterval(() => {
      const box = document.querySelector(SLIDER), t = window.__markersT;
      if (window.__markersPending || !box || Number(box.value) !== t) return;
      for (const gd of document.querySelectorAll(SELECTORS)) {
        if (!gd.data || gd.offsetParent === null) continue;
        const marker = gd.data.find((tr) => tr.meta && tr.meta.follows !== undefined);
        if (marker && marker.x && marker.x[0] !== t) { window.__markersPending = true; move(); return; }
      }
    }, 500);
  }
  return t;
}
"""


def markers_js(*elem_ids: str, slider: str = "tslider") -> str:
    """MARKERS_JS for the schedule_curves plots inside the given elem_ids, following the gr.Slider
    with elem_id `slider`."""
    selectors = ", ".join(f"#{e} .js-plotly-plot" for e in elem_ids)
    box = f"#{slider} input[type=number]"
    return MARKERS_JS.replace("SELECTORS", json.dumps(selectors)).replace("SLIDER", json.dumps(box))


# --- histograms -----------------------------------------------------------------------------

def normal_pdf(x: np.ndarray, mean: float = 0.0, std: float = 1.0) -> np.ndarray:
    """The Gaussian density, drawn as the reference curve under histograms."""
    return np.exp(-0.5 * ((x - mean) / std) ** 2) / (std * math.sqrt(2 * math.pi))


def histogram(series: dict[str, object] | object, bins: int | None = None, lim: float = 4.0, normal: bool = True,
              height: int = PLOT_HEIGHT, title: str | None = None) -> Figure:
    """Density histogram(s) of values on [-lim, lim] against the N(0, 1) density.

    series: a tensor/array, or {name: values} to overlay several (e.g. chain vs closed form).
    The first series is drawn as bars, the others as step outlines over them. bins: None picks
    1.2 sqrt(n) between 16 and 72, so a small sample (a signal, a point cloud) is not all spikes.
    Values outside [-lim, lim] are counted in the edge bins so the total mass stays 1.
    """
    if not isinstance(series, dict):
        series = {"values": series}
    if bins is None:
        bins = _bins(min(_np(v).size for v in series.values()))
    edges = np.linspace(-lim, lim, bins + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    width = edges[1] - edges[0]
    data, top = [], 0.45
    for i, (name, values) in enumerate(series.items()):
        dens = _density(values, bins, lim)
        top = max(top, float(dens.max()) if dens.size else 0.0)
        color = PALETTE[i % len(PALETTE)]
        if i == 0:  # the first series as bars, the others as outlines on top so both stay visible
            data.append(dict(type="bar", x=_num(centres), y=_num(dens), width=width, name=name,
                             marker=dict(color=color, line=dict(width=0)), opacity=0.7))
        else:
            data.append(dict(type="scatter", mode="lines", x=_num(centres), y=_num(dens), name=name,
                             line=dict(color=color, width=2, shape="hvh")))
    if normal:
        xs = np.linspace(-lim, lim, 161)
        data.append(dict(type="scatter", mode="lines", x=_num(xs), y=_num(normal_pdf(xs)), name="N(0, 1)",
                         line=dict(color="#6b7280", width=2, dash="dash"), hoverinfo="skip"))
    lay = _layout(height, title, legend=True, barmode="overlay", bargap=0,
                  xaxis=_axis(range=[-lim, lim], title=dict(text="value")),
                  yaxis=_axis(range=[0, _ceiling(top)], title=dict(text="density")),
                  margin=dict(l=52, r=16, t=68 if title else 30, b=40))  # title, then the legend
    return Figure(data, lay)


def _bins(n: int) -> int:
    return int(min(72, max(16, 1.2 * math.sqrt(n))))


def _density(values, bins: int, lim: float) -> np.ndarray:
    """The density of `values` (clipped to [-lim, lim], NaN left out) over `bins` equal bins, as
    np.histogram(..., density=True) gives it up to float rounding at the edges. Counted with
    torch.bincount: a quarter of numpy's time for 200,000 values, which matters for the Forward
    slider's histogram, drawn with each picture."""
    v = values if torch.is_tensor(values) else torch.from_numpy(np.asarray(values, dtype=np.float64))
    v = v.detach().reshape(-1)
    if not torch.isfinite(v.sum()):  # a NaN, or an inf (which the clip keeps): one cheap look first
        v = v[~torch.isnan(v)]
    index = v.clamp(-lim, lim).add_(lim).mul_(bins / (2 * lim)).long().clamp_(0, bins - 1)
    counts = torch.bincount(index, minlength=bins).double().cpu().numpy()
    total = counts.sum()
    return counts / (total * (2 * lim / bins)) if total else counts


def _ceiling(top: float) -> float:
    # A ceiling that only moves when the data needs it keeps the picture steady while dragging.
    return min(max(0.5, top * 1.08), 4.0)


def histogram_update(name: str, values, title: str, lim: float = 4.0) -> dict:
    """What changes in `histogram({name: values}, title=title)` when only the values do: the bars'
    heights and name, the title and the y range, as JSON for Plotly.update in the page (the Forward
    slider's frame route sends it with each picture, so the histogram follows without a Gradio event)."""
    dens = _density(values, _bins(_np(values).size), lim)
    top = max(0.45, float(dens.max()) if dens.size else 0.0)
    return {"y": _num(dens), "name": name, "title": title, "ceiling": _ceiling(top)}


# --- step encoding --------------------------------------------------------------------------

def step_encoding(emb, t: int, height: int = 230) -> Figure:
    """The sinusoidal encoding e(t) (dim,) as bars over its components: sines first, then cosines."""
    e = _np(emb).ravel()
    half = e.size // 2
    ks = np.arange(e.size)
    colors = [PALETTE[0]] * half + [PALETTE[4]] * (e.size - half)
    data = [dict(type="bar", x=ks.tolist(), y=_num(e), marker=dict(color=colors, line=dict(width=0)),
                 hovertemplate="component %{x}: %{y:.3f}<extra></extra>", name=f"e({t})")]
    lay = _layout(height, f"e(t) for t = {t}: sines (blue), then cosines (orange)",
                  xaxis=_axis(range=[-0.5, e.size - 0.5], title=dict(text="component k")),
                  yaxis=_axis(range=[-1.1, 1.1]), bargap=0.15)
    return Figure(data, lay)


def step_encoding_map(embs, ts, t: int | None = None, height: int = 270) -> Figure:
    """Encodings of many timesteps (K, dim) as a heatmap, one row per t in `ts` (K,); a line marks `t`."""
    e = _np(embs)
    z = [_num(row, 3) for row in e]
    data = [dict(type="heatmap", z=z, x=list(range(e.shape[1])), y=[int(v) for v in _np(ts).tolist()],
                 colorscale="RdBu", zmin=-1, zmax=1,
                 # three ticks: at the presenter view's 20 px five ran into each other on a short bar
                 colorbar=dict(thickness=10, len=0.85, outlinewidth=0, tickvals=[-1, 0, 1]),
                 hovertemplate="t=%{y}, component %{x}: %{z:.3f}<extra></extra>")]
    # the title names the rows' axis: at 20 px an axis title "t" lay over the tick labels
    lay = _layout(height, "e(t) for every t (one row per t)",
                  xaxis=_axis(title=dict(text="component k"), showgrid=False),
                  yaxis=_axis(showgrid=False), margin=dict(l=60, r=24, t=36, b=40))  # "1000" and "−1" at 20 px
    if t is not None:
        lay["shapes"] = [dict(type="line", x0=0, x1=1, xref="paper", y0=t, y1=t,
                              line=dict(color="#111827", width=2))]
    return Figure(data, lay)


def stat_rows(rows: Iterable[Sequence]) -> str:
    """A small Markdown table from rows whose first row is the header; floats get 4 decimals."""
    rows = [[f"{v:.4f}" if isinstance(v, float) else str(v) for v in r] for r in rows]
    head, *body = rows
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in body]
    return "\n".join(lines)
