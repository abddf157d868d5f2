"""Train tab: from pressing Start to the first status and the first chart, and how right the time left is.

Starts the whole app in a server process of its own (as `python launch.py` would) and drives the
Train tab in headless chromium with the tab's default settings (swiss_roll, mlp-2d, 1500 steps):
  1. waits until the spare training process the app keeps says it is ready, then presses Start and times, in the page, Start -> the status shows a step
     and Start -> the loss chart has drawn its first trace;
  2. reads the status line's "about N left" as the run goes, at 10% and 50% of its steps, and
     compares it with the time the run then really took to finish;
  3. presses Start again once the next spare is ready (stopped after its first chart);
  4. as before spares: the spare is killed first, so Start starts a fresh interpreter (stopped
     after its first chart).

    python benchmarks/train_start.py [--steps 1500]

Writes its section of benchmarks/RESULTS.md (between its own markers) and prints the numbers.
"""
from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path
from _results import write_section  # noqa: E402  (benchmarks/_results.py, beside this script)
from _scratch import scratch_dir  # noqa: E402  (benchmarks/_scratch.py, beside this script)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
BEGIN, END = "<!-- train_start: begin -->", "<!-- train_start: end -->"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

# Click Start and poll the page (not rAF: headless chromium throttles it) for the first status with a step
# and the first drawn trace of the loss chart; ms since the click.
START_JS = """async () => {
  const status = () => (document.querySelector('#tr-status') || {}).innerText || '';
  const before = status();
  const plot = () => document.querySelector('#tr-loss .js-plotly-plot');
  const oldData = plot() ? plot().data : null;  // the last run's chart stays until the new run's is drawn
  const t0 = performance.now();
  document.querySelector('#tr-start').click();
  let statusMs = null, chartMs = null;
  while (performance.now() - t0 < 180000) {
    const s = status();
    if (statusMs === null && s !== before && /running/.test(s) && /step [1-9]/.test(s)) statusMs = performance.now() - t0;
    const gd = plot();
    if (chartMs === null && gd && gd.data && gd.data !== oldData && gd.data.some(t => t.x && t.x.length > 0))
      chartMs = performance.now() - t0;
    if (statusMs !== null && chartMs !== null) return [statusMs, chartMs];
    await new Promise(r => setTimeout(r, 20));
  }
  return [statusMs, chartMs];
}"""


def serve(port: int, runs: str) -> None:
    """Server mode: the app; prints `spare <pid>` whenever the job's spare training process changes."""
    from explorer.app import build_app, launch_options
    from explorer.context import Settings
    from explorer.jobs import manager_for

    demo = build_app(Settings(runs_dir=Path(runs)))
    job = manager_for(demo.ctx)

    def report() -> None:
        last = None
        while True:
            spare = job._spare
            now = (spare[0].pid if spare is not None else None, job.spare_ready())
            if now != last:
                print(f"spare {now[0]} {'ready' if now[1] else 'starting'}", flush=True)
                last = now
            time.sleep(0.1)

    threading.Thread(target=report, daemon=True).start()
    demo.queue().launch(server_name="127.0.0.1", server_port=port, quiet=True, **launch_options())


class Spares:
    """Follows the server's `spare <pid> ready|starting` lines."""

    def __init__(self, stream):
        self.pid: int | None = None
        self.ready = False
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream) -> None:
        for line in stream:
            if line.startswith("spare "):
                _, pid, state = line.split()
                self.pid, self.ready = (None if pid == "None" else int(pid)), state == "ready"

    def wait_ready(self, timeout: float = 600.0) -> tuple[int, float]:
        """Wait until the spare training process says it is ready; returns (pid, seconds waited)."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if self.ready and self.pid:
                return self.pid, time.monotonic() - start
            time.sleep(0.1)
        raise TimeoutError("no spare training process became ready")


def parse_left(text: str) -> float | None:
    """Seconds in the status line's 'about 3 min 05 s left' (format_seconds), None if it shows none."""
    m = re.search(r"about ([\d hmins]+?) left", text)
    if not m:
        return None
    unit = {"h": 3600, "min": 60, "s": 1}
    return float(sum(int(n) * unit[u] for n, u in re.findall(r"(\d+) (h|min|s)\b", m.group(1))))


def status_numbers(page) -> tuple[str, int, int, float | None]:
    """(state, step, steps_total, seconds left) from the status line."""
    text = page.locator("#tr-status").inner_text()
    m = re.search(r"step ([\d,]+) / ([\d,]+)", text)
    step, total = (int(m.group(1).replace(",", "")), int(m.group(2).replace(",", ""))) if m else (0, 0)
    state = text.split()[0] if text.split() else ""
    return state, step, total, parse_left(text)


