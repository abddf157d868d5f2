"""The Evaluate tab's handlers: figures of one checkpoint, their history over a run, visual
inspection, and the blind real-or-generated quiz.

`EvaluateHandlers(ctx)` holds every event (tests and gradio_client call them; `evaluate.py` wires
them to widgets). The work is core's `evaluate_checkpoint`; it runs in a worker thread while the
handler streams its progress, and a Cancel (or a closed page) sets the flag core polls.
"""
from __future__ import annotations

import html
import json
import math
import threading
import uuid
from pathlib import Path

import gradio as gr
import numpy as np
import torch

from core.checkpoint import list_checkpoints, load_config
from core.data import checkpoint_data, load_dataset
from core.evaluate import BATCH as SAMPLING_BATCH
from core.evaluate import MAX_N, MIN_N, EvaluationCancelled, evaluate_checkpoint, floor_words
from core.metrics import memorisation
from core.sample import draw
from core.samplers import SAMPLERS, sampler_name

from .. import charts, costs, render
from ..quiz import STORE, make_deck
from ..recordings import Recordings
from ..widgets import DataView
from .reverse_handlers import CheckpointPicker, checkpoint_summary, kind_of

DEFAULT_N = {"points": 1000, "image": 500, "signal": 500}
HISTORY_N = {"points": 500, "image": 200, "signal": 200}  # per checkpoint when a whole run is evaluated
HISTORY_MAX = 12          # checkpoints of one run evaluated at most (evenly spaced, always the last)
# The figures plotted over a run, per kind of data (the first that exist are shown).
HISTORY_FIGURES = {"points": ("swd", "mmd", "precision", "recall"), "image": ("fid", "kid", "precision", "recall"),
                   "signal": ("spectrum", "precision", "recall", "diversity")}
GRID_N = 64               # samples in the visual-inspection grids
QUIZ_MAX_PER_SOURCE = 50
SEED_MAX = 2**31 - 1
_RESULTS_CACHE: dict[tuple, dict] = {}  # (path, weights mtime, n, sampler, steps, seed) -> result
_CACHE_LOCK = threading.Lock()


def _cache_key(path, n: int, sampler: str, steps: int, seed: int) -> tuple:
    """An evaluation's key in _RESULTS_CACHE: its settings and the weights file's time (a retrained model misses)."""
    return (str(path), (Path(path) / "model.safetensors").stat().st_mtime_ns, n, sampler, steps, seed)


