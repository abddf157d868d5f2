"""The Forward tab's handlers: plain functions of (input, schedule, T, t, seed, ...).

Tests and gradio_client call them directly; forward.py lays out the widgets and wires them. The
maths is core's: schedules from core.schedules, q_sample / q_chain / eps_from_x0 from
core.forward, the step encoding from core.nets.embeddings. One noise draw per (seed, shape) is
cached, so dragging t back and forth shows the same noise fading in and out.
"""
from __future__ import annotations

import functools
import json
import time

import gradio as gr
import numpy as np
import torch

from core.forward import eps_from_x0, q_chain, q_sample
from core.nets.embeddings import timestep_embedding
from core.schedules import NoiseSchedule, make_schedule

from .. import forward_frames, render
from ..pacer import Pacer
from ..feed import jpeg
from ..inputs import Input, dataset_size, display_dataset, from_dataset, from_image_file
from ..widgets import DataView, user_errors, user_errors_gen
from . import forward_text as text

SOURCES = ["Photo", "Dataset", "Upload"]
T_MIN, T_MAX, T_DEFAULT = 10, 2000, 1000
SEED_MAX = 2**31 - 1
EMB_DIM = 64            # width of the step encoding shown (the nets' default)
FILM_FRAMES = 8
FILM_SIZE = 160         # px per filmstrip frame
FILM_FONT = 30          # px of the t labels: the 1,334 px strip shows at about 940 px in the presenter view (>= 20 px)
FILM_POINTS = 300       # points per filmstrip panel
CHAIN_FRAMES = 12       # states of the chain replayed after it ran
CHAIN_FPS = 20
MAX_COMPARE = 3
COMPARE_DEFAULT = ["linear", "cosine", "sigmoid"]
# The slider's image event skips Gradio's queue: one HTTP call instead of a queue join plus an event
# stream, faster from input to image in most of our runs (benchmarks/RESULTS.md). It is ~2 ms of
# work, so it needs no concurrency limit.
NOISY_QUEUED = False
FRAME_QUALITY = 75      # the frame route's JPEGs (Gradio's own quality): about 40 KB for a noisy 256 x 256 photo
# the "Noisy sample" view's outputs: three data views (image + plot each), the numbers, the curves,
# the histogram, the pictures' address
N_MAIN = 3 * 2 + 4
FIGURE_PACE_S = 0.2     # while dragging, figures other than the curves follow at most ~5 times a second
CLASS_FIGURES_PER_S = 5  # ... and at most this many a second for all pages together (explorer/pacer.py)


# --- cached, read-only building blocks ------------------------------------------------------

LIVE_FIGURES = Pacer(FIGURE_PACE_S, CLASS_FIGURES_PER_S)


@functools.lru_cache(maxsize=32)
def get_schedule(name: str, T: int) -> NoiseSchedule:
    return make_schedule(name, int(T))


@functools.lru_cache(maxsize=32)  # a class on their own seeds: 32 photo-sized draws are 25 MB
def noise_for(seed: int, shape: tuple[int, ...]) -> torch.Tensor:
    """One fixed N(0, I) draw per (seed, shape), shared read-only by every view and user."""
    return torch.randn(shape, generator=torch.Generator().manual_seed(int(seed)))


def whole(name: str, value, lo: int, hi: int, where: str = "") -> int:
    """A control's value as an int in [lo, hi], or a ValueError that says what is allowed."""
    try:
        ok = value is not None and float(value).is_integer() and lo <= int(value) <= hi
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise ValueError(f"{name} must be a whole number between {lo} and {where}{hi}, got {value!r}")
    return int(value)


def check_seed(seed) -> int:
    return whole("seed", seed, 0, SEED_MAX)


def _setup(inp: Input, schedule: str, T, t, seed):
    """Validate the controls; returns (schedule, t, eps)."""
    if not isinstance(inp, Input):
        raise ValueError("choose an input first (a photo, a dataset or an upload)")
    s = get_schedule(schedule, whole("T", T, T_MIN, T_MAX))
    t = whole("t", t, 0, s.T, where="T=")
    return s, t, noise_for(check_seed(seed), inp.shape)


