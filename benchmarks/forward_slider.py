"""How fast the Forward tab follows its timestep slider, for a 256x256 RGB photo.

(a) server: the frame route's picture (q_sample and a JPEG, explorer/forward_frames.py) and the
    Gradio event's (the `noisy` handler plus the JPEG encoding Gradio does for its output), median
    over many calls;
(b) browser: in headless chromium, from the slider's `input` event to the new x_t <img> having
    loaded, median over many single moves (each waits for its image: latency, not throughput), each
    at a t not asked before (no cache answers); through the frame route as shipped, and with
    `--compare-event` through the Gradio event too (the route answering 404, as the page falls back).

    python benchmarks/forward_slider.py [--calls 300] [--moves 60] [--device-note "2-core CPU, no GPU"]
                                        [--compare-event]

Writes its section of benchmarks/RESULTS.md (between its own markers) and prints the numbers.
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402
import torch  # noqa: E402

from explorer.app import build_app, launch_options  # noqa: E402
from explorer.context import Settings  # noqa: E402
from explorer.inputs import from_image_file  # noqa: E402
from explorer.tabs import forward_handlers as fw  # noqa: E402
from core.threads import default_threads  # noqa: E402
from _results import write_section  # noqa: E402  (benchmarks/_results.py, beside this script)
from _scratch import scratch_dir  # noqa: E402  (benchmarks/_scratch.py, beside this script)

TARGET_SERVER_MS, TARGET_BROWSER_MS = 20.0, 80.0
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
BEGIN, END = "<!-- forward_slider: begin -->", "<!-- forward_slider: end -->"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

# One move: set the range input, fire `input`, resolve when a new x_t image has loaded.
MOVE_JS = """(t) => new Promise(resolve => {
  const range = document.querySelector('#tslider input[type=range]');
  const box = document.querySelector('#ximg');
  const before = box.querySelector('img') ? box.querySelector('img').src : null;
  const timeout = setTimeout(() => { obs.disconnect(); resolve(-1); }, 5000);
  const done = () => { clearTimeout(timeout); obs.disconnect(); resolve(performance.now() - t0); };
  const check = () => {
    const img = box.querySelector('img');
    if (!img || img.src === before) return;
    if (img.complete && img.naturalWidth > 0) done(); else img.addEventListener('load', done, {once: true});
  };
  const obs = new MutationObserver(check);
  obs.observe(box, {subtree: true, childList: true, attributes: true, attributeFilter: ['src']});
  const setter = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set;
  const t0 = performance.now();
  setter.call(range, String(t));
  range.dispatchEvent(new Event('input', {bubbles: true}));
})"""


def server_side(calls: int, route: bool) -> tuple[list[float], list[float]]:
    """ms per slider move in the server: the frame route's picture (route=True), or the event's
    handler + the JPEG encoding of its image output.

    Returns wall-clock times and this thread's CPU times; on a shared, busy machine the CPU time
    still says how much work one event is, while the wall time includes waiting for a core.
    """
    photo = from_image_file(ROOT / "assets" / "images" / "astronaut.jpg")
    assert photo.shape == (1, 3, 256, 256), photo.shape
    out_image = gr.Image(format="jpeg", type="numpy")
    out_html = gr.HTML()
    wall, cpu = [], []
    for i in range(calls + 10):
        t = (i * 37) % 1001
        t0, c0 = time.perf_counter(), time.thread_time()
        if route:
            fw.x_t_picture(photo, "linear", 1000, t, 0)
        else:
            img, _, numbers = fw.noisy(photo, "linear", 1000, t, 0)
            out_image.postprocess(img)
            out_html.postprocess(numbers)
        if i >= 10:  # the first calls warm caches (schedule, noise, allocator)
            wall.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.thread_time() - c0) * 1000)
    return wall, cpu


def threads_side(repeats: int = 3) -> dict[int, float]:
    """Median seconds for the Step-by-step view's chain (300 noise additions, 256x256 RGB) per torch thread count.

    Why launch.py leaves a core free: on a 2-core machine that is also busy serving, a second
    torch thread mostly spin-waits for the first.
    """
    from core.forward import q_chain

    photo = from_image_file(ROOT / "assets" / "images" / "astronaut.jpg")
    schedule = fw.get_schedule("linear", 1000)
    before = torch.get_num_threads()
    out = {}
    for n in sorted({1, os.cpu_count() or 1}):
        torch.set_num_threads(n)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            q_chain(schedule, photo.x0, 300, generator=torch.Generator().manual_seed(0))
            times.append(time.perf_counter() - t0)
        out[n] = statistics.median(times)
    torch.set_num_threads(before)
    return out


LONG_TASKS_JS = """() => { window.__longTasks = []; new PerformanceObserver((list) => {
  for (const e of list.getEntries()) window.__longTasks.push(e.duration); }).observe({type: 'longtask'}); }"""


def browser_side(moves: int, route: bool = True) -> tuple[list[float], float]:
    """(ms per move, the share of the time the page's main thread spent in long tasks while moving).

    route=False: the frame route answers 404, so the page shows x_t through the Gradio event."""
    from playwright.sync_api import sync_playwright

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo = build_app(Settings(runs_dir=scratch_dir()))
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                        **launch_options())
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1366, "height": 768})
            if not route:
                page.route("**/de-forward/**", lambda r: r.fulfill(status=404, body="no longer held"))
            page.goto(demo.local_url)
            page.wait_for_selector("#ximg img", timeout=60_000)
            page.wait_for_timeout(1500)  # let the page finish wiring its events
            times = []
            page.evaluate(LONG_TASKS_JS)
            start = page.evaluate("() => performance.now()")
            for i in range(moves + 5):
                ms = page.evaluate(MOVE_JS, 100 + (i * 53) % 900)
                if ms < 0:
                    raise RuntimeError(f"slider move {i} produced no new image within 5 s (so far: {times})")
                if i >= 5:
                    times.append(ms)
                page.wait_for_timeout(50)  # let the figures' event finish too, as after a real move
            busy = page.evaluate("() => window.__longTasks.reduce((a, b) => a + b, 0)")
            busy /= page.evaluate("() => performance.now()") - start
            browser.close()
    finally:
        demo.close()
    return times, busy


def summary(times: list[float]) -> str:
    q = statistics.quantiles(times, n=10)
    return f"median {statistics.median(times):.1f} ms (p10 {q[0]:.1f}, p90 {q[-1]:.1f}, n={len(times)})"


def write_results(device: str, server: dict[str, tuple[list[float], list[float]]],
                  browser: dict[str, tuple[list[float], float]],
                  threads: int, chain: dict[int, float], load_before: float, note: str = "") -> None:
    load = f"{load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end (1-minute averages)"
    lines = [
        BEGIN,
        "## Forward tab: slider latency (`benchmarks/forward_slider.py`)",
        "",
        f"Device: {device}; torch {torch.__version__}, gradio {gr.__version__}, {threads} torch thread(s); "
        f"load average while measuring: {load}. Input: a 256x256 RGB photo, linear schedule, T = 1000.",
        "",
        "| what | measured | target |",
        "| --- | --- | --- |",
    ]
    for variant, (wall, cpu) in server.items():
        lines += [f"| server: {variant}, wall clock | {summary(wall)} | <= {TARGET_SERVER_MS:.0f} ms |",
                  f"| server: the same, CPU time of the handling thread | {summary(cpu)} | |"]
    for variant, (times, busy) in browser.items():
        lines.append(f"| browser: slider `input` event -> new x_t image loaded, {variant} | {summary(times)} "
                     f"| <= {TARGET_BROWSER_MS:.0f} ms |")
        lines.append(f"| browser: the page's main thread in long tasks (over 50 ms) while moving, {variant} "
                     f"| {100 * busy:.0f}% of the time | |")
    for n, secs in chain.items():
        lines.append(f"| Step-by-step chain (300 noise additions, 256x256), {n} torch thread(s) "
                     f"| median {secs:.2f} s | |")
    lines += ["", "launch.py gives torch all cores but one (here: 1 thread). A second thread brings nothing "
              "here and, while the machine was busy, made the chain 5 to 25 times slower in our runs (the "
              "threads spin-wait for a core).", ""] + ([note, ""] if note else []) + [
              "The browser figure includes the request (one GET to the frame route, or one plain HTTP call",
              "for the event, outside Gradio's queue), the JPEG fetch and decode; each move goes to a t not",
              "asked before, so neither the server's nor the browser's cache answers it. While t moves, the",
              "curves' markers slide in the browser; with the frame route the histogram's bars come with",
              "each picture (Plotly.update in the page), through the event they follow in a separate, paced",
              "Gradio event. Every Gradio event costs the page's main thread tens of milliseconds (its front",
              "end refreshes the status of every output on the page), which is what the long tasks count.",
              END]
    block = "\n".join(lines)
    write_section(block, BEGIN, END, RESULTS)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, default=300)
    p.add_argument("--moves", type=int, default=60)
    p.add_argument("--device-note", default="2-core CPU, no GPU")
    p.add_argument("--no-browser", action="store_true")
    p.add_argument("--compare-event", action="store_true",
                   help="also measure the page through the Gradio event (the frame route answering 404)")
    p.add_argument("--no-write", action="store_true")
    p.add_argument("--note", default="", help="a sentence about the conditions, written under the table")
    args = p.parse_args()
    load_before = os.getloadavg()[0]
    threads = default_threads()  # as launch.py sets it
    torch.set_num_threads(threads)
    chain = threads_side()
    print("chain (300 steps):", {n: f"{s:.2f} s" for n, s in chain.items()})
    server = {"frame route's picture and the histogram's values (as shipped)": server_side(args.calls, route=True),
              "`noisy` event's handler + Gradio's JPEG (no histogram)": server_side(args.calls, route=False)}
    for name, (wall, cpu) in server.items():
        print(f"server, {name}: wall {summary(wall)}; thread CPU {summary(cpu)}")
    browser = {}
    variants = [] if args.no_browser else [("frame route (as shipped)", True)] + (
        [("Gradio event, queue=False", False)] if args.compare_event else [])
    for name, route in variants:
        browser[name] = browser_side(args.moves, route)
        print(f"browser ({name}): {summary(browser[name][0])}; main thread {100 * browser[name][1]:.0f}% in long tasks")
    if not args.no_write:
        write_results(args.device_note, server, browser, threads, chain, load_before, args.note)
        print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
