"""Evaluate tab: how good is a checkpoint? Figures with intervals and real-data floors, their history
over a run's checkpoints, samples beside real data, and a blind real-or-generated quiz for a class.

Handlers are in `evaluate_handlers.py`; this module lays out widgets and wires events.
"""
from __future__ import annotations

import gradio as gr

from core.evaluate import MIN_N
from core.samplers import SAMPLERS

from .. import charts
from ..lecture import Restorer, with_views
from ..widgets import DataView, md
from .evaluate_figures import EVALUATE_PROMPT, progress_html
from .evaluate_handlers import DEFAULT_N, PAIRS_LABEL, PAIRS_PROMPT, SEED_MAX, EvaluateHandlers, mse_at_rest
from .evaluate_quiz import QUIZ_MAX_PER_SOURCE

TITLE = "Evaluate"

INTRO = """\
**How to read the figures.** Each is computed on **n** generated samples, with a bootstrap
interval. Its **floor** is the same figure for real data: the mean ± spread over several
independent real sets of the same n (2-D toys: sliced Wasserstein against 200,000 real points;
digits, with no fresh data to draw: one real set and bootstrap resamples of it).
*Against the floor* gives the ratio (×) or difference (+) with an interval that counts the noise
of both the samples and the real draws:
- interval covers ×1 (or +0): **indistinguishable from data** at this n;
- interval wholly on the worse side: **worse than data**, a real flaw;
- wholly on the better side: beyond a fresh real draw, which can mean copies of the training set.

More samples narrow the intervals: a model that passes at n = 200 may fail at n = 2000.
"""

MEMORISATION_HELP = """\
**Diversity**: do the samples differ from each other as much as real data does? The Figures table
gives their mean pairwise distance against real data's own. **Memorisation**: does the model copy
its training set? Each generated sample's nearest training example, against how near a typical real
sample lies to one; near-copies sit much closer. Samples that look like the data yet copy no single
training example are the model's own making: its creativity.
"""

QUIZ_HELP = """\
**For a class.** The teacher picks an image checkpoint and presses *New quiz*: the app draws
real pictures and as many generated ones. Everyone (each browser is one participant) presses
*Take the quiz*, rates how realistic each picture looks and says *Real* or *Generated*. The
tallies gather every participant: a model whose pictures fool people half the time is as good as
this audience can tell.
"""


