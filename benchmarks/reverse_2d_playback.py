"""What 2-D reverse playback costs the browser: main-thread busy time and distinct frames painted.

    python benchmarks/reverse_2d_playback.py [--threads 1] [--profile]

Opens the Reverse tab in headless chromium with the shipped swiss_roll model and plays DDIM 50 and
DDPM 1000 at top speed (the setting that froze the browser when every frame was a plotly figure).
The play window runs from the click on Play to the run over on the page (the caption says complete and
the closing view's picture of the last frame is shown; since 2026-12-07 the interactive figure is drawn
when a pointer comes to the view, not by the closing view). In it:
- a chromium performance trace (devtools.timeline, toplevel) gives the renderer main thread's busy
  time: the sum of its top-level tasks, each clipped to the window, and where that time went (self
  time by trace event; script time by the function the browser called);
- a PerformanceObserver gives the long tasks (over 50 ms) clipped to the window, the figure the page
  itself can see;
- a `requestAnimationFrame` loop counts the distinct frame pictures on screen at paint time (not the one
  on show at the click), over the window and, as a player's frame rate is counted, from the first frame
  painted to the last (the wait for the first is the click-to-first-frame latency);
- the server counts the frames it sent (so "painted" can be read against what was there to paint).
After the window the pointer moves onto the picture and the trace goes on until the interactive figure is
drawn (no look of the picture left over it): what that figure costs when it is asked for.
`--profile` also runs the V8 sampling profiler over a third DDPM run and prints script self time by
function. Writes its section of benchmarks/RESULTS.md with the load average before and after.
Targets (the playback issue): main thread busy < 30% of the time, >= 10 distinct frames a second
where the server keeps up.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
from collections import Counter
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import torch  # noqa: E402

from explorer.app import build_app, launch_options  # noqa: E402
from explorer.context import Settings  # noqa: E402
from explorer.tabs.reverse_handlers import ReverseHandlers  # noqa: E402
from _scratch import scratch_dir  # noqa: E402  (benchmarks/_scratch.py, beside this script)

RESULTS = ROOT / "benchmarks" / "RESULTS.md"
BEGIN, END = "<!-- reverse_2d_playback: begin -->", "<!-- reverse_2d_playback: end -->"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# (sampler, steps, speed, point): the first play of a freshly opened page, then the long one, then the first
# again in the same page (its code warm, as every play after a lecture's first is), all at top speed; last,
# the short run at the tab's default speed ('auto': a run in about 4 s), as a lecturer who only presses Play
# sees it. point: after the play, the pointer moves onto the view and its interactive figure is drawn. A
# play starts from the figure (the view after a checkpoint's choice, or after a pointer asked for it) or
# from the picture the play before it ended on (Play's first view then swaps nothing): both are timed.
RUNS = {"DDIM 50": ("DDIM", 50, "max", False), "DDPM 1000": ("DDPM", 1000, "max", True),
        "DDIM 50, again": ("DDIM", 50, "max", False), "DDIM 50, again from its picture": ("DDIM", 50, "max", True),
        "DDIM 50, default speed (auto)": ("DDIM", 50, "auto", True)}
TRACE_CATEGORIES = ["-*", "devtools.timeline", "disabled-by-default-devtools.timeline", "toplevel",
                    "v8.execute", "blink.user_timing"]
TOP_LEVEL = {"RunTask", "ThreadControllerImpl::RunTask"}

# The window opens here (a TimeStamp in the trace on the page's main thread, and performance.now()).
# Each animation frame looks at the frame picture: a src not seen before is a distinct frame painted.
# (The picture's <img> appears only once playing starts: 2-D models show a plot at rest.)
# The window closes at the first animation frame at which the run is over on the page: the caption
# says complete and the closing view has landed (its word that the figure waits, in #rv-feed) with its
# picture loaded. (Until 2026-12-07 the closing view drew the interactive figure, and the window closed
# once it was drawn, the picture hidden.)
# (Until 2026-12-05 it closed at the first 200 ms poll that saw the caption say complete, which the
# live feed's last frame can say before the closing view: the figure's draw fell inside the window
# or after it by chance.)
WATCH = """n => {
  const w = window.__bench = {lt: [], frames: new Set(), paints: [], live: [], t0: performance.now(), t1: null};
  // the picture on show at the click (the one a play before ended on) is not a frame of this play
  const shown = document.querySelector('#rv-frame img');
  if (shown && shown.src) w.frames.add(shown.src);
  w.obs = new PerformanceObserver(l => { for (const e of l.getEntries()) w.lt.push([e.startTime, e.duration]); });
  w.obs.observe({type: 'longtask', buffered: false});
  console.timeStamp('bench-start');
  const over = () => {
    const c = (document.querySelector('#rv-caption') || {}).textContent || '';
    if (!(c.includes(n + ' of ' + n + ' steps computed') && c.includes('complete'))) return false;
    if (!document.querySelector('#rv-feed [data-figure-later]')) return false;
    const img = document.querySelector('#rv-frame img');
    return !!img && img.offsetParent !== null && img.complete && img.naturalWidth > 0 && !img.src.startsWith('blob:');
  };
  const tick = () => {
    if (w.t1 !== null) return;
    const img = document.querySelector('#rv-frame img');
    if (img && img.complete && img.src && !w.frames.has(img.src)) {
      w.frames.add(img.src);
      w.paints.push(performance.now());
      if (img.src.startsWith('blob:')) w.live.push(performance.now());  // a frame of the live feed
    }
    if (w.live.length && over()) {
      w.t1 = performance.now(); console.timeStamp('bench-end'); w.obs.disconnect();
      return;
    }
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}"""
DONE = "() => window.__bench.t1 !== null"
# the interactive figure asked for by a pointer over the picture: drawn, and no look of the picture over it
FIGURE_DRAWN = """() => !!document.querySelector('#rv-frame-plot .scatterlayer .trace') && !document.querySelector('#rv-frame')
  && !document.querySelector('.de-ghost')"""
READ = """() => {
  const w = window.__bench;
  let lt = 0;  // long tasks clipped to the window
  for (const [s, d] of w.lt) lt += Math.max(0, Math.min(s + d, w.t1) - Math.max(s, w.t0));
  // while frames play: from the first live frame painted to the last (Play's first view and its
  // closing view fall outside it)
  const a = w.live.length ? w.live[0] : w.t0, b = w.live.length ? w.live[w.live.length - 1] : w.t0;
  let ltPlay = 0;
  for (const [s, d] of w.lt) ltPlay += Math.max(0, Math.min(s + d, b) - Math.max(s, a));
  const p = w.paints;  // every frame of the play painted: Play's first view, the live ones, the closing view
  return {seconds: (w.t1 - w.t0) / 1000, long_ms: lt, frames: p.length,
          painted: p.length ? [(p[0] - w.t0) / 1000, (p[p.length - 1] - w.t0) / 1000] : [0, 0],
          play: [(a - w.t0) / 1000, (b - w.t0) / 1000], live: w.live.length, long_play_ms: ltPlay};
}"""


NOTES = """How it got here (each step measured with this script; the machine is shared, so runs vary):
- First, each frame was a plotly figure streamed as a Gradio output: the main thread was 97-99% blocked
  and only the first and the last frame were painted.
- Then frames were drawn on the server as JPEG pictures, still streamed as Gradio outputs (later frames
  carried the picture alone, caption and scrubber 4 times a second): DDPM 1000 painted 1.3 -> 3.0 frames
  a second, the main thread still 95-100% busy (long tasks 64-85%). The cost was Gradio's own: for each
  streamed message its page refreshes the loading status of every output of every event that has run on
  the page, finding each component by walking the whole tree and deep-copying its properties (about
  3,000 copies a message on this app), whatever the message carries.
- Now (explorer/feed.py, explorer/tabs/reverse_player.js) only Play's first view and its closing view go
  through Gradio. The frames between come from the server's live feed, one request at a time: the page
  asks for a frame newer than the one it shows, the server answers with the newest (the ones between are
  never sent) and draws the next only once the page has taken the last. DDPM 1000: 10-15 distinct frames
  painted a second (target met), long tasks 4-11% of the play (from 83%). The main thread is still busy
  61-73% of the play in these runs: decoding and painting 10-15 pictures a second scaled to the page in
  headless chromium without a GPU (Paint, Commit and the microtasks of each fetch), and Gradio's
  status tracker, which animates while the Play event is pending. The < 30% target is not met here.
- Tried and not kept: ending Play's Gradio event after the first view (the run in a second event with no
  outputs, the closing view in a third), so that no output's loading timer animates while it plays. Two
  pairs side by side at load 8-10: DDPM 1000 main thread 54% and 58% busy before, 62% and 60% after, and
  the trace still showed the status tracker's timer at about the same 2-3% of the play (trackers of other
  components), so the simpler single event stayed. The page no longer rewrites its address (history.replaceState and a read of the view,
  about 4% of the play in the V8 profile) while a run plays.