def stop_run(page) -> None:
    page.evaluate("() => document.querySelector('#tr-stop').click()")  # (a locator click can wait on navigation)
    page.wait_for_function("() => /stopped/.test(document.querySelector('#tr-status').innerText)", timeout=120_000)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=1500, help="steps of the run timed for the time left")
    p.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    p.add_argument("--runs", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve:
        serve(args.serve, args.runs)
        return 0

    from playwright.sync_api import sync_playwright

    from benchmarks.slider_during_training import free_port

    port, runs = free_port(), str(scratch_dir("bench-runs-"))
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port), "--runs", runs], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    spares = Spares(server.stdout)
    out: dict = {}
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            deadline = time.monotonic() + 300
            while True:
                try:
                    page.goto(f"http://127.0.0.1:{port}/", timeout=10_000)
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(1)
            page.get_by_role("tab", name="Train", exact=True).click()
            page.wait_for_selector("#tr-start")
            box = page.locator("#tr-steps input[type=number]").first
            box.fill(str(args.steps))
            box.press("Enter")
            _, out["ready_at_open"] = spares.wait_ready()

            # 1. the first run, timed to the end for the time left
            out["first"] = page.evaluate(START_JS)
            print("first", out["first"], flush=True)
            started = time.monotonic()
            samples = {}
            while True:
                state, step, total, left = status_numbers(page)
                now = time.monotonic() - started
                for frac in (0.1, 0.5):
                    if frac not in samples and total and step >= frac * total and left is not None:
                        samples[frac] = (now, step, left)
                if state in ("finished", "failed", "stopped"):
                    break
                time.sleep(0.2)
            finished = time.monotonic() - started
            out["run_seconds"], out["state"] = finished, state
            out["eta"] = {frac: (step, left, finished - now) for frac, (now, step, left) in samples.items()}
            print("run", finished, state, out["eta"], flush=True)

            # 2. again, once the next spare is ready
            _, out["ready_after_run"] = spares.wait_ready()
            out["second"] = page.evaluate(START_JS)
            stop_run(page)

            # 3. without a spare: a fresh interpreter imports torch and the trainer after Start
            pid, _ = spares.wait_ready()
            os.kill(pid, signal.SIGKILL)
            time.sleep(0.5)
            out["cold"] = page.evaluate(START_JS)
            stop_run(page)
            browser.close()
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
    out["load"] = os.getloadavg()
    print(out)
    write_results(args, out)
    return 0


def _ms(pair) -> str:
    s, c = pair
    f = lambda v: "never" if v is None else f"{v / 1000:.2f} s"  # noqa: E731
    return f"{f(s)} | {f(c)}"


def write_results(args, out: dict) -> None:
    import platform

    import gradio
    import torch

    eta_rows = []
    for frac in (0.1, 0.5):
        if frac in out["eta"]:
            step, left, real = out["eta"][frac]
            err = 100 * (left - real) / real if real > 0 else float("nan")
            eta_rows.append(f"| {int(frac * 100)}% (step {step:,}) | {left} s | {real:.1f} s | {err:+.0f}% |")
        else:
            eta_rows.append(f"| {int(frac * 100)}% | not read | | |")
    load = out["load"]
    rows = "\n".join(eta_rows)
    section = f"""{BEGIN}

Device: {os.cpu_count()}-core {platform.machine()} CPU shared with other jobs, no GPU; torch {torch.__version__},
gradio {gradio.__version__}; {date.today().isoformat()}. Load average at the end: {load[0]:.1f} / {load[1]:.1f} /
{load[2]:.1f}. The app in its own process as `launch.py` runs it, the Train tab in headless chromium with its
default settings (swiss_roll, mlp-2d, batch 128, {args.steps} steps, a preview every 100); times in the page
from the click on Start (Start's reply waits for the run's first step and draws the first view at once;
later views follow the tab's once-a-second poll).
`benchmarks/train_start.py`.

| Start pressed | first status with a step | first loss chart |
| --- | --- | --- |
| spare process ready (the app's spare, {out['ready_at_open']:.0f} s after the page opened) | {_ms(out['first'])} |
| the next run, spare ready again ({out['ready_after_run']:.0f} s after the last run ended) | {_ms(out['second'])} |
| no spare (killed first: a fresh interpreter imports torch, as before) | {_ms(out['cold'])} |

Time left shown in the status line against the time the run then really took ({out['run_seconds']:.1f} s from
Start to finished as the page saw it; target within +/-25% from 10% of the run):

| read at | shown | real | error |
| --- | --- | --- | --- |
{rows}
{END}"""
    write_section(section, BEGIN, END, RESULTS)


if __name__ == "__main__":
    sys.exit(main())
