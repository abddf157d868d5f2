"""Figures of training and evaluation: loss and learning-rate curves, the per-timestep loss map,
metric plots. Same plain-dict `render.Figure`s as the rest of the app (fast to build every second).

Inputs are plain lists from `jobs.TrainingJob.snapshot()` or from an evaluation's result dict.
"""
from __future__ import annotations

import math
import textwrap
from typing import Sequence

import numpy as np

from .render import GREY, PALETTE, Figure, _axis, _layout, _num

CHART_HEIGHT = 250
NOTE_WIDTH = 30  # characters per line of an empty chart's note: fits a quarter of a 1024-px-wide page


def empty(title: str, note: str, height: int = CHART_HEIGHT) -> Figure:
    """A chart with nothing to show yet: its title and a note in the middle, wrapped to fit a narrow chart."""
    lay = _layout(height, title, xaxis=_axis(visible=False), yaxis=_axis(visible=False))
    note = "<br>".join(textwrap.wrap(note, NOTE_WIDTH)) or note
    lay["annotations"] = [dict(text=note, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False,
                               font=dict(size=13, color=GREY))]
    return Figure([], lay)


MARKER_COLOUR = "rgba(217,39,40,0.7)"


def _marker_line(step: int | None) -> list[dict]:
    if step is None:
        return []
    return [dict(type="line", x0=step, x1=step, y0=0, y1=1, yref="paper",
                 line=dict(color=MARKER_COLOUR, width=1.5, dash="dot"))]


def _marker_label(step: int | None, last: int) -> list[dict]:
    """The dotted line's words at its top, on the side with more room: which samples are in view."""
    if step is None:
        return []
    right = step > last / 2  # the words to the left of a line in the right half
    return [dict(text="samples shown", x=step, y=1, xref="x", yref="paper", showarrow=False,
                 xanchor="right" if right else "left", yanchor="top", xshift=-4 if right else 4,
                 font=dict(size=11, color=MARKER_COLOUR), bgcolor="rgba(255,255,255,0.75)")]


def log_ticks(values) -> list[float] | None:
    """Tick values for a log axis over the positive finite `values`: 1-2-3-5 in each decade when the data
    span little more than a decade, fewer as they span more, so that labels never crowd each other at
    the presenter view's 20 px (plotly's own choice labels every digit of a short log axis: 0.2, 0.3, ...
    0.9, 1 in 290 px). None when there is nothing to span (plotly chooses)."""
    a = np.asarray(values, dtype=np.float64)
    a = a[np.isfinite(a) & (a > 0)]
    if a.size == 0:
        return None
    lo, hi = math.floor(math.log10(a.min())), math.ceil(math.log10(a.max()))
    span = math.log10(a.max() / a.min())
    mantissas = (1, 2, 3, 5) if span <= 1.3 else (1, 3) if span <= 2.5 else (1,)
    every = 1 if span <= 5 else 2
    ticks = [m * 10.0 ** e for e in range(lo, hi + 1) if (e - lo) % every == 0 for m in mantissas]
    inside = [t for t in ticks if a.min() <= t <= a.max()]
    if len(inside) < 2:  # a narrow band: the ticks either side of it as well
        below = [t for t in ticks if t < a.min()][-1:]
        above = [t for t in ticks if t > a.max()][:1]
        inside = below + inside + above
    return [float(f"{t:.3g}") for t in inside]


def _log_tick_values(values) -> dict:
    ticks = log_ticks(values)
    return {} if ticks is None else dict(tickmode="array", tickvals=ticks)


def loss_chart(loss: tuple[list, list], smoothed: tuple[list, list], marked: int | None = None,
               height: int = CHART_HEIGHT) -> Figure:
    """Training loss per step, raw (faint) and smoothed (bold), on a log axis; `marked` draws a
    dotted line at that step, labelled (the preview in view)."""
    steps, values = loss
    if not steps:
        return empty("Training loss", "no steps yet: press Start", height)
    # short legend names: each legend entry gets 30% of the chart's width, at 20 px in the presenter view
    data = [dict(type="scatter", mode="lines", x=list(steps), y=_num(values), name="each step",
                 line=dict(color="rgba(31,119,180,0.35)", width=1)),
            dict(type="scatter", mode="lines", x=list(smoothed[0]), y=_num(smoothed[1]), name="smoothed",
                 line=dict(color=PALETTE[0], width=2.4))]
    lay = _layout(height, "Training loss (log scale)", legend=True,
                  xaxis=_axis(title=dict(text="step"), rangemode="tozero"),
                  yaxis=_axis(type="log", tickformat=".2~g", **_log_tick_values(values)),
                  margin=dict(l=52, r=16, t=40, b=40))
    # two entries, each half the width: at the presenter view's 20 px an entry needs about 140 px
    lay["legend"].update(entrywidthmode="fraction", entrywidth=0.5)
    lay["shapes"] = _marker_line(marked)
    lay["annotations"] = _marker_label(marked, max(steps))
    lay["uirevision"] = "loss"  # keep a user's zoom while new points arrive
    return Figure(data, lay)