# --- values for each view (raw: arrays, figures, text) --------------------------------------

def show_data(inp: Input, x: torch.Tensor, title: str | None = None, reference: bool = True):
    """x (a batch like inp.x0) as an image array or a figure; `reference` draws x_0 faint behind it."""
    if inp.kind == "image":
        return render.image(x[0])
    ref = inp.x0 if reference else None
    if inp.kind == "points":
        return render.scatter(x, reference=ref, title=title)
    return render.signals(x, reference=ref, title=title)


def x_label(t: int | None) -> str:
    """x_t's caption: with the value of t for figures (their title follows the slider), plain for images."""
    return "x_t" if t is None else f"x_t at t = {t}"


def show_noise(inp: Input, eps: torch.Tensor):
    if inp.kind == "image":  # the same value-to-grey mapping as x_t, so x_T and eps look alike
        return render.signed_image(eps[0], limit=1.0)
    if inp.kind == "points":
        return render.scatter(eps, color=render.PALETTE[1])
    return render.signals(eps)


def coefficients(s: NoiseSchedule, t: int) -> str:
    """The numbers of x_t = sqrt(abar) x_0 + sqrt(1 - abar) eps at this t, as one HTML line."""
    return f'<div class="coeffs">{coefficient_spans(s, t)}</div>'


def coefficient_spans(s: NoiseSchedule, t: int) -> str:
    """The inside of `coefficients`' line (the page's slider sets it from the frame route's answer)."""
    a, b = float(s.sqrt_alpha_bar[t]), float(s.sqrt_one_minus_alpha_bar[t])
    snr = "∞" if t == 0 else f"{float(s.snr[t]):.4g}"
    log_snr = "∞" if t == 0 else f"{float(s.log_snr[t]):+.2f}"
    parts = [f'<span class="eq">x<sub>{t}</sub> = <b>{a:.4f}</b>·x<sub>0</sub> + <b>{b:.4f}</b>·ε</span>',
             f"√ᾱ<sub>t</sub> = {a:.4f}", f"√(1−ᾱ<sub>t</sub>) = {b:.4f}",
             f"ᾱ<sub>t</sub> = {float(s.alpha_bar[t]):.4f}", f"SNR = {snr}", f"log SNR = {log_snr}"]
    return "".join(part if part.startswith("<span") else f"<span>{part}</span>" for part in parts)


def curves(s: NoiseSchedule, t: int):
    return render.schedule_curves([(s.name, s.to_numpy())], t, title=f"ᾱ(t) and SNR(t): {s.name}")


def histogram(x_t: torch.Tensor, t: int):
    return render.histogram({f"x_{t}": x_t}, title=histogram_title(t))


def histogram_title(t: int) -> str:
    return f"Values of x_{t} against N(0, 1)"


def encoding_bars(t: int):
    return render.step_encoding(timestep_embedding(int(t), EMB_DIM), int(t))


def encoding_map(T: int, t: int | None = None):
    ts = torch.linspace(0, int(T), min(int(T) + 1, 80)).round().long()
    return render.step_encoding_map(timestep_embedding(ts, EMB_DIM), ts, t)


def filmstrip_value(inp: Input, s: NoiseSchedule, eps: torch.Tensor):
    """x_t at FILM_FRAMES evenly spaced t from 0 to T, all with the same noise.

    Image frames sit on a black ground with light captions, like film, in either theme: a white band
    across the page would glare in the dark theme and on a projector, and black reads on a light page too.
    """
    ts = torch.linspace(0, s.T, FILM_FRAMES).round().long()
    if inp.kind == "image":
        xs = q_sample(s, inp.x0.expand(len(ts), *inp.shape[1:]), ts, eps.expand(len(ts), *inp.shape[1:]))
        return render.labelled_strip([render.to_uint8(x) for x in xs], [f"t = {t}" for t in ts.tolist()],
                                     size=FILM_SIZE, font_size=FILM_FONT, dark=True)
    # A few hundred points per panel show the cloud's shape; thousands would only slow the browser.
    frames = [q_sample(s, inp.x0, int(t), eps)[:FILM_POINTS] for t in ts]
    return render.panels(inp.kind, frames, [f"t = {t}" for t in ts.tolist()],
                         reference=inp.x0 if inp.kind == "signal" else None)


