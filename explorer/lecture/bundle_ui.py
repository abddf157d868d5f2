"""The bundle buttons of the lecture bar: Export bundle (the view in sight as a zip) and Open bundle.

Export reads the view's settings in the browser (the query string page.js keeps in step with the
view) and hands them to `bundles.export_bundle` with the Reverse tab's checkpoints and recorded
runs. Open imports a zip into the user's runs folder, where the Reverse tab lists checkpoints, and
applies its settings through the same function as a link and a lesson stop (`lecture._apply`).
"""
from __future__ import annotations

from pathlib import Path

import gradio as gr

from .. import animation, tempfiles
from ..tabs.checkpoint_picker import checkpoint_label
from ..tabs.reverse_handlers import ReverseHandlers
from ..tabs.reverse_session import ReverseSession
from . import Restorer, _apply, bundles, url_state

# The view's settings as page.js writes them to the URL (read afresh; location.search once the page is
# ready is the same string, up to 0.4 s late)
READ_VIEW_JS = """(q) => {
  const ready = document.querySelector('#de-ready [data-ready]') && window.__deReadView;
  return ready ? window.__deReadView() : location.search.replace(/^\\?/, '');
}"""


def wire(demo: gr.Blocks, tabs: gr.Tabs, restorers: list[Restorer]) -> None:
    """Add Export bundle, its download and Open bundle to the lecture bar (#de-bar) and wire them."""
    reverse = next((r.fn.__self__ for r in restorers if isinstance(getattr(r.fn, "__self__", None),
                                                                    ReverseHandlers)), None)
    bar = next((b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "de-bar"), None)
    if reverse is None or bar is None:
        return  # no Reverse tab (its checkpoints and recordings) or no bar: no bundles
    views = [tabs, *(o for r in restorers for o in r.outputs)]
    with bar:
        export = gr.Button("Export bundle", elem_id="de-bundle-export", size="sm", min_width=60, scale=0)
        download = gr.DownloadButton("⬇ Download bundle", elem_id="de-bundle-download", size="sm", min_width=60,
                                     scale=0, visible=False)
        opener = gr.UploadButton("Open bundle", elem_id="de-bundle-open", size="sm", min_width=60, scale=0,
                                 file_types=[".zip"], file_count="single", type="filepath")
        query = gr.Textbox(visible=False)

    def do_export(q: str):
        values, problems = url_state.read(bundles._params(q))
        try:
            path = bundles.export_bundle(q, tempfiles.mkdtemp(prefix="bundle-"),
                                         find_checkpoint=lambda name: find_checkpoint(reverse, name),
                                         recorded_run=lambda v, folder: recorded_run(reverse, v, folder),
                                         render_frames=lambda v, run: render_frames(reverse, restorers, v, run),
                                         left_out=problems)
        except bundles.BundleError as e:
            raise gr.Error(f"This view cannot be exported: {e}") from None
        if problems:
            gr.Warning("Left out of the bundle: " + "; ".join(problems))
        return gr.DownloadButton(value=str(path), visible=True, label=f"⬇ {path.name}")

    export.click(do_export, query, download, js=READ_VIEW_JS, api_visibility="private",
                 concurrency_id="bundle-export")

    def do_open(file):
        if not file:
            raise gr.Error("No file arrived; choose a bundle .zip written by Export bundle.")
        try:
            got = bundles.import_bundle(file, Path(reverse.ctx.settings.runs_dir))
        except bundles.BundleError as e:
            raise gr.Error(f"This bundle cannot be opened: {e}") from None
        reverse.checkpoints(fresh=True)  # the imported checkpoint joins the list now
        problems = list(got.problems)
        out = _apply(got.values, problems, restorers)
        _list_checkpoints(reverse, restorers, out)
        if problems:
            gr.Warning("The bundle is open; some of it cannot be used: " + "; ".join(problems) + ".")
        return out

    opener.upload(do_open, opener, views, api_visibility="private", concurrency_id="bundle-open",
                  show_progress="hidden")


def find_checkpoint(h: ReverseHandlers, name: str) -> Path | None:
    """The listed checkpoint a view's `checkpoint` names (its name or label, as a link's restorer matches)."""
    for e in h.checkpoints(fresh=True):
        if name in (e["name"], checkpoint_label(e)):
            return Path(e["path"])
    return None


def _setting(h: ReverseHandlers, values: dict, folder: Path) -> tuple:
    """(spec, loaded) of the view, read as the Reverse tab reads a link to it (`ReverseLinks.link_setting`:
    the defaults for settings it leaves out, and the second sampler beside the first when it compares two)."""
    got = h.link_setting(values, [])
    if got is None or Path(got["path"]).resolve() != Path(folder).resolve():
        raise gr.Error(f"the view's checkpoint is not {folder}")
    return h.link_spec(got)


def recorded_run(h: ReverseHandlers, values: dict, folder: Path):
    """(Trajectory, spec) of the run of exactly this setting when the app has it recorded, else None.

    A run is recorded once it was played to the end (in any session) or shipped beside its checkpoint;
    a bundle of a run not yet complete carries the settings, and the import computes the run again.
    """
    try:
        spec, _ = _setting(h, values, folder)
    except gr.Error:
        return None
    traj = h.recordings.get(spec)
    return None if traj is None else (traj, spec)


def render_frames(h: ReverseHandlers, restorers: list[Restorer], values: dict, run) -> list:
    """The view's pictures: a Reverse run's frames (evenly picked), or the Forward tab's x_0, x_t and eps."""
    if run is not None:
        traj, spec = run
        session = ReverseSession()
        h._start(session, spec, _setting(h, values, Path(spec.checkpoint))[1])  # the model, schedule, 2-D reference
        session.traj, session.clock = traj, None  # the run being exported, even if the cache let it go meanwhile
        frames = []
        for k in animation.pick_frames(len(traj), bundles.MAX_FRAMES):
            words = ["the sample x0" if s.done else f"step {s.i + 1} of {s.n}, t = {s.t}" for s in traj.frame(k)]
            if len(words) > 1:  # samplers side by side: each lane's step, by its label
                words = [f"{lane.label}: {w}" for lane, w in zip(traj.lanes, words)]
            frames.append((f"frame {k + 1} of {len(traj)}: {'; '.join(words)}", h.raster(session, k)))
        return frames
    if values.get("tab", "forward") != "forward":
        return []
    pictures = []
    for r in restorers:  # what a link to this view shows: the labelled images the Forward restorer sends
        if isinstance(getattr(r.fn, "__self__", None), ReverseHandlers):
            continue
        try:
            updates = r.fn(dict(values), [])
        except gr.Error:
            continue
        for u in updates:
            if isinstance(u, dict) and u.get("visible") and "label" in u and hasattr(u.get("value"), "shape"):
                pictures.append((str(u["label"]), u["value"]))
    return pictures[:bundles.MAX_FRAMES]


def _list_checkpoints(h: ReverseHandlers, restorers: list[Restorer], out: list) -> None:
    """Give the Reverse checkpoint dropdown the fresh list, so the imported checkpoint shows by its label."""
    k = 1
    for r in restorers:
        for j, comp in enumerate(r.outputs):
            if getattr(comp, "elem_id", None) == "rv-ckpt" and isinstance(out[k + j], dict):
                out[k + j] = {**out[k + j], "choices": h.choices()}
        k += len(r.outputs)
