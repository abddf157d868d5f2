"""Forward tab: watch q(x_t | x_0) turn data into noise as the timestep slider moves.

This module lays out the widgets and wires events; the handlers are in forward_handlers, the
explanations in forward_text.
"""
from __future__ import annotations

import gradio as gr
from gradio.context import Context

from core.forward import q_sample
from core.schedules import SCHEDULES

from .. import errors, forward_frames, render
from ..lecture import Restorer, with_views
from ..inputs import builtin_datasets, dataset_size, from_dataset, from_image_file
from ..widgets import DataView, md
from . import forward_handlers as h
from . import forward_text as text

TITLE = "Forward process"


# --- layout and wiring ----------------------------------------------------------------------

def build(ctx) -> None:
    own_tab = Context.block  # the app's "Forward process" tab (explorer/app.py)
    in_tab = isinstance(own_tab, gr.Tab)  # built on its own, the tab is always in sight: its figures too
    photos = ctx.images
    datasets = builtin_datasets()
    default_photo = "astronaut" if "astronaut" in photos else next(iter(photos), None)
    if default_photo:
        inp0, source0 = from_image_file(photos[default_photo], default_photo), "Photo"
    else:  # no sample photos installed: start from a dataset
        inp0, source0 = from_dataset(datasets[0]), "Dataset"
    s0, T0, t0 = h.get_schedule("linear", h.T_DEFAULT), h.T_DEFAULT, h.T_DEFAULT // 4
    eps0 = h.noise_for(0, inp0.shape)
    x_t0 = q_sample(s0, inp0.x0, t0, eps0)
    kind0 = inp0.kind

    inp = gr.State(inp0)
    uploaded = gr.State(None)
    active = gr.State("main")
    last_T = gr.State(T0)
    chain_key = gr.State(None)  # settings of the chain run on show: reopening the tab reruns only if stale

    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=260, variant="panel", elem_classes=["de-controls"]):
            md("### Input")
            source = gr.Radio(h.SOURCES, value=source0, label="Source", show_label=False, elem_id="fw-source")
            photo = gr.Dropdown(list(photos), value=default_photo, label="Photo", visible=source0 == "Photo",
                                elem_id="fw-photo")
            dataset = gr.Dropdown(datasets, value=datasets[0], label="Dataset", visible=source0 == "Dataset",
                                  elem_id="fw-dataset")
            # the range follows the dataset chosen: the handler checks it
            index = errors.range_in_handler(gr.Slider(0, max(dataset_size(datasets[0]) - 1, 1), value=0, step=1,
                                                      label="Sample", visible=False, elem_id="fw-index"),
                                            "from 0 to the dataset's last sample")
            upload_btn = gr.UploadButton("Upload an image…", file_types=["image"], type="filepath",
                                         visible=source0 == "Upload", elem_id="fw-upload", size="sm")
            note = md(h.caption(inp0), elem_id="fw-caption")
            md("### Noise")
            schedule = gr.Dropdown(list(SCHEDULES), value="linear", label="Schedule β_t", elem_id="fw-schedule")
            T = gr.Slider(h.T_MIN, h.T_MAX, value=T0, step=10, label="Steps T", elem_id="fw-T")
            seed = gr.Number(0, precision=0, minimum=0, maximum=h.SEED_MAX, label="Noise seed",
                             elem_id="fw-seed")
            md(text.CONTROLS_HELP, elem_classes=["tight-md"])

        with gr.Column(scale=4):
            # its maximum follows T in the page; the handlers check t against the T they are given
            t = errors.range_in_handler(gr.Slider(0, T0, value=t0, step=1, elem_id="tslider",
                                                  label="Timestep t  (0 = clean data · T = pure noise)"),
                                        "from 0 to T")
            t_copy = gr.Number(t0, precision=0, label="t", visible=False)  # follows t in the browser; drives the paced figures
            with gr.Tabs() as inner:
                with gr.Tab("Noisy sample", id="main", elem_id="view-main") as tab_main:
                    with gr.Row(equal_height=True, elem_id="fw-trio"):
                        v_x0 = DataView(f"x₀: {inp0.label}", "x0img", kind0,
                                        h.show_data(inp0, inp0.x0, reference=False))
                        v_xt = DataView(h.x_label(None if kind0 == "image" else t0), "ximg", kind0,
                                        h.show_data(inp0, x_t0))
                        v_eps = DataView("noise ε (seed 0)", "epsimg", kind0, h.show_noise(inp0, eps0))
                        # in the row so that the presenter view can set the numbers beside x_t (a line below otherwise)
                        coeffs = gr.HTML(h.coefficients(s0, t0), elem_id="fw-coeffs")
                    # where the page fetches x_t's pictures as the slider moves (explorer/forward_frames.py),
                    # and the event it falls back on (points, signals, or an input the route no longer holds)
                    with gr.Row(elem_id="fw-hidden"):  # never shown
                        frames = gr.HTML(forward_frames.marker(inp0, "linear", T0, 0, pin=True), elem_id="fw-frames",
                                         container=False, padding=False)
                        noisy_go = gr.Button("x_t", elem_id="fw-noisy")
                        hist_go = gr.Button("histogram", elem_id="fw-hist-go")
                        chosen = gr.Checkbox(False, label="tab chosen", elem_id="fw-chosen")  # a select: chosen? (below)
                    # Hidden until this tab is shown: Gradio draws no hidden block, so a page that opens on
                    # another tab (a student's quiz on a phone, a link to Reverse) never loads plotly for
                    # these two (about half of a phone's page load: benchmarks/RESULTS.md, page_load).
                    # Shown by the opening view (a link or lesson stop on this tab) or by selecting the tab.
                    with gr.Row(elem_classes=["de-secondary"], elem_id="fw-figures",
                                visible=not in_tab) as figures:
                        # min_width 190: on a phone one chart under the other (side by side at 430 px the SNR axis's
                        # labels ran into its curve), while at 1024 px both stay beside the text (2 x 190 + 240 + gaps)
                        curves_plot = gr.Plot(h.curves(s0, t0), show_label=False, elem_id="fw-curves", min_width=190)
                        hist_plot = gr.Plot(h.histogram(x_t0, t0), show_label=False, elem_id="fw-hist", min_width=190)
                        with gr.Column(min_width=240):
                            md(text.MAIN)
                with gr.Tab("Compare schedules", id="compare", elem_id="view-compare") as tab_compare:
                    with gr.Row():
                        cmp_names = gr.CheckboxGroup(list(SCHEDULES), value=h.COMPARE_DEFAULT, scale=3,
                                                     label="Schedules (up to 3)", elem_id="fw-compare-names")
                        # the view's words for the desk: in the presenter view the lecturer (or the lesson card) says them
                        md(text.COMPARE, elem_classes=["tight-md", "fw-view-text"])
                    cmp_init = h.compare(inp0, h.COMPARE_DEFAULT, T0, t0, 0)
                    # one block, so that the presenter view can set the curves beside the pictures
                    with gr.Column(elem_id="fw-cmp-body"):
                        with gr.Row(equal_height=True, elem_id="fw-cmp-views"):
                            v_cmp = [DataView(n, f"cmp{i}", kind0, DataView.value_of(*cmp_init[2 * i: 2 * i + 2]))
                                     for i, n in enumerate(h.COMPARE_DEFAULT)]
                        cmp_curves = gr.Plot(cmp_init[-1], show_label=False, elem_id="fw-cmp-curves")
                with gr.Tab("Step by step", id="chain", elem_id="view-chain") as tab_chain:
                    with gr.Row():
                        md(text.CHAIN, elem_classes=["fw-view-text"])
                        chain_btn = gr.Button("Run the chain to t", variant="primary", elem_id="fw-chain-run",
                                              scale=0, min_width=200)
                    with gr.Row(equal_height=True, elem_id="fw-chain-views"):
                        v_chain = DataView("chain: x_t after t noise additions", "chainimg", kind0)
                        v_closed = DataView("closed form q(x_t | x_0)", "closedimg", kind0)
                    with gr.Row(elem_id="fw-chain-evidence"):
                        chain_hist = gr.Plot(show_label=False, elem_id="fw-chain-hist")
                        chain_md = md(text.CHAIN_IDLE, elem_id="fw-chain-stats")
                with gr.Tab("Filmstrip", id="film", elem_id="view-film") as tab_film:
                    md(text.FILM)
                    v_film = DataView("x_t at evenly spaced t", "filmimg", kind0,
                                      h.filmstrip_value(inp0, s0, eps0), height=None, show_label=False)
                with gr.Tab("Step encoding", id="encoding", elem_id="view-encoding") as tab_enc:
                    with gr.Row():
                        with gr.Column(scale=3):
                            enc_bars = gr.Plot(h.encoding_bars(t0), show_label=False, elem_id="fw-enc")
                            enc_map = gr.Plot(h.encoding_map(T0, t0), show_label=False, elem_id="fw-enc-map")
                        with gr.Column(scale=2, min_width=240):
                            md(text.ENCODING, elem_classes=["fw-enc-text"])

    # --- wiring ---
    controls = [inp, schedule, T, t, seed]
    x_outputs = [*v_xt.outputs, coeffs]
    cmp_outputs = [*(o for v in v_cmp for o in v.outputs), cmp_curves]
    chain_outputs = [*v_chain.outputs, *v_closed.outputs, chain_hist, chain_md, chain_key]
    main_outputs = [*v_x0.outputs, *v_xt.outputs, *v_eps.outputs, coeffs, curves_plot, hist_plot, frames]
    all_outputs = [*main_outputs, *cmp_outputs, *v_film.outputs, enc_bars, enc_map, *chain_outputs]
    t_outputs = [curves_plot, hist_plot, *cmp_outputs, enc_bars, enc_map]
    fast = dict(trigger_mode="always_last", show_progress="hidden")

    # While dragging: the image first (cheap); the curves' markers move in the browser; the other
    # figures follow in a separate, paced event so they never hold the image up. That event hangs
    # off a hidden copy of t: with trigger_mode="always_last" a slow event on the slider itself
    # would, when it finishes, fire the slider's trigger again, re-running the image event too.
    # An image's x_t, its numbers and its histogram come from the frame route (forward_frames.js, one
    # cached GET per move); the page clicks the hidden buttons for points and signals (x_t), or when
    # the route cannot answer (x_t and the histogram).
    noisy_go.click(h.noisy, [*controls, active], x_outputs, api_name="noisy", queue=h.NOISY_QUEUED, **fast)
    hist_go.click(h.x_t_histogram, [*controls, active], hist_plot, api_visibility="private", **fast)
    # One event in the page per move: ask for the picture, slide the curves' markers, and pass t to its
    # copy (left as it was while the route brings the histogram too: then no Gradio event at all).
    t.input(None, t, t_copy, js="(t) => { window.deForwardMove && window.deForwardMove(t); const shown = ("
            + render.markers_js("fw-curves", "fw-cmp-curves")
            + ")(t); return window.deForwardCopy ? window.deForwardCopy(shown) : shown; }")
    t_copy.change(h.t_views_live, [inp, schedule, T, t_copy, seed, cmp_names, active], t_outputs,
                  api_name="t_views", concurrency_limit=None, **fast)  # the pacing pause holds up no one else

    # Public endpoints first: a later event with the same function gets a suffixed api name.
    gr.on([schedule.input, seed.input], h.refresh, [*controls, cmp_names, active], all_outputs,
          api_name="refresh", show_progress="hidden", trigger_mode="always_last")

    def do_refresh(event):
        return event.then(h.refresh, [*controls, cmp_names, active], all_outputs, show_progress="hidden",
                          api_visibility="private")

    select_input = h.make_input_selector(photos)
    selector_outputs = [inp, photo, dataset, index, upload_btn, note]
    selector_inputs = [source, photo, dataset, index, uploaded]
    do_refresh(upload_btn.upload(h.upload, upload_btn, [uploaded, source], api_name="upload")
               .success(select_input, selector_inputs, selector_outputs, api_name="select_input"))
    for trigger in (source.input, photo.input, dataset.input):
        do_refresh(trigger(select_input, selector_inputs, selector_outputs, api_visibility="private"))
    do_refresh(index.release(select_input, selector_inputs, selector_outputs, api_visibility="private"))
    do_refresh(T.input(h.set_T, [T, t, last_T], [t, last_T, t_copy], api_visibility="private",
                       trigger_mode="always_last"))

    cmp_names.input(h.check_compare, cmp_names, cmp_names, api_visibility="private").then(
        h.compare, [inp, cmp_names, T, t, seed], cmp_outputs, api_name="compare", show_progress="hidden")

    chain_btn.click(h.chain, controls, chain_outputs, api_name="chain", concurrency_id="chain",
                    concurrency_limit=2)

    # Views follow the slider only in the sub-tab in sight; a sub-tab catches up when opened.
    quiet = dict(show_progress="hidden", api_visibility="private")
    # The whole "Noisy sample" view for API clients (the page itself updates it piece by piece).
    gr.Button(visible=False).click(h.noisy_sample, controls, main_outputs, api_name="noisy_sample",
                                   show_progress="hidden")
    # The page fires the first sub-tab's select as it loads: `before` (the sub-tab shown until then) lets
    # that one pass without recomputing, since a stale copy could land after a restored link's views.
    before = gr.State("main")
    for tab, name in ((tab_main, "main"), (tab_compare, "compare"), (tab_chain, "chain"),
                      (tab_film, "film"), (tab_enc, "encoding")):
        ev = tab.select(lambda was, name=name: (name, was), active, [active, before], api_visibility="private",
                        queue=False)
        if name == "main":
            ev.then(h.back_to_main, [*controls, before], main_outputs, api_visibility="private",
                    show_progress="hidden")
        elif name == "compare":
            ev.then(h.t_views, [*controls, cmp_names, active], t_outputs, **quiet)
        elif name == "chain":
            ev.then(h.chain, [*controls, chain_key], chain_outputs, api_visibility="private", concurrency_id="chain")
        elif name == "film":
            ev.then(h.filmstrip, [inp, schedule, T, seed], v_film.outputs, api_name="filmstrip",
                    show_progress="hidden")
        else:
            ev.then(h.step_encoding, [T, t], [enc_bars, enc_map], api_name="step_encoding",
                    show_progress="hidden")

    # Gradio also selects the tab it opens on as the page is drawn, before the link's view (which may name
    # another tab) has landed: that select is not a choice, and the opening view decides instead. The
    # page says which it is: the ready marker (explorer/lecture) comes with the opening view.
    if in_tab:
        own_tab.select(lambda chosen: gr.Row(visible=True) if chosen else gr.skip(), chosen, figures,
                       js="() => !!document.querySelector('#de-ready [data-ready]')", queue=False,
                       show_progress="hidden", api_visibility="private")
    restore = h.make_restorer(photos, datasets, select_input)

    def restore_with_figures(values: dict, problems: list[str]) -> tuple:
        shown = gr.Row(visible=True) if values.get("tab", "forward") == "forward" else gr.skip()
        return (*restore(values, problems), shown)

    return with_views(Restorer([source, photo, dataset, index, upload_btn, note, inp, schedule, T, t, seed, last_T,
                                t_copy, *main_outputs, figures], restore_with_figures), "forward", inner)
