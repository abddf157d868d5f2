"""What the Reverse tab's 2-D figure costs the browser to draw: as the app builds it, and drawn the old way.

    python benchmarks/points_figure_draw.py [--rounds 7]

The figure at rest (after Play, on Pause, a step or a scrub) of a 2-D model: the field's arrows, the
trails, x_t, predicted x0 over the training data. It is built by `explorer.animation.points_figure`
from the shipped swiss_roll model's own run (DDIM 50, 500 samples, its data), then drawn with
`Plotly.newPlot` in headless chromium (plotly.js from the plotly package) until the next frame,
alternating with the same figure in its old form: the data as 1,500 SVG markers and the arrow heads as
Plotly's "arrow" markers (one styled marker per point of the field). Medians over the rounds.
Writes its section of benchmarks/RESULTS.md.
"""
from __future__ import annotations

import argparse
import copy
import functools
import http.server
import json
import os
import socketserver
import statistics
import sys
import threading
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import plotly  # noqa: E402
import torch  # noqa: E402

from _results import write_section  # noqa: E402  (benchmarks/_results.py, beside this script)
from _scratch import scratch_dir  # noqa: E402  (benchmarks/_scratch.py, beside this script)
from core.checkpoint import load  # noqa: E402
from core.samplers import get_sampler  # noqa: E402
from core.schedules import make_schedule  # noqa: E402
from core.forward import model_predictions  # noqa: E402
from explorer import animation, render  # noqa: E402
from explorer.tabs.reverse_session import reference_points  # noqa: E402
from explorer.trajectory import Lane, snapshot  # noqa: E402

BEGIN, END = "<!-- points_figure_draw: begin -->", "<!-- points_figure_draw: end -->"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PAGE = """<html><head><script src="plotly.min.js"></script></head>
<body><div id="g" style="width:1200px;height:360px"></div></body></html>"""
DRAW = """async (f) => { const g = document.getElementById('g'); Plotly.purge(g);
  await new Promise((ok) => setTimeout(ok, 50)); const t = performance.now();
  await Plotly.newPlot(g, f.data, f.layout, {displayModeBar: false});
  await new Promise((ok) => requestAnimationFrame(() => setTimeout(ok, 0)));
  return performance.now() - t; }"""


def figure_now() -> tuple[dict, np.ndarray]:
    """The swiss_roll model's closing figure of a DDIM 50 run, as the app builds it, and its data."""
    model, config, meta = load(ROOT / "assets" / "checkpoints" / "swiss_roll", device="cpu")
    model.eval()
    schedule = make_schedule(config.diffusion.schedule, config.diffusion.T)
    steps = list(get_sampler("ddim")(model, schedule, (500, 2), generator=torch.Generator().manual_seed(0),
                                     steps=50, prediction=config.diffusion.prediction))
    snaps = [snapshot("points", s.i, s.n, s.t, s.x_t, s.x0, s.eps) for s in steps]
    axis = np.linspace(-3.2, 3.2, 17, dtype=np.float32)
    grid = np.stack(np.meshgrid(axis, axis), -1).reshape(-1, 2)
    last = steps[-1]
    with torch.no_grad():
        _, eps = model_predictions(model, schedule, torch.from_numpy(grid), last.t, config.diffusion.prediction)
    data = reference_points(config.data.name, json.dumps(config.data.params, sort_keys=True))
    lane = Lane("ddim", "DDIM (eta 0)", 50)
    fig = animation.points_figure((snaps[-1],), (lane,), [snaps[-8:]], [(grid, eps.numpy(), 6.4 / 16)], data)
    return json.loads(fig.to_json()), data


def old_form(fig: dict, data: np.ndarray) -> dict:
    """The same figure as drawn before: the data as SVG markers, the arrow heads as arrow markers."""
    old = copy.deepcopy(fig)
    images = old["layout"].pop("images", [])
    for tr in old["data"]:
        if tr.get("name") == "-eps field":  # back to shaft segments with an arrow marker at each tip
            xs, ys = tr["x"], tr["y"]
            tr["x"] = [v for k in range(0, len(xs), 7) for v in (xs[k], xs[k + 1], None)]
            tr["y"] = [v for k in range(0, len(ys), 7) for v in (ys[k], ys[k + 1], None)]
            tr["mode"] = "lines+markers"
            tr["marker"] = dict(symbol="arrow", angleref="previous", size=[0, 7, 0] * (len(tr["x"]) // 3),
                                color=animation.FIELD_COLOR)
    for im in images:
        old["data"].append(dict(type="scatter", mode="markers", x=data[:, 0].round(3).tolist(),
                                y=data[:, 1].round(3).tolist(), xaxis=im["xref"], yaxis=im["yref"], name="data",
                                hoverinfo="skip", marker=dict(size=3, color=render.GREY, opacity=0.35)))
    return old


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=7)
    a = p.parse_args()
    from playwright.sync_api import sync_playwright

    fig, data = figure_now()
    forms = {"as the app builds it (data as one picture, heads as strokes)": fig,
             "old form (1,500 data markers, arrow markers)": old_form(fig, data)}
    folder = scratch_dir()
    (folder / "index.html").write_text(PAGE)
    (folder / "plotly.min.js").write_bytes((Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_bytes())

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    load_before = os.getloadavg()
    times = {k: [] for k in forms}
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1366, "height": 768})
            page.goto(f"http://127.0.0.1:{server.server_address[1]}/index.html")
            page.evaluate(DRAW, fig)  # warm-up: plotly's first plot compiles its code
            for _ in range(a.rounds):
                for name, f in forms.items():  # interleaved: a busy moment hits both
                    times[name].append(page.evaluate(DRAW, f))
            browser.close()
    finally:
        server.shutdown()
    load = os.getloadavg()
    med = {k: statistics.median(v) for k, v in times.items()}
    now, old = med.values()
    rows = [f"| {k} | {len(json.dumps(forms[k])) / 1024:.0f} KB | {m:.0f} ms | {min(times[k]):.0f}-{max(times[k]):.0f} ms |"
            for k, m in med.items()]
    for r in rows:
        print(r)
    section = f"""{BEGIN}
## Reverse tab: drawing the 2-D figure at rest (`benchmarks/points_figure_draw.py`)

Device: {os.cpu_count()}-core CPU, no GPU, headless chromium, plotly.js {plotly.__version__} (the plotly package's);
{date.today()}; load average before {load_before[0]:.1f}, after {load[0]:.1f}. The shipped swiss_roll model's figure
after a DDIM 50 run of 500 samples (field of 17 x 17 arrows, trails, x_t, predicted x0 over 1,500 points
of its data), `Plotly.newPlot` until the next frame; {a.rounds} rounds, the two forms interleaved.

| figure | JSON | draw, median | range |
| --- | ---: | ---: | ---: |
{chr(10).join(rows)}

The figure as built now draws in {now / old:.2f} of the old form's time ({old / now:.1f}x faster): it is drawn
after every Play, Pause, step and scrub of a 2-D model, and was the one long task of a short run.
{END}"""
    write_section(section, BEGIN, END)
    return 0


if __name__ == "__main__":
    sys.exit(main())