- DDIM 50 at top speed is computed in about half a second: the first view, a few live frames and the
  closing view fill it, so its busy share and frame rate say little about playback. The table of the
  window's ends shows the part that does not shrink with a shorter run: 0.2-0.35 s of main thread for
  Play's first view (Gradio's handling of the event and its first message, mostly microtasks) and up to
  0.35 s for the closing view (the interactive figure drawn again). So a play of half a second cannot be
  under 30% busy while those two views go through Gradio; a play of a few seconds, as the default speed
  gives, is.
- The default speed once painted only 6 frames a second for DDIM 50 (2026-12-05: 25 frames in 4.1 s,
  6.1 a second, where the server had 12.5 steps a second to show). The server sent a frame only when
  1/12 s had passed since the last one sent, and steps came every 80 ms, just under that: every other
  step was held back. Frames now go out on a fixed grid of 1/12 s slots (explorer/pacer.py
  `FrameSlots`), one per slot: 47 frames painted in 4.1 s (11.4 a second), the main thread 22% busy over
  the whole window.
- 2026-12-05, evening: the window now closes at the first animation frame at which the closing view has
  put the interactive figure back, not at the first 200 ms poll that saw the caption say complete. The
  live feed's last frame says complete before the closing view lands, so the figure's draw (0.25-0.3 s
  of main thread) fell inside the window or after it by chance: that, not warm code, made 'DDIM 50,
  again' look cheaper before (a closing view of 40 ms). Four runs that evening (quiet, load 0.5-1.7):
  DDIM 50 at top speed in 0.6-0.8 s windows, long tasks 0-15% of them (under 30% by the issue's
  long-task measure in all eight plays), but the trace's busy share 75-95% and 2-5 distinct frames painted
  (3-6 a second over the window; 12.6-18.5 a second between the first live frame and the last in the six
  plays with three or more live frames, the other two had one and two): the run is computed in about
  0.15 s and Play's first view and the closing figure take about 0.25 s of main thread each, so the frame
  target over the whole window is not met at top speed. DDPM 1000: long tasks 0-2%, the trace's busy share
  29-30% over the whole window, 10.9-11.3 frames a second (the table above is the fourth run). (The script
  itself had stopped finishing on 2026-12-04, when the caption began to count a run of n steps as n: it
  waited for "51 of 51".)