# --- handlers (one per API endpoint) --------------------------------------------------------

@user_errors
def noisy(inp: Input, schedule: str, T, t, seed, active: str = "main"):
    """The slider's fast path: x_t and its coefficients (one q_sample, one JPEG).

    Outputs: x_t image, x_t plot, numbers.
    """
    if active != "main":
        return gr.skip(), gr.skip(), gr.skip()
    s, t, eps = _setup(inp, schedule, T, t, seed)
    x_t = q_sample(s, inp.x0, t, eps)
    return (*DataView.fast(inp.kind, show_data(inp, x_t), title=x_label(t)), coefficients(s, t))


def x_t_picture(inp: Input, schedule: str, T, t, seed) -> tuple[bytes, dict[str, str]]:
    """The slider's picture for an image input, as the frame route serves it (explorer.forward_frames):
    x_t as JPEG bytes, and what comes with it: the numbers' HTML (inside of `coefficients`) and the
    histogram's new values (render.histogram_update, JSON). ValueError for bad settings."""
    if not isinstance(inp, Input) or inp.kind != "image":
        raise ValueError("only an image input has pictures at this address")
    s, t, eps = _setup(inp, schedule, T, t, seed)
    x_t = q_sample(s, inp.x0, t, eps)
    hist = render.histogram_update(f"x_{t}", x_t, histogram_title(t))
    return jpeg(show_data(inp, x_t), FRAME_QUALITY), {"numbers": coefficient_spans(s, t),
                                                      "histogram": json.dumps(hist, separators=(",", ":"))}


@user_errors
def x_t_histogram(inp: Input, schedule: str, T, t, seed, active: str = "main"):
    """The histogram of an image's x_t while the slider moves and the frame route cannot answer (it
    comes with each picture otherwise). Outputs: histogram."""
    if active != "main" or not isinstance(inp, Input) or inp.kind != "image":
        return gr.skip()
    s, t, eps = _setup(inp, schedule, T, t, seed)
    return histogram(q_sample(s, inp.x0, t, eps), t)


@user_errors
def compare(inp: Input, names: list[str], T, t, seed):
    """x_t under up to three schedules, same input and noise. Outputs: 3 x (image, plot), curves."""
    names = list(names or [])[:MAX_COMPARE]
    out = []
    for i in range(MAX_COMPARE):
        if i < len(names):
            s, tt, eps = _setup(inp, names[i], T, t, seed)
            x_t = q_sample(s, inp.x0, tt, eps)
            out += DataView.show(inp.kind, show_data(inp, x_t, reference=False), label=names[i])
        else:
            out += [gr.update(visible=False), gr.update(visible=False)]
    T = whole("T", T, T_MIN, T_MAX)
    figs = [(n, get_schedule(n, T).to_numpy()) for n in names]
    out.append(render.schedule_curves(figs, whole("t", t, 0, T, where="T=")) if figs else None)
    return tuple(out)


@user_errors
def t_views(inp: Input, schedule: str, T, t, seed, names: list[str], active: str = "main", live: bool = False):
    """The views besides x_t that depend on t, only for the sub-tab in sight.

    live: called while the slider is dragged. The schedule curves are then left to the browser,
    which slides their markers itself (render.MARKERS_JS), and the other figures are paced.
    Outputs: curves, histogram (main); 3 x (image, plot) and curves (compare); encoding bars and map.
    """
    skip = gr.skip()
    main, cmp, enc = [skip, skip], [skip] * (2 * MAX_COMPARE + 1), [skip, skip]
    if active == "main":
        s, t, eps = _setup(inp, schedule, T, t, seed)
        # while dragging, an image's histogram comes with each picture from the frame route
        main = [skip if live else curves(s, t),
                skip if live and inp.kind == "image" else histogram(q_sample(s, inp.x0, t, eps), t)]
    elif active == "compare":
        cmp = list(compare(inp, names, T, t, seed))
        if live:
            cmp[-1] = skip
    elif active == "encoding":
        enc = list(step_encoding(T, t))
    return (*main, *cmp, *enc)