def lr_chart(lr: tuple[list, list], height: int = CHART_HEIGHT) -> Figure:
    """Learning rate per step (warm-up, then cosine decay)."""
    steps, values = lr
    if not steps:
        return empty("Learning rate", "the schedule appears once training runs", height)
    data = [dict(type="scatter", mode="lines", x=list(steps), y=_num(values), name="lr",
                 line=dict(color=PALETTE[2], width=2), hovertemplate="step %{x}: lr %{y:.3g}<extra></extra>")]
    lay = _layout(height, "Learning rate", xaxis=_axis(title=dict(text="step"), rangemode="tozero"),
                  yaxis=_axis(exponentformat="power", rangemode="tozero"), margin=dict(l=60, r=16, t=40, b=40))
    lay["uirevision"] = "lr"
    return Figure(data, lay)


def per_t_map(steps: Sequence[int], rows: Sequence[Sequence[float]], edges: Sequence[float] | None,
              height: int = CHART_HEIGHT + 30) -> Figure:
    """Running loss per timestep bin over training: x = step, y = t, colour = log10 MSE.

    rows: one list of bin means per recorded step (None/NaN where no t fell in the bin yet);
    edges: the bins' t edges (len = bins + 1).
    """
    if not steps or not rows or edges is None:
        return empty("Loss per timestep over training", "appears after the first steps", height)
    z = np.asarray([[np.nan if v is None else v for v in r] for r in rows], dtype=np.float64).T  # (bins, steps)
    with np.errstate(divide="ignore", invalid="ignore"):
        logz = np.log10(np.where(z > 0, z, np.nan))
    centres = [(a + b) / 2 for a, b in zip(edges[:-1], edges[1:])]
    data = [dict(type="heatmap", x=list(steps), y=_num(centres), z=[_num(r, 3) for r in logz],
                 colorscale="Viridis",
                 colorbar=dict(title=dict(text="log₁₀ MSE", side="right"), thickness=10, len=0.9, outlinewidth=0),
                 hovertemplate="step %{x}, t ≈ %{y:.0f}: log₁₀ MSE %{z:.2f}<extra></extra>")]
    lay = _layout(height, "Loss per timestep over training (brighter = higher)",
                  xaxis=_axis(title=dict(text="step"), showgrid=False),
                  yaxis=_axis(title=dict(text="t"), showgrid=False, range=[edges[0], edges[-1]]),
                  margin=dict(l=52, r=8, t=40, b=40))
    return Figure(data, lay)


def per_t_latest(rows: Sequence[Sequence[float]], edges: Sequence[float] | None, height: int = CHART_HEIGHT) -> Figure:
    """The most recent per-timestep loss as a line (low t: nearly clean input, high t: nearly noise)."""
    if not rows or edges is None:
        return empty("Loss per timestep now", "appears after the first steps", height)
    centres = [(a + b) / 2 for a, b in zip(edges[:-1], edges[1:])]
    last = [np.nan if v is None else v for v in rows[-1]]
    data = [dict(type="scatter", mode="lines+markers", x=_num(centres), y=_num(last), name="now",
                 line=dict(color=PALETTE[3], width=2), marker=dict(size=5))]
    if len(rows) > 4:
        first = [np.nan if v is None else v for v in rows[min(2, len(rows) - 1)]]
        data.insert(0, dict(type="scatter", mode="lines", x=_num(centres), y=_num(first), name="early",
                            line=dict(color=GREY, width=1.5, dash="dot")))
    shown = [v for d in data for v in d["y"] if v is not None]
    # the title names the lines (no legend: in the presenter view's short box a legend row at 20 px ran
    # into the title and took the plot's height) and what the y axis is (no axis title: the presenter
    # view enlarges the tick labels after plotly has placed them, and "0.01" ran into a "loss" beside it)
    title = "Loss per t: early (dotted) vs now" if len(data) > 1 else "Loss per timestep now"
    lay = _layout(height, title,
                  xaxis=_axis(title=dict(text="t"), range=[edges[0], edges[-1]]),
                  yaxis=_axis(type="log", tickformat=".2~g", **_log_tick_values(shown)),
                  margin=dict(l=52, r=16, t=36, b=40))
    return Figure(data, lay)


# --- evaluation -----------------------------------------------------------------------------

