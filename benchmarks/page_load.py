"""How long a fresh page of the app takes to be ready, on this CPU and on a phone-class one.

Starts the app as `python launch.py` serves it and, with `--against REV`, the app as it was at git
revision REV (a worktree of this repository, the same Python and packages) beside it; then opens, in
turn on each server, pages with an empty browser cache in headless chromium: the student's join link
(the quiz alone, as a phone opens it), the plain app, and a link to the Reverse tab. Each page is
opened at chromium's CPU speed and slowed 4x (Emulation.setCPUThrottlingRate, roughly a phone's
CPU against this server's cores). Ready: the page's ready marker (`#de-ready [data-ready]`, which the
opening view sets) and, where the page shows them, the Forward tab's two figures drawn. Reports the median of `--repeat` openings, whether the page loaded plotly, and
the main thread's time in long tasks (PerformanceObserver).

    python benchmarks/page_load.py [--against HEAD~1] [--repeat 3]

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

BEGIN, END = "<!-- page_load: begin -->", "<!-- page_load: end -->"
PAGES = {"student's join link": "?tab=evaluate&view=quiz&student=1", "plain app": "", "link to Reverse": "?tab=reverse"}
RATES = (1, 4)
LONG_TASKS = """window.__long = 0; new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__long += e.duration; })
  .observe({type: 'longtask', buffered: true});"""


def open_once(browser, url: str, rate: float) -> tuple[float, bool, float]:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    try:
        page = context.new_page()
        page.add_init_script(LONG_TASKS)
        if rate != 1:
            context.new_cdp_session(page).send("Emulation.setCPUThrottlingRate", {"rate": rate})
        t0 = time.perf_counter()
        page.goto(url)
        page.wait_for_selector("#de-ready [data-ready]", state="attached", timeout=300_000)
        # and the Forward tab's figures drawn where the page shows them (they may come after the marker)
        page.wait_for_function("() => { const f = document.querySelector('#fw-figures');"
                               " return !f || f.querySelectorAll('.main-svg').length >= 2; }", timeout=300_000)
        ready = time.perf_counter() - t0
        plotly = page.evaluate("() => performance.getEntriesByType('resource').some(r => /plotly/i.test(r.name))")
        return ready, plotly, page.evaluate("() => window.__long") / 1000
    finally:
        context.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--against", metavar="REV", help="also serve the app as it was at this git revision")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    started = time.perf_counter()
    results: dict = {}
    load = [os.getloadavg()[0]]
    try:
        with served_versions(args.against) as servers, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"),
                                        args=["--headless", "--no-sandbox", "--disable-gpu"])
            for name, url in servers.items():  # a first page each: the server's first page computes its views
                open_once(browser, url, 1)
            for _ in range(args.repeat):
                for page_name, query in PAGES.items():
                    for rate in RATES:
                        for name, url in servers.items():  # the versions in turn, for each page and speed
                            got = open_once(browser, url + query, rate)
                            results.setdefault((page_name, rate, name), []).append(got)
                            print(page_name, f"CPU/{rate}", name, f"ready {got[0]:.2f} s, plotly {got[1]}, "
                                  f"long tasks {got[2]:.2f} s", flush=True)
            chromium = browser.version
            browser.close()
    finally:
        load.append(os.getloadavg()[0])

    import gradio
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [BEGIN, "## A fresh page of the app: time to ready (`benchmarks/page_load.py`)", "",
             f"{when}. {platform.machine()}, {os.cpu_count()} logical CPUs, no GPU; gradio {gradio.__version__}, chromium "
             f"{chromium}, Python {platform.python_version()}. `python benchmarks/page_load.py"
             f"{' --against ' + args.against if args.against else ''} --repeat {args.repeat}` "
             f"({time.perf_counter() - started:.0f} s); load average {load[0]:.1f} before, {load[1]:.1f} after. Browser and "
             "servers share the CPU. Each page opened with an empty browser cache at 390x844 (a phone's size), at "
             "chromium's speed and slowed 4x; medians of the openings, the versions in turn. Ready: the page's "
             "ready marker and, where it shows them, the Forward tab's figures drawn.", "",
             "| page | CPU | version | ready (median) | each | plotly loaded | main thread in long tasks (median) |",
             "| --- | --- | --- | ---: | --- | --- | ---: |"]
    for (page_name, rate, name), got in results.items():
        lines.append(f"| {page_name} | {'as is' if rate == 1 else f'{rate}x slower'} | {name} | "
                     f"{statistics.median(g[0] for g in got):.1f} s | {', '.join(f'{g[0]:.1f}' for g in got)} | "
                     f"{'yes' if any(g[1] for g in got) else 'no'} | {statistics.median(g[2] for g in got):.1f} s |")
    lines.append(END)
    print("\n".join(lines))
    write_section("\n".join(lines), BEGIN, END)


if __name__ == "__main__":
    main()
