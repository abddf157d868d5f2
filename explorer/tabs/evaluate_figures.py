"""The Evaluate tab's figures in words and tables: each figure to the digits its spread allows, beside real
data's own (the floor) with the interval of both sides' noise, and the plain reading of them."""
from __future__ import annotations

import html
import math

from core.evaluate import floor_words
from core.samplers import sampler_name

from ..measured import read_figures


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
.ev-table .ev-dim { color: var(--body-text-color-subdued, #6b7280); font-size: 0.85em; }
.ev-table .ev-warn { color: #b45309; font-size: 0.85em; }
.ev-table .ev-caption { margin-bottom: 6px; color: var(--body-text-color, #374151); }
.ev-table .ev-notes { color: var(--body-text-color-subdued, #6b7280); font-size: 0.85em; margin-top: 6px; }
.ev-table .ev-verdict { font-size: 0.85em; }
.ev-table .ev-verdict span { color: inherit; }
.ev-table .ev-says-short { display: none; }
.ev-table .ev-overall { margin-bottom: 6px; }
.ev-table .ev-main { color: #4f46e5; }
</style>"""


def label_html(label: str) -> str:
    """A figure's name in bold; a closing note in brackets ("Precision (k-NN)") in a span the presenter
    view's lesson card hides, where the table shares the width with the MSE chart."""
    main, brackets, note = str(label).partition(" (")
    note = f"<span class='ev-label-note'> ({html.escape(note)}</span>" if brackets and label.endswith(")") else ""
    return f"<b>{html.escape(main if note else str(label))}{note}</b>"


VERDICT_COLOUR = {"same": "#16a34a", "worse": "#dc2626", "better": "#b45309"}
# the readings in a few words, for the presenter view's lesson card, where the table shares the width with
# the MSE chart (core.floors.VERDICTS says them in full; the colour is the same)
VERDICT_SHORT = {"same": "≈ real data", "worse": "worse than data", "better": "beyond data"}
# the header of the column against the floor: its interval in brackets, which the presenter view hides
HEAD_VS = "against the floor<span class='ev-head-int'> [{}interval]</span>"


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
            f"<div class='ev-verdict' style='color:{VERDICT_COLOUR[v['verdict']]}'>"
            f"<span class='ev-says'>{html.escape(v['says'])}</span>"
            f"<span class='ev-says-short'>{VERDICT_SHORT[v['verdict']]}</span></div>")


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
                    f"<td>{label_html(f['label'])}{main_mark(name, overall)}"
                    f"<div class='ev-dim'>{html.escape(f['space'])}</div>{warn}</td>"
                    f"<td class='ev-num'>{fmt(f['value'])}</td><td class='ev-num'>{fmt_interval(lo, hi)}</td>"
                    f"<td class='ev-num'>{floor}</td><td>{vs_floor_cell(f)}</td>"
                    f"<td class='ev-num'>{fmt(f['n'])}</td></tr>")
    head = (f"<tr><th>figure</th><th>value</th><th>{level}% interval</th><th>floor: real data (mean ± sd)</th>"
            f"<th>{HEAD_VS.format(f'{level}% ')}</th><th>n</th></tr>")
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
            rows.append(f"<tr><td>{label_html(str(f.get('label', '?')))}{main_mark(key, overall)}</td>"
                        f"<td class='ev-num'>{fmt(f.get('value'))}</td><td class='ev-num'>{fmt_interval(lo, hi)}</td>"
                        f"<td class='ev-num'>{floor}</td><td>{vs_floor_cell({'better': '?', **f})}</td>"
                        f"<td class='ev-num'>{fmt(f.get('n', run.get('n')))}</td></tr>")
        setting = f"n = {fmt(run.get('n'))} samples by {setting_words(run)}"
        parts.append(f"<div class='ev-caption'>{setting}{says}</div>"
                     "<table><tr><th>figure</th><th>value</th><th>interval</th><th>floor: real data (mean ± sd)</th>"
                     f"<th>{HEAD_VS.format('')}</th><th>n</th></tr>{''.join(rows)}</table>")
    return "".join(parts) + "</div>"


def stored_mse(path) -> dict | None:
    """The noise-prediction MSE per timestep recorded beside a checkpoint ({"n", "seed", "per_t": {"t",
    "mse", "sem", ...}, ...}), or None where there is none or it cannot be read as one."""
    stored = read_figures(path)
    mse = (stored or {}).get("mse")
    try:
        per_t = mse["per_t"]
        t, m, sem = per_t["t"], per_t["mse"], per_t["sem"]
        n = mse["n"]
        ok = (isinstance(n, int) and not isinstance(n, bool) and n > 0 and len(t) == len(m) == len(sem) > 0
              and all(isinstance(v, (int, float)) and math.isfinite(v) for v in (*t, *m, *sem)) and min(m) > 0)
    except (TypeError, KeyError, ValueError):
        return None
    return mse if ok else None


def stored_figures(path) -> str:
    """The table of a checkpoint's recorded figures, or the prompt to press Evaluate when it has none
    (or they cannot be read)."""
    stored = read_figures(path)
    if stored is None:
        return EVALUATE_PROMPT
    try:
        return stored_figures_table(stored)
    except (TypeError, KeyError, AttributeError, ValueError):
        return EVALUATE_PROMPT


def figures_json(result: dict) -> dict:
    """The numbers only (no per-t arrays or closest pairs), for the API."""
    out = {k: result[k] for k in ("checkpoint", "dataset", "kind", "n", "sampler", "steps", "seed", "warnings")}
    out["metrics"] = {name: {k: f.get(k) for k in ("label", "value", "interval", "floor", "floor_sd", "vs_floor", "n",
                                                   "n_floor", "better")}
                      for name, f in result["metrics"].items()}
    out["overall"] = result.get("overall")
    return out


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