def mse_per_t(t: Sequence[float], mse: Sequence[float], low: Sequence[float] | None = None,
              high: Sequence[float] | None = None, label: str = "noise-prediction MSE",
              height: int = CHART_HEIGHT + 20, title: str | None = None, note: str = "") -> Figure:
    """A checkpoint's MSE against the timestep, with an optional band (e.g. a 90 % interval).
    title: the chart's own (default: '<label> per timestep'); note: said after the x axis's "t", where a
    narrow chart has more room than in its title (e.g. " · recorded, n = 512")."""
    data = []
    if low is not None and high is not None:
        data.append(dict(type="scatter", mode="lines", x=_num(list(t) + list(t)[::-1]),
                         y=_num(list(high) + list(low)[::-1]), fill="toself", fillcolor="rgba(31,119,180,0.15)",
                         line=dict(width=0), hoverinfo="skip", name="interval"))
    data.append(dict(type="scatter", mode="lines+markers", x=_num(t), y=_num(mse), name=label,
                     line=dict(color=PALETTE[0], width=2), marker=dict(size=5),
                     hovertemplate="t ≈ %{x:.0f}: %{y:.4g}<extra></extra>"))
    # the title says what y is, and the log ticks thin out as the values span more decades (log_ticks): at
    # the presenter view's 20 px an axis title and plotly's 1-2-5 ticks ran into each other
    shown = [v for v in [*mse, *(low or []), *(high or [])] if v is not None and math.isfinite(v) and v > 0]
    lay = _layout(height, title or f"{label} per timestep", xaxis=_axis(title=dict(text=f"t{note}")),
                  yaxis=_axis(type="log", tickformat=".2~g", **_log_tick_values(shown)),
                  margin=dict(l=72, r=28, t=40, b=40))  # room for "0.001" and the last "1000" at 20 px, bold
    return Figure(data, lay)


def metric_history(steps: Sequence[int], series: dict[str, Sequence[float | None]],
                   height: int = CHART_HEIGHT + 20, title: str = "Metrics across the run's checkpoints") -> Figure:
    """Several metrics against training step, one small panel each (their scales differ)."""
    names = [n for n, v in series.items() if any(x is not None and math.isfinite(x) for x in v)]
    if not steps or not names:
        return empty(title, "evaluate a run's checkpoints to see how the figures moved", height)
    n = len(names)
    gap = 0.06
    width = (1 - gap * (n - 1)) / n
    data, lay = [], _layout(height, title, margin=dict(l=40, r=10, t=56, b=40))
    lay["annotations"] = []
    for i, name in enumerate(names):
        ax = "" if i == 0 else str(i + 1)
        dom = [i * (width + gap), i * (width + gap) + width]
        data.append(dict(type="scatter", mode="lines+markers", x=list(steps), y=_num(series[name]), name=name,
                         xaxis=f"x{ax}", yaxis=f"y{ax}", line=dict(color=PALETTE[i % len(PALETTE)], width=2),
                         marker=dict(size=6), hovertemplate=f"step %{{x}}: {name} %{{y:.4g}}<extra></extra>"))
        lay[f"xaxis{ax}"] = _axis(domain=dom, anchor=f"y{ax}", title=dict(text="step"))
        lay[f"yaxis{ax}"] = _axis(anchor=f"x{ax}")
        lay["annotations"].append(dict(text=name, x=(dom[0] + dom[1]) / 2, y=1.0, xref="paper", yref="paper",
                                       yanchor="bottom", showarrow=False, font=dict(size=12)))
    return Figure(data, lay)


def closest_pairs_points(train, generated, nearest, height: int = 340) -> Figure:
    """2-D memorisation: the training data (grey), the generated points closest to it (red) and their
    nearest training points (green rings), joined by a line. train (N, 2); generated, nearest (K, 2)."""
    t = np.asarray(train, dtype=np.float64)[:1500]
    g, r = np.asarray(generated, dtype=np.float64), np.asarray(nearest, dtype=np.float64)
    xs, ys = [], []
    for a, b in zip(g, r):
        xs += [float(a[0]), float(b[0]), None]
        ys += [float(a[1]), float(b[1]), None]
    data = [dict(type="scatter", mode="markers", x=_num(t[:, 0]), y=_num(t[:, 1]), name="training data",
                 marker=dict(size=3, color=GREY, opacity=0.4), hoverinfo="skip"),
            dict(type="scatter", mode="lines", x=xs, y=ys, line=dict(color="#111827", width=1), showlegend=False,
                 hoverinfo="skip"),
            dict(type="scatter", mode="markers", x=_num(r[:, 0]), y=_num(r[:, 1]), name="nearest training point",
                 marker=dict(size=13, color="rgba(0,0,0,0)", line=dict(color=PALETTE[2], width=2))),
            dict(type="scatter", mode="markers", x=_num(g[:, 0]), y=_num(g[:, 1]), name="generated",
                 marker=dict(size=7, color=PALETTE[1]))]
    lim = float(max(3.0, np.abs(t).max() * 1.05)) if t.size else 3.5
    return Figure(data, _layout(height, None, legend=True,
                                xaxis=_axis(range=[-lim, lim], constrain="domain"),
                                yaxis=_axis(range=[-lim, lim], scaleanchor="x", scaleratio=1, constrain="domain"),
                                margin=dict(l=36, r=8, t=56, b=28)))  # room for a title above the legend
