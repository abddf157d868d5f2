"""Scrubbing a 2-D run at rest in the browser: how many positions the page shows while the slider moves.

    python benchmarks/reverse_scrub.py [--rounds 3] [--presses 30]

Opens the Reverse tab in headless chromium with the shipped swiss_roll model, plays its default run to
the end, then moves the frame slider with the arrow key (`--presses` presses, 40 ms apart, as a held
key or a slow drag sends them) and watches, at every animation frame, which position is on screen:
the interactive figure's (its title says the step) or a picture laid over it (its data-frame). Two
ways, interleaved in the same page: with the scrub previews of the armed feed (explorer/feed.py,
`?frame=K`), and without them (those requests refused in the browser: only Gradio's one view of the
position the slider rests at shows). Reports the positions shown in turn, the time until the last
press's view has settled (the figure at the last position, no picture over it), and the load.
Writes its section of benchmarks/RESULTS.md.
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import torch  # noqa: E402
from _results import write_section  # noqa: E402
from _scratch import scratch_dir  # noqa: E402  (benchmarks/_scratch.py, beside this script)

from explorer.app import build_app, launch_options  # noqa: E402
from explorer.context import Settings  # noqa: E402

BEGIN, END = "<!-- reverse_scrub: begin -->", "<!-- reverse_scrub: end -->"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# what is on screen at each animation frame: 'c<k>' a picture of position k over the figure, 'f<step>'
# the figure (its title's step, or 'done'); a change is one more position shown
WATCH = r"""() => {
  const w = window.__seen = []; let last = null;
  const tick = () => {
    const c = document.querySelector('img.rv-cover');
    let v;
    if (c) v = 'c' + (c.dataset.frame || '?');
    else {
      const a = document.querySelector('#rv-frame-plot .annotation-text');
      const m = a && a.textContent.match(/step (\d+)|done/);
      v = 'f' + (m ? (m[1] || 'done') : '?');
    }
    if (v !== last) { w.push(v); last = v; }
    if (!window.__stop) requestAnimationFrame(tick);
  };
  window.__stop = false;
  tick();
}"""
SETTLED = """k => document.querySelector('#rv-caption').innerText.includes('Frame ' + k + ' of ')
                 && !document.querySelector('img.rv-cover')"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3, help="rounds of each way, interleaved")
    p.add_argument("--presses", type=int, default=30, help="arrow-key presses per scrub (at most 49)")
    p.add_argument("--threads", type=int, default=1, help="torch threads of the server (launch.py's default here)")
    a = p.parse_args()
    if not 1 <= a.presses <= 49:
        raise SystemExit(f"--presses must be 1 to 49 (the default run has 51 frames), got {a.presses}")
    torch.set_num_threads(a.threads)
    from playwright.sync_api import sync_playwright

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo = build_app(Settings(runs_dir=scratch_dir()))
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                        **launch_options())
    load_before = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    results: dict[str, list[tuple[int, float, float, str]]] = {"with previews": [], "without (previews refused)": []}
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1024, "height": 768})
            page.set_default_timeout(600_000)
            page.goto(demo.local_url + "?tab=reverse&checkpoint=swiss_roll", wait_until="load")
            page.wait_for_selector("#de-ready [data-ready]", state="attached")
            page.wait_for_function("() => document.querySelector('#rv-info').innerText.includes('swiss_roll')")
            page.locator("#rv-play").click()
            page.wait_for_function("() => document.querySelector('#rv-caption').innerText.includes('complete')")
            rng = page.locator("#rv-scrub input[type=range]")
            at = 50  # the frame index shown: the run's last
            for r in range(a.rounds):
                for way in (results if r % 2 == 0 else reversed(list(results))):
                    page.wait_for_function("() => document.querySelector('#rv-armed [data-armed]')")
                    if way.startswith("without"):
                        page.route("**/de-feed/*frame=*", lambda route: route.abort())
                    page.wait_for_timeout(500)
                    page.evaluate(WATCH)
                    key, step = ("ArrowLeft", -1) if at == 50 else ("ArrowRight", 1)
                    rng.focus()
                    t0 = time.perf_counter()
                    for _ in range(a.presses):
                        page.keyboard.press(key)
                        page.wait_for_timeout(40)
                    pressed = time.perf_counter() - t0
                    at += step * a.presses
                    page.wait_for_function(SETTLED, arg=at, polling=10)
                    settled = time.perf_counter() - t0
                    seen = page.evaluate("() => { window.__stop = true; return window.__seen; }")
                    if way.startswith("without"):
                        page.unroute("**/de-feed/*frame=*")
                    shown = len(seen) - 1  # the view before the first press is not one of them
                    results[way].append((shown, pressed, settled, " ".join(seen)))
                    print(f"{way}: {shown} positions shown in turn; presses took {pressed:.2f} s, settled after "
                          f"{settled:.2f} s: {' '.join(seen)}", flush=True)
                    if at != 50:  # back to the run's end, unwatched, for the next round
                        for _ in range(a.presses):
                            page.keyboard.press("ArrowRight")
                        at = 50
                        page.wait_for_function(SETTLED, arg=50, polling=50)
            browser.close()
    finally:
        demo.close()
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [BEGIN, "## Reverse tab: scrubbing a 2-D run at rest (`benchmarks/reverse_scrub.py`)", "",
             f"Device: {os.cpu_count()}-core CPU, no GPU, headless chromium at 1024x768; torch {torch.__version__}, "
             f"{a.threads} torch thread(s) in the server; {date.today()}; load average before: {load_before}, "
             f"after: {load}. Browser and server share the CPU.",
             f"The shipped swiss_roll model's default run (51 frames) at rest; {a.presses} presses of an arrow key on "
             "the frame slider, 40 ms apart; the two ways interleaved over "
             f"{a.rounds} rounds in one page. **Shown** counts the positions painted in turn while the slider moved "
             "(a picture over the figure, or the figure); **settled** is the time from the first press until the "
             "figure shows the last position with nothing over it.", "",
             "| way | positions shown (median, range) | presses took (s) | settled after (s, median) |",
             "| --- | ---: | ---: | ---: |"]
    for way, rows in results.items():
        shown = [r[0] for r in rows]
        lines.append(f"| {way} | {statistics.median(shown):g} ({min(shown)}-{max(shown)}) | "
                     f"{statistics.median(r[1] for r in rows):.2f} | {statistics.median(r[2] for r in rows):.2f} |")
    lines += ["", "Positions shown in turn, one round of each (c: a picture of frame k over the figure; "
              "f: the figure, by its title's step):", ""]
    for way, rows in results.items():
        lines.append(f"- {way}: {rows[0][3]}")
    lines += ["", "Before the previews (2026-12-05, the same script, load 1.3-2.0): each position the slider passed "
              "was a Gradio event and its view (the figure drawn anew); 30 presses showed 11-12 positions and settled "
              "after 3.9-4.6 s (6.6 s in one round), the presses themselves slowed to 3.4-5.6 s by the busy page. A "
              "first try kept those events and laid the feed's pictures over them: 12-16 positions, settled "
              "after 4.1-4.7 s, because each Gradio view still held the page's main thread about 0.3 s. Now the page "
              "sends Gradio one event when the slider rests 150 ms (the hidden #rv-scrub-settle button, "
              "explorer/tabs/reverse_player.js).", END]
    write_section("\n".join(lines), BEGIN, END)


if __name__ == "__main__":
    main()
