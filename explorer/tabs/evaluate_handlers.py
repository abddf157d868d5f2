"""The Evaluate tab's handlers: figures of one checkpoint, their history over a run, visual
inspection, and the blind real-or-generated quiz.

`EvaluateHandlers(ctx)` holds every event (tests and gradio_client call them; `evaluate.py` wires
them to widgets); the figures' tables are written by `evaluate_figures.py`, the quiz's events are in
`evaluate_quiz.py`. The work is core's `evaluate_checkpoint`; it runs in a worker thread while the
handler streams its progress, and a Cancel (or a closed page) sets the flag core polls.
"""
from __future__ import annotations

import html
import threading
from pathlib import Path

import gradio as gr
import numpy as np
import torch

from core.checkpoint import list_checkpoints, load_config
from core.data import checkpoint_data, load_dataset
from core.evaluate import BATCH as SAMPLING_BATCH
from core.evaluate import MAX_N, MIN_N, EvaluationCancelled, evaluate_checkpoint
from core.metrics import memorisation
from core.samplers import SAMPLERS, sampler_name

from .. import charts, costs, render
from ..recordings import Recordings
from ..widgets import DataView
from .checkpoint_picker import CheckpointPicker, checkpoint_summary, kind_of
from .evaluate_figures import (EVALUATE_PROMPT, figures_json, figures_table, fmt, progress_html, stored_figures,
                               stored_mse, warnings_md)
from .evaluate_quiz import EvaluateQuiz

DEFAULT_N = {"points": 1000, "image": 500, "signal": 500}
HISTORY_N = {"points": 500, "image": 200, "signal": 200}  # per checkpoint when a whole run is evaluated
HISTORY_MAX = 12          # checkpoints of one run evaluated at most (evenly spaced, always the last)
# The figures plotted over a run, per kind of data (the first that exist are shown).
HISTORY_FIGURES = {"points": ("swd", "mmd", "precision", "recall"), "image": ("fid", "kid", "precision", "recall"),
                   "signal": ("spectrum", "precision", "recall", "diversity")}
GRID_N = 64               # samples in the visual-inspection grids
SEED_MAX = 2**31 - 1
_RESULTS_CACHE: dict[tuple, dict] = {}  # (path, weights mtime, n, sampler, steps, seed) -> result
_CACHE_LOCK = threading.Lock()


def _cache_key(path, n: int, sampler: str, steps: int, seed: int) -> tuple:
    """An evaluation's key in _RESULTS_CACHE: its settings and the weights file's time (a retrained model misses)."""
    return (str(path), (Path(path) / "model.safetensors").stat().st_mtime_ns, n, sampler, steps, seed)


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


def mse_chart(per_t: dict, note: str):
    """The noise-prediction MSE against t with a band of ±2 standard errors; the band's lower edge is
    kept above a fifth of the value so that the log axis stays readable. note: where the figure comes
    from, said under the chart (in the presenter view's lesson it stands 300 px wide)."""
    lo = [max(m - 2 * s, 0.2 * m) for m, s in zip(per_t["mse"], per_t["sem"])]
    hi = [m + 2 * s for m, s in zip(per_t["mse"], per_t["sem"])]
    return charts.mse_per_t(per_t["t"], per_t["mse"], lo, hi, title="Noise-prediction MSE per t", note=f" · {note}")


def mse_at_rest(path=None):
    """The MSE-per-timestep chart before Evaluate: the curve recorded beside the checkpoint (shipped
    models), or what Evaluate will show."""
    recorded = stored_mse(path)
    if recorded is None:
        return charts.empty("MSE per timestep", "press Evaluate: the network's error at each t, on real data",
                            charts.CHART_HEIGHT + 20)
    return mse_chart(recorded["per_t"], f"recorded, n = {recorded['n']:,}")


def history_points(entries: list[dict], most: int = HISTORY_MAX) -> list[dict]:
    """At most `most` checkpoints of a run, evenly spread over it, always including the last."""
    entries = sorted(entries, key=lambda e: (e.get("steps") or 0, e["name"]))
    if len(entries) <= most:
        return entries
    idx = sorted(set(np.linspace(0, len(entries) - 1, most).round().astype(int).tolist()))
    return [entries[i] for i in idx]


class EvaluateHandlers(CheckpointPicker, EvaluateQuiz):
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
        """A checkpoint was chosen: its recorded figures, no warnings and its recorded MSE chart, or one saying
        what will come (an earlier evaluation's, of another model, would stay beside them). Outputs: table,
        warnings, mse plot."""
        return self.figures_at_rest(path), "", self.mse_view_at_rest(path)

    def mse_view_at_rest(self, path):
        """A checkpoint was chosen: the MSE per timestep recorded beside it, or the chart saying what will come."""
        return mse_at_rest(self.entry(path)["path"] if path else None)

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
        mse = result["metrics"]["mse"]
        mse_fig = mse_chart(mse["per_t"], f"this evaluation, n = {mse['n']:,}")
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
