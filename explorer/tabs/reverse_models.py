"""The Reverse tab's checkpoint in view: finding and loading it, keeping the page's list current, and
fitting the sampler controls to it (a mixin of `ReverseHandlers`, which supplies `ctx`, the checkpoint
list of `CheckpointPicker` (`checkpoints`, `choices`), and `first_view` and `default_spec` of the views and
links)."""
from __future__ import annotations

import math

import gradio as gr
import torch

from ..measured import fastest_met, measured_md, measured_settings, read_figures
from ..widgets import DataView
from . import reverse_text as text
from .checkpoint_picker import checkpoint_summary, kind_of
from .reverse_session import (DEFAULT_SAMPLES, MAX_SAMPLES, ReverseSession, cached_schedule, default_samples,
                              default_steps, whole)


def listing(choices) -> list[list[str]]:
    """The checkpoint list as a page's state holds it, to tell whether the page's list is the current one."""
    return [[label, path] for label, path in choices]


SELECT_OUTPUTS = 7  # select_checkpoint's: info, steps, steps_b, n, the picture, the figure, the kind shown


class ReverseModels:
    """The checkpoint in view and the controls that depend on it."""

    def default_checkpoint(self) -> str | None:
        entries = self.checkpoints()
        for e in entries:  # images first: the most telling first picture
            if kind_of(e) == "image":
                return e["path"]
        return entries[0]["path"] if entries else None

    def entry(self, path) -> dict:
        """The listing entry of a checkpoint path; only listed checkpoints are ever loaded."""
        if not path:
            listed = self.checkpoints()
            if not listed:
                raise gr.Error("No checkpoint found. Train one in the Train tab (it is saved to the runs folder) "
                               "or put checkpoints in assets/checkpoints, then press ↻.")
            raise gr.Error("Choose a checkpoint first.")
        found = self.ctx.find_checkpoint(path)
        if found is not None:
            return found
        names = ", ".join(e["label"] for e in self.checkpoints()) or "none"
        raise gr.Error(f"Unknown checkpoint {path!r}; available: {names}. Press ↻ to refresh the list.")

    def load(self, path):
        """(model, config, meta, schedule) of a listed checkpoint, from the context's cache."""
        entry = self.entry(path)
        try:
            model, config, meta = self.ctx.load_checkpoint(entry["path"])
        except (ValueError, FileNotFoundError, OSError) as e:
            raise gr.Error(f"Could not load {entry['label']}: {e}") from None
        schedule = cached_schedule(config.diffusion.schedule, config.diffusion.T)
        return model, config, meta, schedule

    def info(self, path) -> str:
        if not path:
            return "*No checkpoint selected.*"
        try:
            _, config, meta, _ = self.load(path)
        except gr.Error as e:
            return f"**Problem:** {e.message if hasattr(e, 'message') else e}"
        return checkpoint_summary(config, meta)

    def refresh(self, current):
        """Rescan the checkpoint folders; keep the current choice if it is still there."""
        choices = self.choices(fresh=True)
        paths = [p for _, p in choices]
        value = current if current in paths else self.default_checkpoint()
        return gr.update(choices=choices, value=value)

    def tab_shown(self, current, listed, sampler, steps, sampler_b, steps_b, n, last_kind=None, session=None):
        """The tab brought into view: rescan the list (a checkpoint saved in Train since shows up) and fit
        the controls only where the checkpoint in view is gone from it.

        `listed` is the list this page holds (a per-page state). When the list and the choice are as they
        were, every output is a skip: switching tabs in a lecture then costs the page no redrawing (as a
        rescan and a fit of every control, two events, a click on the tab kept a 2-core laptop's page
        0.70 s in long tasks, against 0.48 s now: benchmarks/tab_switch.py). Outputs: the checkpoint
        list, `listed`, then select_checkpoint's.
        """
        choices = self.choices(fresh=True)
        now = listing(choices)
        value = current if current in {path for _, path in choices} else self.default_checkpoint()
        if value == current:
            # the list alone: a value sent back would undo a checkpoint chosen while this event was on its way
            sent = gr.skip() if now == listed else gr.update(choices=choices)
            if current:
                try:
                    self.load(current)  # cached already (it was chosen); loaded again if it was let go
                except gr.Error:
                    pass  # a checkpoint that cannot be loaded says why when it is played or chosen
            return (sent, now, *(gr.skip(),) * SELECT_OUTPUTS)
        fitted = self.select_checkpoint(value, sampler, steps, sampler_b, steps_b, n, last_kind, session)
        return (gr.update(choices=choices, value=value), now, *fitted)

    def select_checkpoint(self, checkpoint, sampler, steps, sampler_b, steps_b, n, last_kind=None, session=None):
        """Fit the controls to a checkpoint (steps up to its T, sample count for its kind) and warm it up.

        Returns (info, steps, steps_b, n, image, plot, kind): the sample count is kept while the data
        kind stays the same, unless it was left at a default, and is the checkpoint's default otherwise.
        The frame shown stays when it is of this checkpoint (opening the tab, a refresh, a restored link).
        """
        if not checkpoint:
            return (self.info(checkpoint), gr.update(), gr.update(), gr.update(), *DataView.show("image", None),
                    last_kind)
        entry = self.entry(checkpoint)
        kind = kind_of(entry)
        model, config, meta, schedule = self.load(checkpoint)
        T = schedule.T
        steps = min(whole("steps", steps or 1, 1, 10**6), T)
        steps_b = min(whole("steps", steps_b or 1, 1, 10**6), T)
        n_max = MAX_SAMPLES[kind]
        try:
            n_val = whole("number of samples", n, 1, n_max) if kind == last_kind else None
        except gr.Error:
            n_val = None
        # a count left at the default of the model before (16 digits) becomes this model's default
        # (9 for larger images): the setting its recorded default run was made with
        if n_val in {DEFAULT_SAMPLES[kind], default_samples(kind, (3, 32, 32))}:
            n_val = None
        n_val = n_val or default_samples(kind, meta["sample_shape"])
        self._warm(model, meta, n_val)
        # a session with no run yet shows nothing of another checkpoint, and the page's opening view may
        # be on its way (a tab opened by a link is selected while the link is restored): leave it be
        # unless the kind of data changes (the other component must show)
        idle = not isinstance(session, ReverseSession) or session.spec is None
        same = (session.spec.checkpoint == checkpoint) if not idle else kind == last_kind
        if not idle and not same:
            session.clear()  # the frames on screen go, and so does the run they came from
        return (self.info(checkpoint),
                gr.update(maximum=T, value=steps),
                gr.update(maximum=T, value=steps_b),
                gr.update(maximum=n_max, value=n_val),
                *((gr.skip(), gr.skip()) if same else DataView.show(kind, None)),
                kind)

    def fit_to_checkpoint(self, checkpoint, steps, steps_b, n) -> tuple:
        """(steps, steps_b, n) fitted to `checkpoint` where they cannot be its own, for the page's Play.

        A Play clicked while the page's choice of another checkpoint is on its way carries the controls
        as they were for the one before (1,000 steps of a T = 1000 model, 500 samples of a points model,
        the hidden second sampler's steps), which need not fit the new one: that Play plays the new one.
        Steps above its T become T and a sample count above its kind's most becomes its default, as
        `select_checkpoint` fits them. Values within its ranges are the user's and stay (the page then
        shows the choice's own; a Play of those is a new run); anything else is left as sent for the
        run's own checks to name. A checkpoint that cannot be loaded is left to the run to report.
        """
        try:
            _, _, meta, schedule = self.load(checkpoint)
        except gr.Error:
            return steps, steps_b, n
        kind, T = kind_of(meta), schedule.T

        def above(value, top) -> bool:
            return (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
                    and value > top)

        steps, steps_b = (T if above(v, T) else v for v in (steps, steps_b))
        if above(n, MAX_SAMPLES[kind]):
            n = default_samples(kind, meta["sample_shape"])
        return steps, steps_b, n

    def choose_checkpoint(self, checkpoint, sampler, steps, sampler_b, steps_b, n, last_kind=None, session=None,
                          eta=0.0, seed=0, compare=False, eta_b=0.0, spacing="linear"):
        """A checkpoint chosen in the list: `select_checkpoint`, and the view on the first frame of the run
        Play will play (`first_view`), with the steps the sampler's default for this T (as the event
        after this one sets them). Outputs: select_checkpoint's, then the caption and the frame slider."""
        out = self.select_checkpoint(checkpoint, sampler, steps, sampler_b, steps_b, n, last_kind, session)
        if not checkpoint:
            return (*out, gr.skip(), gr.skip())
        info, steps_u, steps_b_u, n_u, image, plot, kind = out
        try:
            first = self.first_view(checkpoint, sampler, default_steps(sampler, steps_u["maximum"]), eta, seed,
                                    n_u["value"], compare, sampler_b, steps_b_u["value"], eta_b, session, spacing)
        except gr.Error as e:  # a setting Play would refuse too (a seed out of range): the controls still fit the model
            if plot == gr.skip():
                return (*out, gr.skip(), gr.skip())
            return (*out, f"Press **Play** to start. {e.message}", gr.update(value=0, maximum=1, interactive=False))
        if all(o == gr.skip() for o in first):
            return (*out, gr.skip(), gr.skip())
        image, plot, caption, scrub = first
        return info, steps_u, steps_b_u, n_u, image, plot, kind, caption, scrub

    def _warm(self, model, meta, n: int) -> None:
        """One throw-away forward pass: the first call of a net pays for allocations and kernel choice."""
        x = torch.zeros((n, *meta["sample_shape"]), device=self.ctx.device)
        t = torch.ones(n, dtype=torch.long, device=self.ctx.device)
        with torch.no_grad():
            model(x, t)

    def measured(self, path) -> tuple:
        """What the checkpoint's recorded figures (figures.json, beside the shipped models) say of each sampler
        setting they were measured with, and a button for the fastest setting that meets the model's goal:
        hidden where there is none, or it is already the tab's default. Outputs: text, button."""
        try:
            entry, lane = self.entry(path), self.default_spec(path)[0].lanes[0]
        except gr.Error:  # nothing chosen, or a checkpoint that cannot be loaded (choosing it says why)
            return "", gr.update(visible=False)
        stored = read_figures(entry["path"])
        settings = measured_settings(stored)
        best = fastest_met(settings)
        words = measured_md(settings, (stored or {}).get("kind"))
        default = (lane.sampler, lane.steps, lane.spacing, lane.eta or 0.0)  # what the tab plays unless changed
        if best is None or (best.sampler, best.steps, best.spacing, best.eta) == default:
            return words, gr.update(visible=False)
        return words, gr.update(value=f"Use {best.label}: it meets the goal", visible=True)

    def use_measured(self, path, compare=False, sampler_b=None) -> tuple:
        """Set the sampler controls to the fastest recorded setting that meets the model's goal.
        Outputs: sampler, steps, spacing, eta, explanation."""
        best = fastest_met(measured_settings(read_figures(self.entry(path)["path"])))
        if best is None:
            raise gr.Error("This model has no recorded setting that meets its goal (only the shipped models carry "
                           "their measured figures); Evaluate measures any setting here.")
        return (gr.update(value=best.sampler), gr.update(value=best.steps), gr.update(value=best.spacing),
                gr.update(value=best.eta, visible=best.sampler == "ddim"),
                self.explanation(path, best.sampler, compare, sampler_b))

    def sampler_changed(self, path, sampler):
        """Show eta only for DDIM and suggest the sampler's usual number of steps (all T for DDPM)."""
        T = None
        if path:
            try:
                T = self.load(path)[3].T
            except gr.Error:
                pass
        steps = gr.update(value=default_steps(sampler, T)) if T else gr.update()
        return gr.update(visible=sampler == "ddim"), steps

    def explanation(self, path, sampler, compare=False, sampler_b=None) -> str:
        """The equations of the chosen sampler(s) and what the panels of this data kind show."""
        kind = None
        if path:
            try:
                kind = kind_of(self.entry(path))
            except gr.Error:
                pass
        return text.explanation(sampler, kind, bool(compare), sampler_b if compare else None)