def fmt(v) -> str:
    """A figure for a table: 4 significant digits, scientific outside 1e-3..1e5, a dash for None."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if isinstance(v, int):
        return f"{v:,}"
    a = abs(v)
    return f"{v:.4g}" if a == 0 or 1e-3 <= a < 1e5 else f"{v:.2e}"


def _decimals(spread, two: bool = False) -> int | None:
    """Decimal places a figure with this spread is shown to: the spread to 2 significant digits where they
    start 10-35 or 95-99 and to 1 otherwise (the particle physicists' rule), to 2 always with `two`. None
    where that would take more than 6 decimals, or the spread is 0 or missing."""
    if not (isinstance(spread, (int, float)) and math.isfinite(spread) and spread > 0):
        return None
    e = math.floor(math.log10(spread))
    lead = spread / 10.0 ** (e - 2)  # the first three digits, 100 <= lead < 1000
    # 2 digits from 100 to 354; 1 from 355 to 949; 950 and up round up a decade, to 2 digits there (0.0010)
    decimals = 1 - e if lead < 355 or (two and lead < 950) else -e
    return decimals if decimals <= 6 else None


def fmt_to(v, spread, two: bool = False) -> str:
    """A figure to the decimals its spread allows (`_decimals`), never '-0'; plain `fmt` where it gives none."""
    d = _decimals(spread, two)
    if d is None or not isinstance(v, (int, float)) or not math.isfinite(v):
        return fmt(v)
    text = f"{round(v, d):,.0f}" if d <= 0 else f"{v:.{d}f}"
    return text[1:] if text.startswith("-") and not text.strip("-0.,") else text


def half_width(lo, hi) -> float | None:
    """An interval's half-width (None where an end is missing)."""
    return (hi - lo) / 2 if all(isinstance(x, (int, float)) for x in (lo, hi)) else None


def fmt_interval(lo, hi) -> str:
    """'[-0.094, 0.084]': an interval's ends to 2 significant digits of its half-width."""
    half = half_width(lo, hi)
    return f"[{fmt_to(lo, half, two=True)}, {fmt_to(hi, half, two=True)}]"


def fmt_pm(mean, sd) -> str:
    """'0.932 ± 0.011': a mean and its spread, each to the decimals the spread allows (`_decimals`). The
    plain `fmt` of each where that would take more than 6 decimals, or the spread is 0 or missing."""
    if sd is None:
        return fmt(mean)
    d = _decimals(sd)
    if d is None or not (isinstance(mean, (int, float)) and math.isfinite(mean)):
        return f"{fmt(mean)} ± {fmt(sd)}"
    return f"{fmt_to(mean, sd)} ± {fmt_to(sd, sd)}"


def main_mark(key: str, overall: dict) -> str:
    """A mark beside each main figure, the ones the overall reading comes from."""
    main = {k for group in ("same", "worse", "better") for k in overall.get(group) or ()}
    return " <span class='ev-main' title='decides the overall reading'>●</span>" if key in main else ""


MAIN_NOTE = " <span class='ev-dim'>(read from the main figures, marked ●)</span>"


def progress_html(fraction: float, message: str, state: str = "running") -> str:
    colour = {"running": "#4f46e5", "done": "#16a34a", "cancelled": "#6b7280", "failed": "#dc2626"}[state]
    return (f'<div class="ev-progress"><div style="background:#e5e7eb;border-radius:6px;height:10px;overflow:hidden">'
            f'<div style="width:{100 * max(0.0, min(1.0, fraction)):.1f}%;background:{colour};height:10px"></div></div>'
            f'<div style="margin-top:4px">{html.escape(message)}</div></div>')


TABLE_CSS = """<style>
.ev-table { overflow-x: auto; }
.ev-table table { width: 100%; border-collapse: collapse; font-size: 0.92em; }
.ev-table th { text-align: left; border-bottom: 2px solid #d1d5db; padding: 4px 6px; }
.ev-table td { border-bottom: 1px solid #e5e7eb; padding: 4px 6px; vertical-align: top; }
.ev-table .ev-num { font-variant-numeric: tabular-nums; }
/* intervals and spreads may wrap at their spaces, never inside a number: the table fits a 1024 px screen */
.ev-table td.ev-num .ev-dim, .ev-table .ev-int { display: block; }
.ev-table .ev-dim { color: #6b7280; font-size: 0.85em; }
.ev-table .ev-warn { color: #b45309; font-size: 0.85em; }
.ev-table .ev-caption { margin-bottom: 6px; color: #374151; }
.ev-table .ev-notes { color: #6b7280; font-size: 0.85em; margin-top: 6px; }
.ev-table .ev-verdict { font-size: 0.85em; }
.ev-table .ev-overall { margin-bottom: 6px; }
.ev-table .ev-main { color: #4f46e5; }
</style>"""


VERDICT_COLOUR = {"same": "#16a34a", "worse": "#dc2626", "better": "#b45309"}


def vs_floor_cell(f: dict) -> str:
    """The figure against its floor: ratio (x) or difference (+/-) with its interval, and the plain reading."""
    v = f.get("vs_floor")
    if not v:  # a fixed mark (memorisation's 1: as near the training set as real data): said here, as the
        # presenter view hides the floor's column
        mark = f.get("floor")
        mark = f" (floor {fmt(mark)})" if isinstance(mark, (int, float)) and not isinstance(mark, bool) else ""
        return f"<span class='ev-dim'>{html.escape(f['better'])} is better{mark}</span>"
    lo, hi = v["interval"]
    # to 2 significant digits of the interval's half-width: "-0.012 [-0.094, 0.084]", not "-0.01151 [...]"
    estimate = fmt_to(v["estimate"], half_width(lo, hi), two=True)
    sign = "×" if v["how"] == "ratio" else ("" if estimate.startswith("-") else "+")
    interval = f"<span class='ev-int'> {fmt_interval(lo, hi)}</span>"  # the presenter view hides it
    return (f"<span class='ev-num'>{sign}{estimate}{interval}</span>"
            f"<div class='ev-verdict' style='color:{VERDICT_COLOUR[v['verdict']]}'>{html.escape(v['says'])}</div>")


def figures_table(result: dict) -> str:
    """Every figure as an HTML table row: value, interval, the real-data floor (mean ± sd of several real draws),
    the figure against its floor with the plain reading, n, warnings; the overall reading above."""
    level = round(100 * result["bootstrap"]["level"])
    overall = result.get("overall") or {}
    rows = []
    for name, f in result["metrics"].items():
        lo, hi = f["interval"] if f.get("interval") else (None, None)
        floor = "–" if f["floor"] is None else \
            f"{fmt_pm(f['floor'], f.get('floor_sd'))} <span class='ev-dim'>(n={fmt(f['n_floor'])})</span>"
        warn = "".join(f"<div class='ev-warn'>⚠ {html.escape(w)}</div>" for w in f["warnings"])
        rows.append(f"<tr id='ev-row-{html.escape(name)}'>"
                    f"<td><b>{html.escape(f['label'])}</b>{main_mark(name, overall)}"
                    f"<div class='ev-dim'>{html.escape(f['space'])}</div>{warn}</td>"
                    f"<td class='ev-num'>{fmt(f['value'])}</td><td class='ev-num'>{fmt_interval(lo, hi)}</td>"
                    f"<td class='ev-num'>{floor}</td><td>{vs_floor_cell(f)}</td>"
                    f"<td class='ev-num'>{fmt(f['n'])}</td></tr>")
    head = (f"<tr><th>figure</th><th>value</th><th>{level}% interval</th><th>floor: real data (mean ± sd)</th>"
            f"<th>against the floor [{level}% interval]</th><th>n</th></tr>")
    ext = result.get("extractor")
    ext_line = f" · features: {html.escape(ext['name'])} ({ext['dim']}-d)" if ext else ""
    t = result["timings"]
    fl = result.get("floor") or {}
    floor_line = (f" · floor over {floor_words(fl)}"
                  + (f", sliced Wasserstein against {fl['reference']:,} real points" if fl.get("reference") else "")
                  if fl else "")
    caption = (f"{html.escape(result['dataset'])} · n = {result['n']:,} samples by {setting_words(result)}"
               f" · trained {fmt(result.get('train_steps'))} steps"
               f"{ext_line}{floor_line} · {t['total_s']:.1f} s")
    colour = VERDICT_COLOUR.get(overall.get("verdict"), "#374151")
    verdict = (f"<div id='ev-overall' class='ev-overall' style='color:{colour}'>"
               f"<b>Overall:</b> {html.escape(overall['says'])}{MAIN_NOTE}</div>") if overall.get("verdict") else ""
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in result.get("notes", []))
    return (f"{TABLE_CSS}<div class='ev-table'><div class='ev-caption'>{caption}</div>{verdict}"
            f"<table>{head}{''.join(rows)}</table>"
            + (f"<ul class='ev-notes'>{notes}</ul>" if notes else "") + "</div>")


