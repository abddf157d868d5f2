"""What 2-D reverse playback costs the browser: main-thread blocking and distinct frames painted.

    python benchmarks/reverse_2d_playback.py [--threads 1]

Opens the Reverse tab in headless chromium with the shipped swiss_roll model and plays DDIM 50 and
DDPM 1000 at top speed (the setting that froze the browser when every frame was a plotly figure).
While it plays, a PerformanceObserver records long tasks (main-thread work over 50 ms) and a
`requestAnimationFrame` loop counts the distinct frames on screen at paint time. Writes its section of benchmarks/RESULTS.md with the load average.
Targets (the playback issue): main thread blocked < 30% of the time, >= 10 distinct frames a second
where the server keeps up.
"""
from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import torch  # noqa: E402

from explorer.app import build_app, launch_options  # noqa: E402
from explorer.context import Settings  # noqa: E402

RESULTS = ROOT / "benchmarks" / "RESULTS.md"
BEGIN, END = "<!-- reverse_2d_playback: begin -->", "<!-- reverse_2d_playback: end -->"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
RUNS = {"DDIM 50": ("DDIM", 50), "DDPM 1000": ("DDPM", 1000)}

# Each animation frame (a paint opportunity) looks at the frame picture: a src not seen before is a
# distinct frame painted. (The picture's <img> appears only once playing starts: 2-D models show a
# plot at rest.)
WATCH = """() => {
  window.__lt = 0; window.__frames = new Set(); window.__t0 = performance.now();
  new PerformanceObserver(l => { for (const e of l.getEntries()) window.__lt += e.duration; })
    .observe({type: 'longtask', buffered: false});
  const tick = () => {
    const img = document.querySelector('#rv-frame img');
    if (img && img.complete && img.src) window.__frames.add(img.src);
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}"""
READ = "() => ({seconds: (performance.now() - window.__t0) / 1000, long_ms: window.__lt, frames: window.__frames.size})"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1, help="torch threads of the server (launch.py's default here)")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    from playwright.sync_api import sync_playwright

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo = build_app(Settings(runs_dir=Path(tempfile.mkdtemp())))
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                        **launch_options())
    rows = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1366, "height": 768})
            page.set_default_timeout(600_000)
            page.goto(demo.local_url + "?tab=reverse&checkpoint=swiss_roll")
            page.wait_for_selector("#de-ready [data-ready]", state="attached")
            page.wait_for_function("() => document.querySelector('#rv-info').innerText.includes('swiss_roll')")
            page.locator("#rv-speed").get_by_text("max", exact=True).click()
            seed = page.locator("#rv-seed input")  # not the default seed: its run is recorded, not computed
            seed.fill("1")
            seed.blur()
            for label, (sampler, steps) in RUNS.items():
                page.locator("#rv-sampler input").click()
                page.locator("[role=option]", has_text=sampler).first.click()
                box = page.locator("#rv-steps input[type=number]")
                box.fill(str(steps))
                box.press("Enter")
                page.wait_for_function("s => document.querySelector('#rv-steps input[type=number]').value == s",
                                       arg=str(steps))
                page.evaluate(WATCH)
                page.locator("#rv-play").click()
                page.wait_for_function("n => { const c = document.querySelector('#rv-caption').innerText;"
                                       " return c.includes(n + ' of ' + n + ' steps computed') && c.includes('complete'); }",
                                       arg=steps + 1)
                r = page.evaluate(READ)
                blocked = r["long_ms"] / 1000 / r["seconds"]
                rows.append((label, r["seconds"], blocked, r["frames"], r["frames"] / r["seconds"]))
                print(label, f"{r['seconds']:.1f} s, main thread blocked {blocked:.0%}, {r['frames']} distinct "
                      f"frames painted, {r['frames'] / r['seconds']:.1f} a second", flush=True)
            browser.close()
    finally:
        demo.close()
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [BEGIN, "## Reverse tab: 2-D playback in the browser (`benchmarks/reverse_2d_playback.py`)", "",
             f"Device: {os.cpu_count()}-core CPU, no GPU, headless chromium; torch {torch.__version__}, "
             f"{a.threads} torch thread(s) in the server; {date.today()}; load average after: {load}.",
             "Shipped swiss_roll model, 500 points, top speed ('max'); frames go out as server-drawn JPEG "
             "pictures while playing (the interactive figure returns at rest).", "",
             "| run | wall time | main thread blocked (long tasks) | distinct frames painted | per second | target |",
             "| --- | ---: | ---: | ---: | ---: | --- |"]
    for label, secs, blocked, frames, fps in rows:
        lines.append(f"| {label} | {secs:.1f} s | {blocked:.0%} | {frames} | {fps:.1f} | blocked < 30%, >= 10 frames/s |")
    lines.append(END)
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    if BEGIN in text:
        text = text[:text.index(BEGIN)] + "\n".join(lines) + text[text.index(END) + len(END):]
    else:
        text = text.rstrip() + "\n\n" + "\n".join(lines) + "\n"
    RESULTS.write_text(text)


if __name__ == "__main__":
    main()