def t_views_live(inp: Input, schedule: str, T, t, seed, names: list[str], active: str = "main"):
    """t_views for the slider while it is dragged, paced to redraw at most a few times a second.

    Redrawing a plotly figure costs the browser tens of milliseconds (hundreds on a busy 2-core
    machine) on the same thread that shows the x_t image; figures on every move would hold the
    image back. With trigger_mode="always_last" the pause also makes sure the last move is drawn.
    A class dragging at once shares CLASS_FIGURES_PER_S figures a second (explorer/pacer.py).
    """
    LIVE_FIGURES.wait()
    return t_views(inp, schedule, T, t, seed, names, active, live=True)


def main_views(inp: Input, s: NoiseSchedule, t: int, eps: torch.Tensor, seed: int) -> tuple:
    """x_0, x_t and eps (two outputs each), the numbers, the curves, the histogram and where the
    page fetches x_t's pictures while the slider moves (explorer.forward_frames)."""
    x_t = q_sample(s, inp.x0, t, eps)
    return (
        *DataView.show(inp.kind, show_data(inp, inp.x0, reference=False), label=f"x₀: {inp.label}"),
        *DataView.show(inp.kind, show_data(inp, x_t), label=x_label(None if inp.kind == "image" else t)),
        *DataView.show(inp.kind, show_noise(inp, eps), label=f"noise ε (seed {seed})"),
        coefficients(s, t), curves(s, t), histogram(x_t, t), forward_frames.marker(inp, s.name, s.T, seed),
    )


@user_errors
def noisy_sample(inp: Input, schedule: str, T, t, seed):
    """The "Noisy sample" sub-tab in full. Outputs: x_0 (2), x_t (2), eps (2), numbers, curves, histogram,
    the pictures' address."""
    s, t, eps = _setup(inp, schedule, T, t, seed)
    return main_views(inp, s, t, eps, int(seed))


def back_to_main(inp: Input, schedule: str, T, t, seed, before: str):
    """The "Noisy sample" sub-tab shown again: catch up with what changed while it was hidden."""
    if before == "main":
        return (gr.skip(),) * N_MAIN
    return noisy_sample(inp, schedule, T, t, seed)


@user_errors
def filmstrip(inp: Input, schedule: str, T, seed):
    """x_t at evenly spaced t from 0 to T. Outputs: filmstrip image, filmstrip plot."""
    s, _, eps = _setup(inp, schedule, T, 0, seed)
    return DataView.show(inp.kind, filmstrip_value(inp, s, eps))


@user_errors
def step_encoding(T, t):
    """The sinusoidal encoding of t, and of every t up to T. Outputs: bars, heatmap."""
    T = whole("T", T, T_MIN, T_MAX)
    t = whole("t", t, 0, T, where="T=")
    return encoding_bars(t), encoding_map(T, t)


@user_errors
def refresh(inp: Input, schedule: str, T, t, seed, names: list[str], active: str = "main"):
    """After the input, schedule, T or seed changed: the views of the sub-tab in sight, chain results cleared.

    The other sub-tabs catch up when they are opened. Outputs: x_0 (2), x_t (2), eps (2), numbers,
    curves, histogram, the pictures' address, compare (7), filmstrip (2), encoding bars, encoding map, chain (7).
    """
    s, t, eps = _setup(inp, schedule, T, t, seed)
    skip = gr.skip()
    return (
        *(main_views(inp, s, t, eps, int(seed)) if active == "main" else (skip,) * N_MAIN),
        *(compare(inp, names, T, t, seed) if active == "compare" else (skip,) * (2 * MAX_COMPARE + 1)),
        *(DataView.show(inp.kind, filmstrip_value(inp, s, eps)) if active == "film" else (skip, skip)),
        *((encoding_bars(t), encoding_map(s.T, t)) if active == "encoding" else (skip, skip)),
        *chain_cleared(inp.kind),
    )


def chain_cleared(kind: str) -> tuple:
    """Empty chain views (the input changed; the last run no longer applies). Outputs as `chain`."""
    return (*DataView.show(kind, None), *DataView.show(kind, None), None, text.CHAIN_IDLE, None)