EVALUATE_PROMPT = "<i>Press <b>Evaluate</b> to compute the figures.</i>"
STORED_MAX_BYTES = 1 << 20  # a figures.json beside a checkpoint is a few kB


def setting_words(run: dict) -> str:
    """'DPM-Solver++ 2M SDE (50 steps, quadratic spacing, seed 0)': the sampler a set of figures was measured
    with, by its name, with every option that is not the default."""
    opts = [f"{fmt(run.get('steps'))} steps"]
    if run.get("eta"):
        opts.append(f"eta {fmt(run['eta'])}")
    if run.get("spacing", "linear") != "linear":
        opts.append(f"{run['spacing']} spacing")
    opts.append(f"seed {fmt(run.get('seed'))}")
    return html.escape(f"{sampler_name(str(run.get('sampler')))} ({', '.join(opts)})")


def stored_figures_table(stored: dict) -> str:
    """The figures recorded beside a shipped model (its figures.json, written by
    benchmarks/checkpoint_figures.py) as tables, one per sampler setting: the value, real data's own
    figure (mean ± sd of several real draws) and the value against it with the plain reading. Shown
    until Evaluate measures again here, so the tab has numbers from the moment it opens."""
    parts = [f"{TABLE_CSS}<div class='ev-table ev-stored'><div class='ev-caption'><b>Recorded with this model</b> "
             f"(measured {html.escape(str(stored.get('measured', '?')))} on "
             f"{html.escape(str(stored.get('machine', '?')))}). Press <b>Evaluate</b> to measure again here, "
             "with its settings (on the left; in the presenter view under ☰ Controls).</div>"]
    for run in stored.get("runs", []):
        overall = run.get("overall") or {}
        colour = VERDICT_COLOUR.get(overall.get("verdict"), "#374151")
        says = (f" · <span style='color:{colour}'>{html.escape(overall['says'])}</span>"
                + (MAIN_NOTE if overall.get("verdict") else "") if overall.get("says") else "")
        rows = []
        for key, f in run.get("metrics", {}).items():  # the columns of `figures_table` (the presenter view hides two)
            floor = "–" if f.get("floor") is None else fmt_pm(f["floor"], f.get("floor_sd"))
            lo, hi = f["interval"] if f.get("interval") else (None, None)
            rows.append(f"<tr><td><b>{html.escape(str(f.get('label', '?')))}</b>{main_mark(key, overall)}</td>"
                        f"<td class='ev-num'>{fmt(f.get('value'))}</td><td class='ev-num'>{fmt_interval(lo, hi)}</td>"
                        f"<td class='ev-num'>{floor}</td><td>{vs_floor_cell({'better': '?', **f})}</td>"
                        f"<td class='ev-num'>{fmt(f.get('n', run.get('n')))}</td></tr>")
        setting = f"n = {fmt(run.get('n'))} samples by {setting_words(run)}"
        parts.append(f"<div class='ev-caption'>{setting}{says}</div>"
                     "<table><tr><th>figure</th><th>value</th><th>interval</th><th>floor: real data (mean ± sd)</th>"
                     f"<th>against the floor [interval]</th><th>n</th></tr>{''.join(rows)}</table>")
    return "".join(parts) + "</div>"


def stored_figures(path) -> str:
    """The table of a checkpoint's recorded figures, or the prompt to press Evaluate when it has none
    (or they cannot be read)."""
    if not path:
        return EVALUATE_PROMPT
    file = Path(path) / "figures.json"
    try:
        if not file.is_file() or file.stat().st_size > STORED_MAX_BYTES:
            return EVALUATE_PROMPT
        stored = json.loads(file.read_text(encoding="utf-8"))
        if not isinstance(stored, dict) or not stored.get("runs"):
            return EVALUATE_PROMPT
        return stored_figures_table(stored)
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return EVALUATE_PROMPT


def figures_json(result: dict) -> dict:
    """The numbers only (no per-t arrays or closest pairs), for the API."""
    out = {k: result[k] for k in ("checkpoint", "dataset", "kind", "n", "sampler", "steps", "seed", "warnings")}
    out["metrics"] = {name: {k: f.get(k) for k in ("label", "value", "interval", "floor", "floor_sd", "vs_floor", "n",
                                                   "n_floor", "better")}
                      for name, f in result["metrics"].items()}
    out["overall"] = result.get("overall")
    return out