- 2026-12-05, late: a play's two swaps between the figure and the pictures had left the view blank, and
  moved the page below it (up 360 px as a play began, 124 px for 0.1-0.2 s as it ended: Gradio mounts the
  shown component with no height until it is drawn). explorer/view_swap.js now lays the last drawn look
  over the new block, which keeps the old height, until the new one is drawn. Laying the figure's look
  over the first picture costs 30-45 ms of main thread once a play (copying and drawing its 1,900 nodes,
  timed in the page). Runs of this script in turn with it (B) and without it (A), load 1.6-1.9: DDPM 1000
  over the whole window B 33%, A 29%, B 31%, A 29%, and the table above (B, load 1.5-1.7) 28%; while frames
  play 27, 24, 24, 22 and 22%; 11.0-11.2 frames a second in all. The difference is within the spread of
  runs of the same code (20-29% while frames play, below).
- 2026-12-07: a play ends on its last frame's picture; the interactive figure is drawn when a pointer or the
  keyboard comes to the view, and the closing view takes a slot of the frame grid of its own. The closing
  view went from 0.19-0.25 s of main thread to 41-57 ms, DDIM 50 at top speed from 59-69% busy (2-3 frames
  painted, 4.3-4.6 a second) to 45-58% (3-4 frames, 9.0-13.4 a second, every frame sent painted). The
  figure, when asked for, takes 0.24-0.41 s of main thread once.
