"""How long the Reverse tab's export takes for a 250-step trajectory, per model and format.

Each model runs its sampler for 250 steps (251 recorded frames) in the tab's handlers, then
`ReverseHandlers.export` writes GIF and MP4 as the Export button does (it picks at most 90 frames
for GIF and 360 for MP4). Timed: the whole export call (drawing the frames, encoding, writing).

    python benchmarks/export_speed.py [--device-note "2-core CPU, no GPU"] [--no-write]

Writes its section of benchmarks/RESULTS.md (between its own markers) and prints the numbers.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402
import torch  # noqa: E402

from core.threads import default_threads  # noqa: E402
from explorer.context import AppContext, Settings  # noqa: E402
from explorer.tabs.checkpoint_picker import kind_of  # noqa: E402
from explorer.tabs.reverse_handlers import ReverseHandlers  # noqa: E402
from explorer.tabs.reverse_session import ReverseSession, default_samples  # noqa: E402
from _results import write_section  # noqa: E402  (benchmarks/_results.py, beside this script)

RESULTS = ROOT / "benchmarks" / "RESULTS.md"
BEGIN, END = "<!-- export_speed: begin -->", "<!-- export_speed: end -->"
MODELS = ("digits", "shapes", "swiss_roll", "signals_gru")
TARGET_S = 10.0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device-note", default="2-core CPU, no GPU")
    p.add_argument("--no-write", action="store_true")
    p.add_argument("--note", default="")
    args = p.parse_args()
    torch.set_num_threads(default_threads())
    h = ReverseHandlers(AppContext(Settings(device="cpu")))
    paths = {e["name"]: e["path"] for e in h.checkpoints(fresh=True)}
    gr.Info = lambda *a, **k: None  # outside an event there is no browser to tell
    rows = []
    for name in MODELS:
        path = paths[name]
        _, _, meta, schedule = h.load(path)
        n = default_samples(kind_of(h.entry(path)), meta["sample_shape"])
        session = ReverseSession()
        spec, loaded = h.spec(path, "ddpm", 250, 0.0, 3, n)
        h._start(session, spec, loaded)
        while h._advance(session):
            pass
        for fmt in ("gif", "mp4"):
            t0 = time.perf_counter()
            out = Path(h.export(fmt, session))
            seconds = time.perf_counter() - t0
            load = os.getloadavg()[0]
            rows.append((name, n, len(session.traj), fmt, seconds, out.stat().st_size, load))
            print(f"{name} n={n}: {len(session.traj)} frames -> {fmt}: {seconds:.1f} s, "
                  f"{out.stat().st_size / 2**20:.1f} MB (load {load:.1f})", flush=True)
    if args.no_write:
        return
    lines = [BEGIN, "## Reverse tab: export of a 250-step trajectory (`benchmarks/export_speed.py`)", "",
             f"Device: {args.device_note}; torch {torch.__version__}, {torch.get_num_threads()} torch thread(s); "
             f"{time.strftime('%Y-%m-%d')}.", "",
             "| model | samples | recorded frames | format | export time | file | load (1 min) | target |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, n, frames, fmt, seconds, size, load in rows:
        lines.append(f"| {name} | {n} | {frames} | {fmt.upper()} | {seconds:.1f} s | {size / 2**20:.1f} MB "
                     f"| {load:.1f} | < {TARGET_S:.0f} s |")
    lines += ["", "GIF exports at most 90 frames (12 per second), MP4 at most 360 (24 per second), spread evenly "
              "over the run and always with the last."] + ([args.note] if args.note else []) + [END]
    block = "\n".join(lines)
    write_section(block, BEGIN, END, RESULTS)
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
