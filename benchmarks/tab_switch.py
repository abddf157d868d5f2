"""What switching tabs costs the page: main-thread time in long tasks after a click on a tab.

Starts the app as `python launch.py` serves it and, with `--against REV`, the app as it was at git
revision REV (a worktree of this repository, the same Python and packages) beside it. Then, `--repeat`
times, the versions in turn (one page open at a time): a fresh page at a projector's 1024x768 in
headless chromium clicks the tabs round (Reverse, Train, Evaluate, Forward process) twice; the first
round is not counted (a tab's first showing mounts its content). At chromium's CPU speed and, with
`--rates 1 4`, slowed 4x (Emulation.setCPUThrottlingRate, a slow laptop). For each counted click: the
main thread's time in long tasks (over 50 ms, PerformanceObserver) from the click until `--window`
seconds after it (`--slow-window` on a slowed page, whose work after a click lasts longer), and the
time until the tab's first control is drawn. Then, at chromium's speed, each tab is left alone for
`--idle` seconds: the main thread's time in long tasks and the Gradio calls the page makes meanwhile.
Medians per tab and version.

    python benchmarks/tab_switch.py [--against HEAD~1] [--repeat 4] [--rates 1 4] [--window 2.5] [--idle 10]

Writes its section of benchmarks/RESULTS.md.
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import time

from _results import write_section  # noqa: E402  (benchmarks/_results.py, beside this script)
from _versions import served_versions  # noqa: E402  (benchmarks/_versions.py, beside this script)

BEGIN, END = "<!-- tab_switch: begin -->", "<!-- tab_switch: end -->"
TABS = {"Reverse": "#rv-play", "Train": "#tr-start", "Evaluate": "#ev-ckpt", "Forward process": "#tslider"}
WATCH = """() => { window.__lt = []; new PerformanceObserver((l) => {
  for (const e of l.getEntries()) window.__lt.push([e.startTime, e.duration]); }).observe({type: 'longtask'}); }"""
MARK = "() => { window.__click = performance.now(); }"
LONG = """w => window.__lt.reduce((s, [a, d]) => s + Math.max(0, Math.min(a + d, window.__click + w) -
  Math.max(a, window.__click)), 0)"""
DRAWN = """s => new Promise(r => { const look = () => { const e = document.querySelector(s);
  if (e && e.offsetParent !== null) requestAnimationFrame(() => r(performance.now() - window.__click));
  else requestAnimationFrame(look); }; look(); })"""


def open_page(browser, url: str, rate: float):
    page = browser.new_page(viewport={"width": 1024, "height": 768})
    page.goto(url)
    page.wait_for_selector("#de-ready [data-ready]", state="attached", timeout=300_000)
    if rate != 1:
        page.context.new_cdp_session(page).send("Emulation.setCPUThrottlingRate", {"rate": rate})
    page.evaluate(WATCH)
    return page


def one_round(page, window: float) -> dict[str, tuple[float, float]]:
    """Click the tabs round once: {tab: (long-task s, drawn s)}."""
    got = {}
    for tab, control in TABS.items():
        page.evaluate(MARK)
        page.get_by_role("tab", name=tab, exact=True).click()
        drawn = page.evaluate(DRAWN, control) / 1000
        time.sleep(window)
        got[tab] = (page.evaluate(LONG, window * 1000) / 1000, drawn)
    return got


def idle(page, seconds: float) -> dict[str, tuple[float, int]]:
    """Each tab shown and left alone: {tab: (long-task s in `seconds`, Gradio calls in them)}."""
    got = {}
    for tab, control in TABS.items():
        page.get_by_role("tab", name=tab, exact=True).click()
        page.evaluate(DRAWN.replace("window.__click", "0"), control)
        time.sleep(2)  # the tab's own work on showing is the clicks' figure, not this one
        page.evaluate(MARK)
        time.sleep(seconds)
        calls = page.evaluate("t => performance.getEntriesByType('resource').filter(r => r.startTime > t"
                              " && r.name.includes('/gradio_api/')).length", page.evaluate("() => window.__click"))
        got[tab] = (page.evaluate(LONG, seconds * 1000) / 1000, calls)
    return got


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--against", metavar="REV", help="also serve the app as it was at this git revision")
    ap.add_argument("--repeat", type=int, default=4)
    ap.add_argument("--window", type=float, default=2.5, help="seconds after each click whose long tasks count")
    ap.add_argument("--slow-window", type=float, default=6.0, help="the same on a slowed page")
    ap.add_argument("--rates", type=float, nargs="+", default=[1.0], help="CPU slow-downs (1: as is)")
    ap.add_argument("--idle", type=float, default=10.0, help="seconds each tab is left alone after the rounds")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    started = time.perf_counter()
    results, idles = {}, {}
    load = [os.getloadavg()[0]]
    try:
        with served_versions(args.against) as servers, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"),
                                        args=["--headless", "--no-sandbox", "--disable-gpu"])
            for rate in args.rates:
                window = args.window if rate == 1 else args.slow_window
                for _ in range(args.repeat):  # the versions in turn, one page open at a time (the load drifts)
                    for name, url in servers.items():
                        page = open_page(browser, url, rate)
                        one_round(page, window)  # the first round mounts each tab's content once: not counted
                        for tab, got in one_round(page, window).items():
                            results.setdefault((tab, rate, name), []).append(got)
                            print(tab, f"CPU/{rate:g}", name, f"{got[0]:.2f}/{got[1]:.2f}", flush=True)
                        if args.idle and rate == 1:
                            page.evaluate("() => performance.setResourceTimingBufferSize(100000)")
                            for tab, got in idle(page, args.idle).items():
                                idles.setdefault((tab, name), []).append(got)
                                print(tab, "idle", name, f"{got[0]:.2f} s, {got[1]} Gradio calls", flush=True)
                        page.close()
            chromium = browser.version
            browser.close()
    finally:
        load.append(os.getloadavg()[0])

    import gradio
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [BEGIN, "## Switching tabs: the page's main thread after a click (`benchmarks/tab_switch.py`)", "",
             f"{when}. {platform.machine()}, {os.cpu_count()} logical CPUs, no GPU; gradio {gradio.__version__}, "
             f"chromium {chromium}, Python {platform.python_version()}. `python benchmarks/tab_switch.py"
             f"{' --against ' + args.against if args.against else ''} --repeat {args.repeat} --rates "
             f"{' '.join(f'{r:g}' for r in args.rates)} --window {args.window:g} --slow-window {args.slow_window:g}` "
             f"({time.perf_counter() - started:.0f} s); load average {load[0]:.1f} before, {load[1]:.1f} after. "
             "Browser and servers share the CPU. A fresh page at 1024x768 for each round of each version, the "
             "versions in turn; the tabs clicked round twice, the first round not counted. "
             f"**Long tasks**: the main thread's time in tasks over 50 ms from the click until {args.window:g} s "
             f"after it ({args.slow_window:g} s on the slowed page); **drawn**: until the tab's first control is on "
             "screen. Medians, each click's figure beside.", "",
             "| tab | CPU | version | long tasks (median) | each (s) | drawn (median) |",
             "| --- | --- | --- | ---: | --- | ---: |"]
    for (tab, rate, name), got in results.items():
        lines.append(f"| {tab} | {'as is' if rate == 1 else f'{rate:g}x slower'} | {name} | "
                     f"{statistics.median(g[0] for g in got):.2f} s | {', '.join(f'{g[0]:.2f}' for g in got)} | "
                     f"{statistics.median(g[1] for g in got):.2f} s |")
    if idles:
        lines += ["", f"Each tab then left alone for {args.idle:g} s (after 2 s for its own work on showing), at "
                  "chromium's speed: the main thread's time in long tasks and the Gradio calls the page made "
                  "meanwhile.", "",
                  "| tab | version | long tasks (median) | each (s) | Gradio calls (median) |",
                  "| --- | --- | ---: | --- | ---: |"]
        for (tab, name), got in idles.items():
            lines.append(f"| {tab} | {name} | {statistics.median(g[0] for g in got):.2f} s | "
                         f"{', '.join(f'{g[0]:.2f}' for g in got)} | {statistics.median(g[1] for g in got):g} |")
    lines.append(END)
    print("\n".join(lines))
    write_section("\n".join(lines), BEGIN, END)


if __name__ == "__main__":
    main()