@user_errors_gen
def chain(inp: Input, schedule: str, T, t, seed, last_run=None):
    """Run the Markov chain q(x_s | x_{s-1}) for s = 1..t and compare it with the closed form.

    Shows the closed form at once, replays the chain's states, then both results, the histograms of
    their implied noise and a table of statistics. Skips the work when `last_run` says these very
    settings were just run. Outputs: chain (image, plot), closed form (image, plot), histogram,
    stats, the run's key.
    """
    s, t, eps = _setup(inp, schedule, T, t, seed)
    key = (id(inp), s.name, s.T, t, check_seed(seed))
    skip = gr.skip()
    if key == last_run:
        yield (skip,) * 7
        return
    kind = inp.kind
    if t == 0:
        yield (*chain_cleared(kind)[:-2], text.CHAIN_AT_ZERO, key)
        return
    x_closed = q_sample(s, inp.x0, t, eps)
    closed_view = DataView.show(kind, show_data(inp, x_closed), label="closed form q(x_t | x_0)")
    yield (*DataView.show(kind, None, label="chain: running…"), *closed_view, None,
           text.CHAIN_RUNNING.format(t=t), skip)
    keep = sorted(set(np.linspace(1, t, min(CHAIN_FRAMES, t)).round().astype(int).tolist()))
    x_chain, kept = q_chain(s, inp.x0, t, generator=torch.Generator().manual_seed(key[-1]), keep=keep)
    for step in keep[:-1]:  # replay the walk: each frame is x_s after s noise additions
        yield (*DataView.show(kind, show_data(inp, kept[step]), label=f"chain after {step} of {t} steps"),
               skip, skip, skip, skip, skip)
        time.sleep(1 / CHAIN_FPS)
    # The implied noise (x_t - sqrt(abar) x_0) / sqrt(1 - abar) is exactly N(0, 1) for the closed form;
    # if the chain reaches the same q(x_t | x_0), its implied noise is N(0, 1) too.
    r_chain = eps_from_x0(s, x_chain, t, inp.x0)
    r_closed = eps_from_x0(s, x_closed, t, inp.x0)
    hist = render.histogram({"chain": r_chain, "closed form": r_closed},
                            title=f"Implied noise ε̂ at t = {t} against N(0, 1)")
    yield (*DataView.show(kind, show_data(inp, x_chain), label=f"chain: {t} noise additions"),
           *closed_view, hist, chain_stats(x_chain, x_closed, r_chain, r_closed, t), key)


def chain_stats(x_chain, x_closed, r_chain, r_closed, t: int) -> str:
    def row(name, x, r):
        return [name, float(x.mean()), float(x.std()), float(r.mean()), float(r.std())]

    table = render.stat_rows([
        ["", f"mean x_{t}", f"std x_{t}", "mean ε̂", "std ε̂"],
        row("chain", x_chain, r_chain),
        row("closed form", x_closed, r_closed),
        ["N(0, 1)", "", "", "0", "1"],
    ])
    return f"{table}\n\nover {x_chain.numel():,} values."


# --- input selection ------------------------------------------------------------------------

def make_input_selector(photos: dict):
    @user_errors
    def select_input(source: str, photo: str, dataset: str, index, uploaded: Input | None):
        """The chosen input and the controls that go with it.

        Outputs: input state, photo dropdown, dataset dropdown, index slider, upload button, caption.
        """
        show = {s: gr.update(visible=source == s) for s in SOURCES}
        index_update = gr.update(visible=False)
        if source == "Photo":
            if photo not in photos:
                raise ValueError(f"unknown photo {photo!r}; choose one of {', '.join(photos)}")
            inp = from_image_file(photos[photo], photo)
        elif source == "Dataset":
            data = display_dataset(dataset)
            if data.kind != "points":
                index = min(int(index or 0), len(data) - 1)
                index_update = gr.update(visible=True, maximum=len(data) - 1, value=index)
            inp = from_dataset(dataset, int(index or 0))
        elif source == "Upload":
            if uploaded is None:  # keep showing the current input until a file arrives
                return gr.skip(), show["Photo"], show["Dataset"], index_update, show["Upload"], text.UPLOAD_HINT
            inp = uploaded
        else:
            raise ValueError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
        return inp, show["Photo"], show["Dataset"], index_update, show["Upload"], caption(inp)

    return select_input