PAIRS_LABEL = "closest to the training set"
PAIRS_PROMPT = "Press **Evaluate** to find the generated samples closest to the training set."


def memorisation_key(result: dict) -> str | None:
    """The memorisation figure to show pairs of: in feature space where there is one."""
    for key in ("memorisation_feature", "memorisation", "memorisation_pixel", "memorisation_raw"):
        if key in result["metrics"] and result["metrics"][key].get("closest"):
            return key
    return None


def _image_grid(x: torch.Tensor, n: int = GRID_N) -> np.ndarray:
    return render.grid(x[:n], min_size=512)


def samples_view(kind: str, gen: torch.Tensor, real: torch.Tensor, label: str):
    """(kind, value) of generated samples for a DataView: a large grid, a scatter over the data, or lines."""
    if kind == "image":
        return _image_grid(gen)
    if kind == "points":
        return render.scatter(gen, reference=real, title=f"{label}: generated (blue) over real (grey)", height=460)
    return render.signals(gen, title=f"{label}: generated signals", max_lines=8, height=360)


def real_view(kind: str, real: torch.Tensor):
    if kind == "image":
        return _image_grid(real)
    if kind == "points":
        return render.scatter(real, title="real data", color=render.GREY, height=460)
    return render.signals(real, title="real signals", max_lines=8, height=360)


def pairs_view(kind: str, result: dict, gen: torch.Tensor, train: torch.Tensor):
    """The closest generated/training pairs of an evaluation side by side: (value, caption)."""
    key = memorisation_key(result)
    if key is None:
        return None, "No memorisation figure for this model."
    return closest_pairs(kind, result["metrics"][key], gen, train)


def closest_pairs(kind: str, fig: dict, gen: torch.Tensor, train: torch.Tensor):
    """(value, caption) of a memorisation figure's closest pairs: `fig` has closest (generated and
    training rows, distance), space, typical_real_distance and copy_fraction."""
    closest = fig["closest"][:8]
    g = torch.stack([gen[c["generated"]] for c in closest])
    t = torch.stack([train[c["train"]] for c in closest])
    dist = ", ".join(fmt(c["distance"]) for c in closest)
    caption = (f"The {len(closest)} generated samples closest to a training example ({html.escape(fig['space'])}); "
               f"distances {dist}; a typical real sample lies {fmt(fig['typical_real_distance'])} from its nearest "
               f"training example. Near-copies: {fig['copy_fraction']:.1%}.")
    if kind == "image":
        return render.grid(torch.cat([g, t]), nrow=len(closest), min_size=768), \
            "Top row: generated · bottom row: nearest training example. " + caption
    if kind == "points":
        return charts.closest_pairs_points(train, g, t), caption
    return render.panels("signal", [torch.stack([a, b]) for a, b in zip(g[:4], t[:4])],
                         [f"pair {i + 1}: generated (blue) · training (red)" for i in range(min(4, len(g)))]), caption


def mse_at_rest():
    """The MSE-per-timestep chart before Evaluate: what it will show."""
    return charts.empty("MSE per timestep", "press Evaluate: the network's error at each t, on real data",
                        charts.CHART_HEIGHT + 20)


def warnings_md(result: dict) -> str:
    """The warnings that belong to no single figure (those are in the table, under their figure)."""
    w = result.get("warnings") or []
    per_figure = {f"{f['label']}: {x}" for f in result["metrics"].values() for x in f["warnings"]}
    general = [x for x in w if x not in per_figure]
    n_fig = sum(1 for f in result["metrics"].values() if f["warnings"])
    if not w:
        return "No warnings: the sample count is large enough for every figure."
    lines = [f"**Read with care:** {n_fig} figure(s) carry a warning (in orange in the table)."] if n_fig else []
    return "\n".join(lines + [f"- {x}" for x in general])


def history_points(entries: list[dict], most: int = HISTORY_MAX) -> list[dict]:
    """At most `most` checkpoints of a run, evenly spread over it, always including the last."""
    entries = sorted(entries, key=lambda e: (e.get("steps") or 0, e["name"]))
    if len(entries) <= most:
        return entries
    idx = sorted(set(np.linspace(0, len(entries) - 1, most).round().astype(int).tolist()))
    return [entries[i] for i in idx]