def build(ctx) -> Restorer:
    h = EvaluateHandlers(ctx)
    choices = h.choices()
    ckpt0 = next((p for _, p in choices if "digits" in p), choices[0][1] if choices else None)
    try:
        info0, n0 = h.select(ckpt0)
    except gr.Error:
        ckpt0, info0, n0 = None, "*No checkpoint selected.*", DEFAULT_N["image"]

    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=300, variant="panel", elem_classes=["de-controls"]):
            md("### Checkpoint")
            ckpt = gr.Dropdown(choices, value=ckpt0, label="Checkpoint", elem_id="ev-ckpt", allow_custom_value=True)
            refresh = gr.Button("↻ Refresh the list", size="sm", elem_id="ev-refresh")
            info = md(info0, elem_id="ev-info", elem_classes=["tight-md"])
            md("### Samples")
            n = gr.Slider(MIN_N, 5000, value=n0, step=10, label="Number of samples n", elem_id="ev-n")
            with gr.Row():
                sampler = gr.Dropdown(list(SAMPLERS), value="ddim", label="Sampler", elem_id="ev-sampler")
                steps = gr.Number(50, precision=0, minimum=1, label="Sampler steps", elem_id="ev-steps")
            seed = gr.Number(0, precision=0, minimum=0, maximum=SEED_MAX, label="Seed", elem_id="ev-seed")
            with gr.Row():
                run = gr.Button("Evaluate", variant="primary", elem_id="ev-run")
                cancel = gr.Button("Cancel", variant="stop", elem_id="ev-cancel")
            progress = gr.HTML(progress_html(0, "ready"), elem_id="ev-progress")
            md(INTRO, elem_classes=["tight-md"])

        with gr.Column(scale=3):
            with gr.Tabs() as inner:
                with gr.Tab("Figures", id="figures", elem_id="view-figures"):
                    table = gr.HTML(h.figures_at_rest(ckpt0) if ckpt0 else EVALUATE_PROMPT, elem_id="ev-table")
                    with gr.Row():
                        mse_plot = gr.Plot(h.mse_view_at_rest(ckpt0) if ckpt0 else mse_at_rest(), show_label=False,
                                           elem_id="ev-mse", min_width=300)  # a phone: under the notes, full width
                        warnings = md("", elem_id="ev-warnings")
                with gr.Tab("Visual inspection", id="visual", elem_id="view-visual"):
                    md("Generated samples beside real ones; the full-screen button zooms in.")
                    # a shipped model opens on the samples of its recorded run beside real ones
                    rec = h.recorded_samples(ckpt0) if ckpt0 else None
                    kind_rec, gen_rec, real_rec, gen_label, real_label = rec or (
                        "image", None, None, "generated samples", "real samples")
                    with gr.Row(equal_height=True):
                        samples = DataView(gen_label, "ev-samples", kind_rec, gen_rec, height=520)
                        real = DataView(real_label, "ev-real", kind_rec, real_rec, height=520)
                with gr.Tab("Memorisation", id="memorisation", elem_id="view-memorisation"):
                    # at the desk; a presenter's lesson card says it instead, leaving the screen to the pairs
                    md(MEMORISATION_HELP, elem_id="ev-memorisation-help", elem_classes=["de-secondary"])
                    # a shipped model opens on the samples of its recorded run closest to the training set
                    kind_p, pairs0, caption0 = (h.recorded_pairs(ckpt0) if ckpt0 else None) or (
                        "image", None, PAIRS_PROMPT)
                    pairs = DataView(PAIRS_LABEL, "ev-pairs", kind_p, pairs0, height=300)
                    pairs_caption = md(caption0, elem_id="ev-pairs-caption")
                with gr.Tab("History over the run", id="history", elem_id="view-history"):
                    md("Evaluates every checkpoint in the chosen checkpoint's folder (a run saved with "
                       "*Checkpoint every* in the Train tab has several), with fewer samples each, and plots "
                       "how the figures moved as training went on.")
                    history_btn = gr.Button("Evaluate the run's checkpoints", elem_id="ev-history-run")
                    history_progress = gr.HTML("", elem_id="ev-history-progress")
                    # before a run is evaluated, a chart saying what will come rather than an empty box
                    history_plot = gr.Plot(charts.metric_history([], {}), show_label=False, elem_id="ev-history")
                    history_table = md("", elem_id="ev-history-table")
                with gr.Tab("Human evaluation", id="quiz", elem_id="view-quiz"):
                    md(QUIZ_HELP, elem_id="qz-help", elem_classes=["de-secondary"])  # the presenter says it
                    with gr.Row():
                        per_source = gr.Slider(2, QUIZ_MAX_PER_SOURCE, value=10, step=1,
                                               label="Pictures per source (real and generated)", elem_id="qz-count")
                        quiz_new = gr.Button("New quiz from this checkpoint", elem_id="qz-new")
                    quiz_status = md(h.quiz_status(), elem_id="qz-status")
                    with gr.Row(equal_height=False):
                        with gr.Column(scale=2):
                            take = gr.Button("Take the quiz", variant="primary", elem_id="qz-take")
                            picture = gr.Image(label="Real or generated?", format="png", interactive=False,
                                               height=320, elem_id="qz-image", buttons=["fullscreen"])
                            quiz_progress = md("", elem_id="qz-progress")
                            with gr.Group(visible=False) as vote_group:
                                rating = gr.Radio([1, 2, 3, 4, 5], value=3, label="How realistic does it look? "
                                                  "(1 = clearly fake, 5 = perfectly real)", elem_id="qz-rating")
                                with gr.Row():
                                    vote_real = gr.Button("Real", elem_id="qz-real")
                                    vote_gen = gr.Button("Generated", elem_id="qz-generated")
                        with gr.Column(scale=3):
                            with gr.Row():
                                show = gr.Button("Show the results", elem_id="qz-show")
                                reveal = gr.Button("Reveal the answers", elem_id="qz-reveal")
                                hide = gr.Button("Hide the answers", elem_id="qz-hide")
                            summary = md("", elem_id="qz-summary")
                            table_items = gr.Dataframe(headers=["picture", "source", "answers", "said real",
                                                                "said generated", "mean rating"],
                                                       interactive=False, elem_id="qz-table", max_height=260)
                            gallery = gr.Gallery(label="Every picture (once revealed: R real, G generated; ? not yet "
                                                       "revealed or not answered); answers saying real / all",
                                                 columns=5, height=240, object_fit="contain", elem_id="qz-gallery")
                            with gr.Row():
                                export = gr.Button("Export answers as CSV", elem_id="qz-export")
                                csv_file = gr.File(label="CSV", interactive=False, elem_id="qz-csv", visible=False)

    session = gr.State(None)
    settings = [ckpt, n, sampler, steps, seed]
    views = [table, warnings, mse_plot, *samples.outputs, *real.outputs, *pairs.outputs, pairs_caption]
    figures = gr.JSON(visible=False)

    ev = run.click(h.evaluate, settings, [progress, *views, figures], api_name="evaluate",
                   concurrency_id="evaluate", concurrency_limit=1, show_progress="hidden")
    hist = history_btn.click(h.history, settings, [history_progress, history_plot, history_table],
                             api_name="evaluate_history", concurrency_id="evaluate", show_progress="hidden")
    cancel.click(lambda: progress_html(0, "cancelled", "cancelled"), None, progress, cancels=[ev, hist],
                 api_name="evaluate_cancel", queue=False)

    ckpt.select(h.select, ckpt, [info, n], api_name="evaluate_select", show_progress="hidden")
    # a checkpoint chosen (not the tab opened again: that keeps figures measured here) shows its recorded figures
    ckpt.select(h.figures_view_at_rest, ckpt, [table, warnings, mse_plot], api_visibility="private",
                show_progress="hidden")
    ckpt.select(h.inspection_at_rest, ckpt, [*samples.outputs, *real.outputs], api_visibility="private",
                show_progress="hidden")
    ckpt.select(h.pairs_at_rest, ckpt, [*pairs.outputs, pairs_caption], api_visibility="private",
                show_progress="hidden")
    for trigger in (refresh.click,) + ((gr.context.Context.block.select,)
                                       if isinstance(gr.context.Context.block, gr.Tab) else ()):
        trigger(h.refresh, ckpt, ckpt, api_visibility="private", show_progress="hidden").then(
            h.select, ckpt, [info, n], api_visibility="private", show_progress="hidden")

    quiz_new.click(h.quiz_new, [ckpt, per_source, seed], quiz_status, api_name="quiz_new")
    take.click(h.quiz_next, session, [session, picture, quiz_progress, vote_group], api_name="quiz_next")
    results = [summary, table_items, gallery]
    vote_outputs = [session, picture, quiz_progress, vote_group, *results]
    vote_real.click(lambda s, r: h.quiz_vote(s, "real", r), [session, rating], vote_outputs, api_name="quiz_vote_real")
    vote_gen.click(lambda s, r: h.quiz_vote(s, "generated", r), [session, rating], vote_outputs,
                   api_name="quiz_vote_generated")
    show.click(h.quiz_results, None, results, api_name="quiz_results").then(
        h.quiz_status, None, quiz_status, api_visibility="private")
    reveal.click(lambda: h.quiz_reveal(True), None, results, api_name="quiz_reveal")
    hide.click(lambda: h.quiz_reveal(False), None, results, api_name="quiz_hide")
    export.click(h.quiz_export, None, csv_file, api_name="quiz_export").success(
        lambda: gr.update(visible=True), None, csv_file, api_visibility="private", queue=False)
    # a link or a lesson stop opens one of the inner views (figures, visual, memorisation, history, quiz)
    return with_views(Restorer([], lambda values, problems: ()), "evaluate", inner)