- 2026-12-07, fourth session: the picture on show at the click (the one the play before ended on) had been
  counted as a frame of the play: the 'from its picture' rows had one frame too many (13.4 a second in the
  table of the third session was 3 frames of the play, not 4). And a second table now gives the play's
  frame rate as a player counts it: its frames from the first painted (Play's first view) to the last (the
  closing picture), the wait for the first being the click-to-first-frame latency (0.13-0.19 s here, in
  four runs, load 0.9-1.8). DDIM 50 at top speed: 11.5-14.6 frames a second that way in all twelve plays
  (4-5 frames in 0.21-0.32 s), 9.2-10.0 over the whole window; DDPM 1000 and the default speed 11.7-12.0
  both ways.
  Tried and not kept the same day: a Play click following the session's armed feed for a new run too (the
  run's first frame published there before Play's first view, the frames laid over the view until that
  view was drawn). Click to first frame painted, swiss_roll DDIM 50 at top speed, 8 plays each, the code
  before (A) and with it (B) in turn on a quiet machine: A 124-234 ms, B 99-175 ms, medians about 150 ms
  both; reverse_first_frame.py (10 clicks each): digits DDIM 50 A 84 ms, B 83 ms; shapes A 156 ms, B 141
  ms (p90 173 and 197); DDIM 50 at top speed 44-56% busy in A, 51-67% in B, 4-5 frames painted in both. The
  server's part (the queue's round trip and the run's first step, 80-95 ms to the first frame published)
  is what the first frame waits for, not Gradio's view on the page, and the frames a run computed in 0.15 s
  can show are set by the 12-a-second cap, not by when the page starts following."""


def main_thread_busy(trace: dict, within: tuple[float, float] | None = None,
                     marks: tuple[str, str] = ("bench-start", "bench-end")) -> dict:
    """From a chromium trace: the window, the page main thread's busy time and self time by event.

    within: (from, to) in seconds after the window opens, to measure a part of it instead.
    marks: the console.timeStamp messages that open and close the window.
    """
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    stamps = {e["args"]["data"].get("message"): e for e in events
              if e.get("name") == "TimeStamp" and "data" in e.get("args", {})}
    start, end = stamps[marks[0]], stamps[marks[1]]
    pid, tid = start["pid"], start["tid"]
    t0, t1 = start["ts"], end["ts"]
    if within is not None:
        t0, t1 = start["ts"] + within[0] * 1e6, start["ts"] + within[1] * 1e6
    mine = sorted((e for e in events if e.get("pid") == pid and e.get("tid") == tid and e.get("ph") == "X"
                   and "dur" in e and e["ts"] < t1 and e["ts"] + e["dur"] > t0),
                  key=lambda e: (e["ts"], -e["dur"]))
    clip = lambda e: max(0, min(e["ts"] + e["dur"], t1) - max(e["ts"], t0))  # noqa: E731
    busy, reach = 0, t0  # the union of the top-level tasks' intervals: nested tasks count once
    for e in mine:
        if e["name"] in TOP_LEVEL and e["ts"] + e["dur"] > reach:
            busy += max(0, min(e["ts"] + e["dur"], t1) - max(e["ts"], reach))
            reach = max(reach, e["ts"] + e["dur"])
    # self time: each event's clipped time less its direct children's
    self_time, calls, stack = Counter(), Counter(), []
    for e in mine:
        while stack and stack[-1]["ts"] + stack[-1]["dur"] <= e["ts"]:
            stack.pop()
        c = clip(e)
        if stack:
            self_time[_label(stack[-1])] -= c
        self_time[_label(e)] += c
        if e["name"] == "FunctionCall":
            calls[_label(e)] += c
        stack.append(e)
    return {"seconds": (t1 - t0) / 1e6, "busy_ms": busy / 1000,
            "self": {k: v / 1000 for k, v in self_time.items() if k not in TOP_LEVEL},
            "idle_in_tasks_ms": sum(v for k, v in self_time.items() if k in TOP_LEVEL) / 1000}


def _label(e: dict) -> str:
    if e["name"] in ("FunctionCall", "EvaluateScript"):
        d = e.get("args", {}).get("data", {})
        fn = d.get("functionName") or "(anonymous)"
        url = (d.get("url") or "").rsplit("/", 1)[-1][:40]
        return f"{e['name']} {fn} {url}:{d.get('lineNumber', '')}:{d.get('columnNumber', '')}"
    return e["name"]


def profile_functions(profile: dict, top: int = 15, depth: int = 6) -> list[tuple[str, float]]:
    """Self time by function and its callers from a V8 CPU profile (Profiler.stop's `profile`), in ms."""
    nodes = {n["id"]: n for n in profile["nodes"]}
    parent = {c: n["id"] for n in profile["nodes"] for c in n.get("children", [])}
    name = lambda f: f"{f['functionName'] or '(anon)'}@{f['url'].rsplit('/', 1)[-1][:24]}:{f['lineNumber']}"  # noqa: E731
    deltas = profile["timeDeltas"]
    spent = Counter()
    for sample, dt in zip(profile["samples"], deltas[1:] + [0]):
        chain, node = [], sample
        while node is not None and len(chain) < depth:
            chain.append(name(nodes[node]["callFrame"]))
            node = parent.get(node)
        spent[" < ".join(chain)] += dt / 1000
    return spent.most_common(top)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1, help="torch threads of the server (launch.py's default here)")
    p.add_argument("--profile", action="store_true", help="also print script self time by function (V8 profiler)")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    from playwright.sync_api import sync_playwright

    sent: list[float] = []  # when the server drew each frame picture (while playing: one per frame sent)
    raster = ReverseHandlers.raster

    def counting_raster(self, session, k, **kwargs):
        sent.append(time.perf_counter())
        return raster(self, session, k, **kwargs)

    ReverseHandlers.raster = counting_raster
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo = build_app(Settings(runs_dir=scratch_dir()))
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                        **launch_options())
    load_before = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    rows, breakdowns, ends, figures, starts = [], {}, {}, {}, {}
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1366, "height": 768})
            page.set_default_timeout(600_000)
            page.goto(demo.local_url + "?tab=reverse&checkpoint=swiss_roll")
            page.wait_for_selector("#de-ready [data-ready]", state="attached")
            page.wait_for_function("() => document.querySelector('#rv-info').innerText.includes('swiss_roll')")
            seed = page.locator("#rv-seed input")  # not the default seed: its run is recorded, not computed
            seed.fill("1")
            seed.blur()

            def play(label, sampler, steps, seed_value, trace=True, speed="max", point=False):
                page.locator("#rv-speed").get_by_text(speed, exact=True).click()
                page.locator("#rv-sampler input").click()
                page.locator("[role=option]", has_text=sampler).first.click()
                box = page.locator("#rv-steps input[type=number]")
                box.fill(str(steps))
                box.press("Enter")
                page.wait_for_function("s => document.querySelector('#rv-steps input[type=number]').value == s",
                                       arg=str(steps))
                seed.fill(str(seed_value))
                seed.blur()
                page.wait_for_timeout(500)
                if trace:
                    browser.start_tracing(page=page, categories=TRACE_CATEGORIES)
                sent.clear()
                page.evaluate(WATCH, steps)
                page.locator("#rv-play").click()
                page.wait_for_function("() => !document.querySelector('#rv-caption').innerText.includes('complete')",
                                       polling=50)  # the last run's caption is gone
                page.wait_for_function(DONE, polling=200)
                r = page.evaluate(READ)
                if point:  # the figure, asked for by a pointer over the picture (the window is closed)
                    page.evaluate("() => console.timeStamp('figure-start')")
                    page.locator("#rv-frame img").hover()
                    page.wait_for_function(FIGURE_DRAWN, polling="raf")
                    page.evaluate("() => console.timeStamp('figure-end')")
                    page.mouse.move(0, 0)  # off the view: the next play's picture is not pointed at
                return r, (json.loads(browser.stop_tracing()) if trace else None)

            start = "figure"  # the view a play starts from
            for k, (label, (sampler, steps, speed, point)) in enumerate(RUNS.items()):
                r, trace = play(label, sampler, steps, 1 + k, speed=speed, point=point)
                starts[label], start = start, "figure" if point else "picture"
                t = main_thread_busy(trace)
                secs = r["seconds"]
                span = r["play"][1] - r["play"][0]
                tp = main_thread_busy(trace, within=tuple(r["play"])) if span > 0 else None
                playing = (span, tp["busy_ms"] / 1000 / span, r["long_play_ms"] / 1000 / span,
                        (r["live"] - 1) / span) if tp else None
                # the play's frame rate: its frames painted, from the first (Play's first view) to the last
                # (the closing view's picture); the wait for the first is the click-to-first-frame latency
                shown = r["painted"][1] - r["painted"][0]
                rate = (shown, (r["frames"] - 1) / shown) if r["frames"] > 1 and shown > 0 else None
                rows.append((label, secs, t["busy_ms"] / 1000 / t["seconds"], r["long_ms"] / 1000 / secs,
                             len(sent) / secs, r["frames"], r["frames"] / secs, playing, rate, r["painted"][0]))
                breakdowns[label] = (t, r["frames"])
                print(f"{label}: {secs:.1f} s; main thread busy {rows[-1][2]:.0%} (trace), long tasks "
                      f"{rows[-1][3]:.0%}; server sent {len(sent)} frames ({rows[-1][4]:.1f}/s); "
                      f"{r['frames']} distinct frames painted ({rows[-1][6]:.1f}/s); first painted "
                      f"{r['painted'][0]:.2f} s after the click, then "
                      + (f"{rate[1]:.1f} frames/s to the last ({rate[0]:.2f} s)" if rate else "no other"), flush=True)
                if span > 0:  # the window's two ends: Play's first view, and the closing view
                    head = main_thread_busy(trace, within=(0, r["play"][0]))["busy_ms"]
                    tail = main_thread_busy(trace, within=(r["play"][1], secs))["busy_ms"]
                    ends[label] = (r["play"][0], head, secs - r["play"][1], tail)
                    print(f"    before the first live frame ({r['play'][0]:.2f} s): busy {head:.0f} ms; after the "
                          f"last ({secs - r['play'][1]:.2f} s): busy {tail:.0f} ms", flush=True)
                if point:
                    f = main_thread_busy(trace, marks=("figure-start", "figure-end"))
                    figures[label] = (f["seconds"], f["busy_ms"])
                    print(f"    then the figure asked for by a pointer: drawn in {f['seconds']:.2f} s, main thread "
                          f"busy {f['busy_ms']:.0f} ms", flush=True)
                if playing:
                    print(f"    while frames play ({span:.1f} s, {r['live']} live frames): busy {playing[1]:.0%}, "
                          f"long tasks {playing[2]:.0%}, {playing[3]:.1f} frames/s", flush=True)
                for name, ms in Counter(t["self"]).most_common(14):
                    print(f"    {ms:8.0f} ms  {ms / max(r['frames'], 1):6.1f} ms/frame  {name}")
            if a.profile:
                cdp = page.context.new_cdp_session(page)
                cdp.send("Profiler.enable")
                cdp.send("Profiler.setSamplingInterval", {"interval": 200})
                cdp.send("Profiler.start")
                r, _ = play("DDPM 1000", "DDPM", 1000, 9, trace=False)
                prof = cdp.send("Profiler.stop")["profile"]
                print(f"V8 profile of a DDPM 1000 run ({r['seconds']:.1f} s), script self time by function:")
                for name, ms in profile_functions(prof):
                    print(f"    {ms:8.0f} ms  {name}")
            browser.close()
    finally:
        demo.close()
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [BEGIN, "## Reverse tab: 2-D playback in the browser (`benchmarks/reverse_2d_playback.py`)", "",
             f"Device: {os.cpu_count()}-core CPU, no GPU, headless chromium; torch {torch.__version__}, "
             f"{a.threads} torch thread(s) in the server; {date.today()}; load average before: {load_before}, "
             f"after: {load}. Browser and server share the CPU.",
             "Shipped swiss_roll model, 500 points, top speed ('max') unless the run names another, seeds computed live (not recorded runs); "
             "frames go out as server-drawn JPEG pictures from the live feed while playing; a play ends on the "
             "last frame's picture and the interactive figure is drawn when a pointer comes to the view. The runs go in the order of the table in one page: the first is the page's first "
             "play, 'again' the same setting played after the others.",
             "Window: from the click on Play to the run over on the page (the caption says complete and the closing view's picture of the last frame is shown). **Main thread busy** is the sum of "
             "the page's renderer main-thread top-level tasks in a chromium trace, clipped to the window; "
             "**long tasks** is the part of it in tasks over 50 ms (PerformanceObserver, clipped to the window). "
             "The trace itself costs the browser some time.", "",
             "**While frames play** is the part of the window from the first live frame painted to the last: "
             "Play's first view and the closing view fall outside it.",
             "",
             "| run | wall time | main thread busy (trace) | in long tasks | frames sent by the server /s "
             "| distinct frames painted | per second | while frames play: span | busy | in long tasks "
             "| frames painted /s | target |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for label, secs, busy, longs, sent_fps, frames, fps, playing, _, _ in rows:
        during = (f"{playing[0]:.1f} s | {playing[1]:.0%} | {playing[2]:.0%} | {playing[3]:.1f}" if playing
                  else "- | - | - | -")
        lines.append(f"| {label} | {secs:.1f} s | {busy:.0%} | {longs:.0%} | {sent_fps:.1f} | {frames} | {fps:.1f} "
                     f"| {during} | busy < 30%, >= 10 frames/s |")
    lines += ["", "The play's frame rate: its distinct frames painted from the first (Play's first view, after the "
              "click-to-first-frame wait) to the last (the closing view's picture), as a player's frame rate is "
              "counted; the picture on show at the click is not one of them:", "",
              "| run | click to first frame painted | first to last frame painted | frames painted | per second "
              "| target |", "| --- | ---: | ---: | ---: | ---: | --- |"]
    for label, secs, busy, longs, sent_fps, frames, fps, playing, rate, first in rows:
        lines.append(f"| {label} | {first:.2f} s | " + (f"{rate[0]:.2f} s | {frames} | {rate[1]:.1f}" if rate else
                                                         f"- | {frames} | -") + " | >= 10 frames/s |")
    lines += ["", "The window's two ends, which every play has whatever its length: from the click to the first live "
              "frame painted (Play's first view through Gradio) and from the last live frame to the run over "
              "on the page (the closing view):", "",
              "| run | starts from | click to first live frame | main thread busy in it | last live frame to complete "
              "| busy in it |",
              "| --- | --- | ---: | ---: | ---: | ---: |"]
    for label, (s0, b0, s1, b1) in ends.items():
        lines.append(f"| {label} | the {starts[label]} | {s0:.2f} s | {b0:.0f} ms | {s1:.2f} s | {b1:.0f} ms |")
    lines += ["", "A play starts from the interactive figure (after a checkpoint's choice, or after a pointer "
              "asked for it: Play's first view swaps it for the picture) or from the picture the play "
              "before it ended on.", "",
              "After some plays, outside their window: the pointer moved onto the picture the play ended on, "
              "until the interactive figure is drawn (what the figure costs when it is asked for):", "",
              "| run | pointer to figure drawn | main thread busy in it |", "| --- | ---: | ---: |"]
    for label, (secs, busy) in figures.items():
        lines.append(f"| {label} | {secs:.2f} s | {busy:.0f} ms |")
    label = "DDIM 50, again" if "DDIM 50, again" in breakdowns else list(breakdowns)[-1]
    t, frames = breakdowns[label]
    lines += ["", f"Where the main thread's time went in the {label} run (self time, top entries of the trace):", "",
              "| trace event | ms | ms per painted frame |", "| --- | ---: | ---: |"]
    for name, ms in Counter(t["self"]).most_common(8):
        lines.append(f"| {name.replace('|', '/')} | {ms:.0f} | {ms / max(frames, 1):.1f} |")
    lines += ["", NOTES, END]
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    if BEGIN in text:
        text = text[:text.index(BEGIN)] + "\n".join(lines) + text[text.index(END) + len(END):]
    else:
        text = text.rstrip() + "\n\n" + "\n".join(lines) + "\n"
    RESULTS.write_text(text)


if __name__ == "__main__":
    main()