class EvaluateHandlers(CheckpointPicker):
    """Every event of the Evaluate tab, bound to the app context."""

    def __init__(self, ctx):
        super().__init__(ctx)
        self.recordings = Recordings()  # the runs recorded beside shipped models (Visual inspection at rest)
        self._pairs: dict[tuple, tuple | None] = {}  # recorded_pairs per (checkpoint, its files' newest mtime)

    # --- checkpoints ----------------------------------------------------------------------------

    def entry(self, path) -> dict:
        if not path:
            raise gr.Error("Choose a checkpoint first (train one in the Train tab, or press ↻).")
        found = self.ctx.find_checkpoint(path)
        if found is not None:
            return found
        raise gr.Error(f"Unknown checkpoint {path!r}; press ↻ to refresh the list.")

    def refresh(self, current):
        choices = self.choices(fresh=True)
        paths = [p for _, p in choices]
        return gr.update(choices=choices, value=current if current in paths else (paths[0] if paths else None))

    def select(self, path):
        """A checkpoint was chosen: its description and the sample count that suits its kind.
        Outputs: info, n."""
        if not path:
            return "*No checkpoint selected.*", gr.update()
        e = self.entry(path)
        kind = kind_of(e)
        config, meta = load_config(path)
        return checkpoint_summary(config, meta), DEFAULT_N[kind]

    def figures_at_rest(self, path) -> str:
        """A checkpoint was chosen: the figures recorded beside it (shipped models), or the prompt."""
        return stored_figures(self.entry(path)["path"]) if path else EVALUATE_PROMPT

    def figures_view_at_rest(self, path) -> tuple:
        """A checkpoint was chosen: its recorded figures, no warnings and the MSE chart saying what will come
        (an earlier evaluation's, of another model, would stay beside them). Outputs: table, warnings, mse plot."""
        return self.figures_at_rest(path), "", mse_at_rest()

    def _recording(self, path) -> tuple | None:
        """(kind, generated samples, the training data, sampler, steps, seed) of a checkpoint's recorded
        default run (shipped beside each shipped model, the run the Reverse tab plays first); None when
        it has none made with these very weights, or its data is not here."""
        if not path:
            return None
        path = self.entry(path)["path"]
        found = self.recordings.beside(path)
        if found is None or not found[1].complete:
            return None
        meta, traj = found
        try:
            config, _ = load_config(path)
            data = load_dataset(config.data.name, **checkpoint_data(config.data, self.ctx.settings.runs_dir).params)
            (sampler, steps, _, _), = meta["setting"]["lanes"]  # sampler, steps, eta, spacing (recordings.setting)
            kind, seed = meta["setting"]["kind"], meta["setting"]["seed"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        final = traj.frames[-1][0].x_t  # the finished samples (uint8 pixels for images)
        gen = torch.from_numpy(final.astype(np.float32))
        if final.dtype == np.uint8:
            gen = gen / 127.5 - 1.0
        return kind, gen, data, sampler, steps, seed

    def recorded_samples(self, path) -> tuple | None:
        """(kind, samples view, real view, samples label, real label) from the recorded default run of a
        checkpoint (`_recording`) and as many real samples; None without one."""
        got = self._recording(path)
        if got is None:
            return None
        kind, gen, data, sampler, steps, seed = got
        real = data.x[torch.randperm(len(data), generator=torch.Generator().manual_seed(0))][:len(gen)]
        name = sampler_name(sampler)
        return (kind, samples_view(kind, gen, real, "recorded samples"), real_view(kind, real),
                f"{len(gen)} samples of the recorded run ({name}, {steps} steps, seed {seed})",
                f"{len(real)} real samples")

    def recorded_pairs(self, path) -> tuple | None:
        """(kind, value, caption): the samples of a checkpoint's recorded run (`_recording`) closest to the
        training set, nearest in pixels, the plane or the raw signal; None without a recording."""
        if not path:
            return None
        where = Path(self.entry(path)["path"])
        try:
            key = (str(where), max(f.stat().st_mtime_ns for f in where.iterdir()))
        except (OSError, ValueError):
            key = None
        if key is not None and key in self._pairs:  # choosing a model again shows its pairs at once
            return self._pairs[key]
        got = self._recording(path)
        found = None if got is None else self._pairs_of(*got)
        if key is not None:
            if len(self._pairs) >= 32:
                self._pairs.clear()
            self._pairs[key] = found
        return found

    @staticmethod
    def _pairs_of(kind, gen, data, sampler, steps, _seed) -> tuple:
        space = {"image": "pixels", "points": "the plane"}.get(kind, "raw signal")
        # a typical real distance from 500 training examples (leave-one-out) is plenty for a caption, and a
        # quarter of the default's time on a large picture set
        mem = memorisation(gen, data.x, max_reference=500)
        value, caption = closest_pairs(kind, {**mem, "space": space}, gen, data.x)
        again = ", in the classifier's features" if kind == "image" else ""
        return kind, value, (f"{caption} Found among the {len(gen)} samples of the recorded run ({sampler_name(sampler)}, "
                             f"{steps} steps); **Evaluate** looks again with n samples{again}.")

    def pairs_at_rest(self, path) -> tuple:
        """A checkpoint was chosen: the Memorisation view shows its recorded run's closest pairs
        (`recorded_pairs`), so the view has pairs before anything is evaluated.
        Outputs: pairs (2), caption; emptied when there is no recording."""
        got = self.recorded_pairs(path)
        if got is None:
            kind = kind_of(self.entry(path)) if path else "image"
            return *DataView.show(kind, None, label=PAIRS_LABEL), PAIRS_PROMPT
        kind, value, caption = got
        return *DataView.show(kind, value, label=PAIRS_LABEL), caption

    def inspection_at_rest(self, path) -> tuple:
        """A checkpoint was chosen: Visual inspection shows the samples of its recorded run beside real ones
        (`recorded_samples`), so the view has pictures before anything is evaluated.
        Outputs: samples (2), real (2); emptied when there is no recording."""
        got = self.recorded_samples(path)
        if got is None:  # nothing recorded: empty views, not another model's samples under this one's name
            kind = kind_of(self.entry(path)) if path else "image"
            return (*DataView.show(kind, None, label="generated samples"),
                    *DataView.show(kind, None, label="real samples"))
        kind, gen, real, gen_label, real_label = got
        return (*DataView.show(kind, gen, label=gen_label), *DataView.show(kind, real, label=real_label))

    # --- one evaluation -----------------------------------------------------------------------

    def _check(self, path, n, sampler, steps, seed) -> tuple[dict, int, int, int]:
        e = self.entry(path)
        for name, v, lo, hi in (("n", n, MIN_N, MAX_N), ("steps", steps, 1, 10_000), ("seed", seed, 0, SEED_MAX)):
            if v is None or not float(v).is_integer() or not lo <= int(v) <= hi:
                raise gr.Error(f"{name} must be a whole number between {lo} and {hi}, got {v!r}")
        if sampler not in SAMPLERS:
            raise gr.Error(f"unknown sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}")
        return e, int(n), int(steps), int(seed)

    def _cost(self, path, n: int, sampler: str, steps: int, seed: int) -> str | None:
        """Before an evaluation: refuse one whose sampling would hold the queue over the limit (saying what
        would fit), and return what to tell the user about one over 10 s (how long, the faster choice).

        Sampling dominates an evaluation; its cost comes from a measured model call at the batch size the
        evaluation draws with, remembered per device (explorer.costs). A cached result costs nothing.
        """
        with _CACHE_LOCK:
            if _cache_key(path, n, sampler, steps, seed) in _RESULTS_CACHE:
                return None
        model, _, meta = self.ctx.load_checkpoint(path)
        kind = kind_of(self.entry(path))
        try:
            _, say = costs.before_sampling(model, meta["sample_shape"], sampler=sampler, steps=steps, n=n,
                                           device=self.ctx.device, batch=SAMPLING_BATCH[kind], key=str(path))
        except costs.TooLong as e:
            raise gr.Error(f"This evaluation first draws its samples: {e}") from None
        return f"Evaluating first draws the samples: {say}" if say else None

    def run(self, path, n, sampler="ddim", steps=50, seed=0, *, progress=None, cancel=None):
        """evaluate_checkpoint on the cached model: (result, samples). Cached per settings and weights file."""
        e, n, steps, seed = self._check(path, n, sampler, steps, seed)
        key = _cache_key(path, n, sampler, steps, seed)
        with _CACHE_LOCK:
            hit = _RESULTS_CACHE.get(key)
        if hit is not None:
            return hit["result"], hit["samples"]
        model, config, meta = self.ctx.load_checkpoint(path)
        try:  # the data only from the app's data folders; a clear message when it is gone
            config = config.replace(data=checkpoint_data(config.data, self.ctx.settings.runs_dir))
            result, gen = evaluate_checkpoint((model, config, meta), n, sampler=sampler, steps=steps, seed=seed,
                                              device=self.ctx.device, progress=progress, cancel=cancel,
                                              return_samples=True)
        except ValueError as err:
            raise gr.Error(str(err)) from None
        result["checkpoint"] = str(path)
        with _CACHE_LOCK:
            _RESULTS_CACHE[key] = {"result": result, "samples": gen}
            while len(_RESULTS_CACHE) > 32:
                _RESULTS_CACHE.pop(next(iter(_RESULTS_CACHE)))
        return result, gen

    def _views(self, result: dict, gen: torch.Tensor) -> tuple:
        """table, warnings, mse plot, samples (2), real (2), pairs (2), pairs caption."""
        data = self._dataset(result)
        kind = result["kind"]
        real = data.x[torch.randperm(len(data), generator=torch.Generator().manual_seed(result["seed"]))]
        per_t = result["metrics"]["mse"]["per_t"]
        # ±2 standard errors; the lower edge is kept above a fifth of the value so a log axis stays readable
        lo = [max(m - 2 * s, 0.2 * m) for m, s in zip(per_t["mse"], per_t["sem"])]
        hi = [m + 2 * s for m, s in zip(per_t["mse"], per_t["sem"])]
        mse_fig = charts.mse_per_t(per_t["t"], per_t["mse"], lo, hi)
        n_show = min(1500 if kind == "points" else GRID_N, len(gen))  # as many real as generated, to compare
        pairs, caption = pairs_view(kind, result, gen, data.x)
        return (figures_table(result), warnings_md(result), mse_fig,
                *DataView.show(kind, samples_view(kind, gen[:n_show], real[:n_show], "samples"),
                               label=f"{n_show} generated samples"),
                *DataView.show(kind, real_view(kind, real[:n_show]), label=f"{n_show} real samples"),
                *DataView.show(kind, pairs, label=PAIRS_LABEL), caption)

    @staticmethod
    def _dataset(result: dict):
        return load_dataset(result["dataset"], **result.get("data_params", {}))

    def evaluate(self, path, n, sampler, steps, seed):
        """Stream an evaluation: progress first, then every view.

        Outputs: progress, table, warnings, mse plot, samples (2), real (2), pairs (2), pairs caption, figures JSON.
        """
        self._check(path, n, sampler, steps, seed)
        advice = self._cost(path, int(n), sampler, int(steps), int(seed))
        if advice:
            gr.Info(advice)
        skip = (gr.skip(),) * 11  # every output but the progress bar
        state = {"fraction": 0.0, "message": "starting", "result": None, "error": None}
        cancelled = threading.Event()

        def progress(fraction, message):
            state["fraction"], state["message"] = fraction, message

        def work():
            try:
                state["result"] = self.run(path, n, sampler, steps, seed, progress=progress, cancel=cancelled.is_set)
            except BaseException as err:  # reported by the streaming loop below
                state["error"] = err

        worker = threading.Thread(target=work, name="evaluation", daemon=True)
        worker.start()
        try:
            while worker.is_alive():
                worker.join(0.3)
                yield progress_html(state["fraction"], state["message"]), *skip
        finally:
            cancelled.set()  # the page went away or Cancel was pressed: core stops at its next check
        err = state["error"]
        if isinstance(err, EvaluationCancelled):
            yield progress_html(state["fraction"], "cancelled", "cancelled"), *skip
            return
        if err is not None:
            if isinstance(err, gr.Error):
                raise err
            raise gr.Error(f"the evaluation failed: {type(err).__name__}: {err}")
        result, gen = state["result"]
        yield (progress_html(1.0, f"done in {result['timings']['total_s']:.1f} s", "done"),
               *self._views(result, gen), figures_json(result))

    # --- history over a run -------------------------------------------------------------------

    def run_entries(self, path) -> list[dict]:
        """The checkpoints of the run `path` belongs to: its siblings in the same run folder, of the same
        dataset and net. A checkpoint directly in a checkpoint root (e.g. the shipped ones) is a run alone."""
        entry = self.entry(path)
        parent = Path(path).resolve().parent
        roots = {Path(d).resolve() for d in self.ctx.settings.checkpoint_dirs}
        if parent in roots:
            return [entry]
        siblings = [e for e in list_checkpoints(parent) if Path(e["path"]).resolve().parent == parent
                    and (e["dataset"], e["net"]) == (entry["dataset"], entry["net"])]
        return history_points(siblings or [entry])

    def history(self, path, n, sampler, steps, seed):
        """Evaluate every checkpoint of the run (up to HISTORY_MAX) and plot the figures against steps.
        Outputs: progress, history plot, history table (markdown)."""
        entries = self.run_entries(path)
        kind = kind_of(self.entry(path))
        n = min(int(n), HISTORY_N[kind]) if n else HISTORY_N[kind]
        rows = []
        cancelled = threading.Event()
        try:
            for i, e in enumerate(entries):
                state = {"fraction": 0.0, "message": "", "out": None, "error": None}

                def progress(fraction, message, state=state):
                    state["fraction"], state["message"] = fraction, message

                def work(e=e, state=state):
                    try:
                        state["out"] = self.run(e["path"], n, sampler, steps, seed, progress=progress,
                                                cancel=cancelled.is_set)
                    except BaseException as err:
                        state["error"] = err

                worker = threading.Thread(target=work, daemon=True)
                worker.start()
                while worker.is_alive():
                    worker.join(0.3)
                    done = (i + state["fraction"]) / len(entries)
                    yield (progress_html(done, f"checkpoint {i + 1} of {len(entries)} ({e['name']}): "
                                               f"{state['message']}"), gr.skip(), gr.skip())
                if state["error"] is not None:
                    if isinstance(state["error"], EvaluationCancelled):
                        return
                    raise gr.Error(f"evaluating {e['name']} failed: {state['error']}")
                result, _ = state["out"]
                rows.append((e.get("steps") or 0, e["name"], result))
                yield (progress_html((i + 1) / len(entries), f"{i + 1} of {len(entries)} checkpoints evaluated"),
                       self._history_figure(rows, kind), self._history_table(rows, kind))
        finally:
            cancelled.set()
        yield (progress_html(1.0, f"{len(rows)} checkpoints evaluated at n = {n}", "done"),
               self._history_figure(rows, kind), self._history_table(rows, kind))

    @staticmethod
    def _history_keys(rows, kind) -> list[str]:
        have = rows[-1][2]["metrics"] if rows else {}
        return ["mse"] + [k for k in HISTORY_FIGURES[kind] if k in have]

    def _history_figure(self, rows, kind):
        keys = self._history_keys(rows, kind)
        series = {rows[-1][2]["metrics"][k]["label"] if rows else k: [r[2]["metrics"].get(k, {}).get("value")
                                                                     for r in rows] for k in keys}
        return charts.metric_history([r[0] for r in rows], series)

    def _history_table(self, rows, kind) -> str:
        keys = self._history_keys(rows, kind)
        if not rows:
            return ""
        head = "| checkpoint | steps | " + " | ".join(rows[-1][2]["metrics"][k]["label"] for k in keys) + " |"
        lines = [head, "|" + "---|" * (len(keys) + 2)]
        for steps, name, result in rows:
            lines.append(f"| {name} | {fmt(steps)} | " + " | ".join(fmt(result["metrics"].get(k, {}).get("value"))
                                                                for k in keys) + " |")
        return "\n".join(lines)

    # --- human evaluation ---------------------------------------------------------------------

    def quiz_new(self, path, per_source, seed=0):
        """A new shared quiz: `per_source` real and as many generated images, shuffled. Outputs: quiz status."""
        e = self.entry(path)
        if kind_of(e) != "image":
            raise gr.Error("The quiz shows pictures: choose a checkpoint of an image model (e.g. digits).")
        if per_source is None or not float(per_source).is_integer() or not 2 <= int(per_source) <= QUIZ_MAX_PER_SOURCE:
            raise gr.Error(f"pictures per source must be between 2 and {QUIZ_MAX_PER_SOURCE}, got {per_source!r}")
        k, seed = int(per_source), int(seed or 0)
        config, meta = load_config(path)
        try:  # the real pictures first: a checkpoint whose data is gone or elsewhere says so
            d = checkpoint_data(config.data, self.ctx.settings.runs_dir)
            data = load_dataset(d.name, **dict(d.params))
        except ValueError as err:
            raise gr.Error(str(err)) from None
        gen, _ = draw(path, sampler="ddim", steps=50, n=k, seed=seed, device=str(self.ctx.device))
        pick = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed + 1))[:k]
        real = data.x[pick]
        deck = make_deck([render.image(x, min_size=256) for x in real], [render.image(x, min_size=256) for x in gen],
                         name=f"{e['name']} ({meta.get('dataset', config.data.name)})", seed=seed)
        STORE.set_deck(deck)
        return self.quiz_status()

    @staticmethod
    def quiz_status() -> str:
        deck = STORE.deck
        if deck is None:
            return ("No quiz yet: press **New quiz from this checkpoint** (an image model: digits, shapes "
                    "or your own), then **Take the quiz** here or let the class join (**Join**, or J).")
        t = STORE.tallies()
        return (f"Quiz **{deck.name}**: {len(deck.items)} pictures, half real, half generated. "
                f"{t['participants']} participant(s), {t['votes']} answer(s) so far.")

    @staticmethod
    def _participant(session: dict | None) -> dict:
        session = dict(session or {})
        session.setdefault("id", uuid.uuid4().hex[:10])
        return session

    def quiz_next(self, session):
        """Show this participant their next unanswered picture.
        Outputs: session, image, progress text, vote buttons' group visibility."""
        session = self._participant(session)
        deck = STORE.deck
        if deck is None:
            return session, None, "No quiz is running yet.", gr.update(visible=False)
        session["deck"] = deck.id
        item, done, total = STORE.next_item(session["id"], deck.id)
        if item is None:
            session["item"] = None
            return session, None, f"**Done**: you answered all {total} pictures. See the results below.", \
                gr.update(visible=False)
        session["item"] = item.id
        return session, item.image, f"Picture **{done + 1} of {total}**: real or generated?", gr.update(visible=True)

    def quiz_vote(self, session, vote, rating):
        """Record this participant's answer on the picture in view, then show the next.
        Outputs: session, image, progress text, vote group, results."""
        session = self._participant(session)
        if session.get("item") is None or session.get("deck") is None:
            raise gr.Error("Press **Take the quiz** first.")
        try:
            STORE.vote(session["id"], session["deck"], int(session["item"]), vote, rating)
        except ValueError as err:
            raise gr.Error(str(err)) from None
        return (*self.quiz_next(session), *self.quiz_results())

    @staticmethod
    def quiz_reveal(on: bool = True):
        """The teacher reveals (or hides again) which answered pictures were real. Outputs: as quiz_results."""
        STORE.reveal(bool(on))
        return EvaluateHandlers.quiz_results()

    @staticmethod
    def quiz_results():
        """The tallies over every participant. Outputs: summary (markdown), per-picture table, gallery.

        A picture's true source shows only once the teacher has revealed the answers, and only for
        pictures someone has answered: a projected results table must not give away the rest.
        """
        t = STORE.tallies()
        if t["deck"] is None:
            return "No quiz yet.", None, None
        deck = STORE.deck

        def pct(v):
            return "–" if v is None else f"{v:.0%}"

        def num(v):
            return "–" if v is None else f"{v:.2f}"

        summary = (f"**{t['participants']}** participant(s), **{t['votes']}** answers. "
                   f"Generated pictures fooled people **{pct(t['fooled_rate'])}** of the time "
                   f"(50% = indistinguishable from real; real ones were called real {pct(t['real_recognised'])}). "
                   f"Overall accuracy {pct(t['accuracy'])}. Mean realism: generated {num(t['mean_rating_generated'])}, "
                   f"real {num(t['mean_rating_real'])} (1-5).")
        revealed = STORE.revealed

        def source(r):
            if not r["votes"]:
                return "not answered"
            return r["source"] if revealed else "hidden"

        def tag(r):
            return ("R" if r["source"] == "real" else "G") if revealed and r["votes"] else "?"

        rows = [[r["item"], source(r), r["votes"], r["said_real"], r["said_generated"],
                 None if r["mean_rating"] is None else round(r["mean_rating"], 2)] for r in t["items"]]
        gallery = [(deck.items[r["item"]].image, f"{tag(r)}{r['item']} {r['said_real']}/{r['votes']}")
                   for r in t["items"]]
        if not revealed:
            summary += " Which pictures were real stays hidden until **Reveal the answers**."
        return summary, rows, gallery

    @staticmethod
    def quiz_export():
        try:
            return str(STORE.export_csv())
        except ValueError as err:
            raise gr.Error(str(err)) from None