FORWARD_KEYS = ("source", "input", "index", "schedule", "T", "t", "seed")


def make_restorer(photos: dict, datasets: list[str], select_input):
    """The Forward tab's part of restoring a link (see explorer.lecture.url_state).

    Returns restore(values, problems) -> updates for: source, photo, dataset, index, upload button,
    caption, input state, schedule, T, t, seed, last T, t copy, then the main views.
    """

    def restore(values: dict, problems: list[str]) -> tuple:
        if values.get("tab", "forward") != "forward" or not any(k in values for k in FORWARD_KEYS):
            return (gr.skip(),) * (13 + N_MAIN)
        source = {"photo": "Photo", "dataset": "Dataset", "upload": "Upload"}.get(values.get("source"), None)
        name = values.get("input")
        if source is None:
            source = "Dataset" if name in datasets else "Photo"
        if source == "Upload":
            problems.append("an uploaded image does not travel in a link; the default photo is shown")
            source, name = "Photo", None
        photo = "astronaut" if "astronaut" in photos else next(iter(photos), None)  # the tab's own default
        dataset = datasets[0]
        if source == "Photo":
            if name is not None and name not in photos:
                problems.append(f"there is no photo {name!r} here (photos: {', '.join(photos)}); "
                                f"{photo} is shown")
            elif name is not None:
                photo = name
            if photo is None:
                source = "Dataset"
        if source == "Dataset" and name is not None:
            if name in datasets:
                dataset = name
            else:
                problems.append(f"there is no dataset {name!r} here (datasets: {', '.join(datasets)}); "
                                f"{dataset} is shown")
        index = values.get("index", 0)
        if source == "Dataset" and index:
            size = dataset_size(dataset)
            if index >= size:
                problems.append(f"the link's index={index} is past the last sample of {dataset} ({size - 1})")
                index = 0
        schedule = values.get("schedule", "linear")
        T = values.get("T", T_DEFAULT)
        if T > T_MAX or T % 10:
            problems.append(f"the link's T={T} is not one the T slider offers (10 to {T_MAX} in steps of 10); "
                            f"T={T_DEFAULT} is used")
            T = T_DEFAULT
        t = values.get("t", T // 4)
        if t > T:
            problems.append(f"the link's t={t} is past T={T}; t={T // 4} is used")
            t = T // 4
        seed = values.get("seed", 0)
        picked = select_input(source, photo, dataset, index, None)
        inp = picked[0]
        views = noisy_sample(inp, schedule, T, t, seed)
        _, show_photo, show_dataset, *rest = picked
        return (gr.update(value=source), {**show_photo, "value": photo}, {**show_dataset, "value": dataset},
                *rest, inp, gr.update(value=schedule), gr.update(value=T),
                gr.update(value=t, maximum=T), gr.update(value=seed), T, t, *views)

    return restore


def caption(inp: Input) -> str:
    if inp.kind == "points":
        return f"**{inp.label}**: {inp.shape[0]} points in 2-D"
    if inp.kind == "signal":
        return f"**{inp.label}**: a signal of length {inp.shape[-1]}"
    return f"**{inp.label}**: image {' × '.join(str(d) for d in inp.shape[1:])}"


@user_errors
def upload(path: str | None):
    """An uploaded file -> the uploaded-image state and the source switched to Upload."""
    if not path:
        raise ValueError("no file arrived; please try the upload again")
    return from_image_file(path, "your image"), "Upload"


@user_errors
def set_T(T, t, old_T):
    """Keep t at the same fraction of the way when T changes. Outputs: t slider, remembered T, t's copy."""
    T = whole("T", T, T_MIN, T_MAX)
    new_t = round(int(t) * T / max(int(old_T), 1))
    return gr.update(maximum=T, value=min(new_t, T)), T, min(new_t, T)


def check_compare(names: list[str]):
    if len(names or []) > MAX_COMPARE:
        gr.Warning(f"Compare up to {MAX_COMPARE} schedules; showing the first {MAX_COMPARE}.")
    return list(names or [])[:MAX_COMPARE]


