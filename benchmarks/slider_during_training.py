"""Forward-tab slider latency with and without a training run in the background, and the run's speed.

Starts the whole app in a server process of its own (as `python launch.py` would), drives the
Forward tab's timestep slider from headless chromium, and measures for each move:
  browser: input event -> the new x_t <img> has loaded (performance.now() in the page);
  server:  Gradio's processing of the `noisy` event (preprocess, handler, JPEG encoding), timed
           around Blocks.process_api in the server process.
Then it starts a training run through the Train tab's `train_start` endpoint (the app's job
manager: a child process of the server) and measures in alternating blocks with the run paused
and running, and reports the run's steps/s while the slider was being dragged.

    python benchmarks/slider_during_training.py [--moves 60] [--preset mlp-2d] [--batch 128]

Writes its section of benchmarks/RESULTS.md (between its own markers) and prints the numbers.
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from _results import write_section  # noqa: E402  (benchmarks/_results.py, beside this script)
from _scratch import scratch_dir  # noqa: E402  (benchmarks/_scratch.py, beside this script)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
BEGIN, END = "<!-- slider_during_training: begin -->", "<!-- slider_during_training: end -->"

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

# One slider move: set the range input, fire `input`, resolve when the x_t image's src changed and loaded.
MOVE_JS = """async (t) => {
  const range = document.querySelector('#tslider input[type=range]');
  const img = () => document.querySelector('#ximg img');
  const before = img() ? img().src : null;
  const t0 = performance.now();
  const setter = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set;
  setter.call(range, String(t));
  range.dispatchEvent(new Event('input', {bubbles: true}));
  while (true) {
    const el = img();
    if (el && el.src !== before && el.complete && el.naturalWidth > 0) return performance.now() - t0;
    if (performance.now() - t0 > 5000) return -1;
    await new Promise(r => setTimeout(r, 2));  // not rAF: headless chromium throttles it
  }
}"""


def serve(port: int, runs: str, nice: int | None) -> None:
    """Server mode: the app, with each `noisy` event's processing time printed as `noisy_ms <ms>`."""
    import gradio as gr

    from explorer.app import build_app, launch_options
    from explorer.context import Settings

    original = gr.blocks.Blocks.process_api

    async def timed(self, block_fn, *args, **kwargs):
        start = time.perf_counter()
        try:
            return await original(self, block_fn, *args, **kwargs)
        finally:
            if getattr(block_fn, "api_name", None) == "noisy":
                print(f"noisy_ms {(time.perf_counter() - start) * 1000:.2f}", flush=True)

    gr.blocks.Blocks.process_api = timed
    demo = build_app(Settings(runs_dir=Path(runs)))
    if nice is not None:
        from explorer.jobs import manager_for

        manager_for(demo.ctx).nice = nice
    demo.queue().launch(server_name="127.0.0.1", server_port=port, quiet=True, **launch_options())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerTimes:
    """Collects the server's `noisy_ms` lines from its stdout."""

    def __init__(self, stream):
        self.values: list[float] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream) -> None:
        for line in stream:
            if line.startswith("noisy_ms "):
                with self._lock:
                    self.values.append(float(line.split()[1]))

    def take(self) -> list[float]:
        with self._lock:
            out, self.values = self.values, []
        return out


def drag(browser, url: str, moves: int, times: "ServerTimes", warm: int = 2) -> tuple[list[float], list[float]]:
    """Move the slider `moves` times in a fresh page, waiting for each new image.

    Returns (browser ms, server ms) per measured move; the first `warm` moves are not counted.

    A fresh page per block: within one page the latency was seen to creep up move after move
    (with or without the Train tab), which would confound the comparison between conditions.
    """
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(url)
        page.wait_for_selector("#ximg img", timeout=60_000)
        out = []
        for i in range(warm + moves):
            if i == warm:
                time.sleep(0.3)
                times.take()
            ms = page.evaluate(MOVE_JS, 50 + (i * 37) % 900)
            if ms > 0 and i >= warm:
                out.append(ms)
            time.sleep(0.05)
        time.sleep(0.3)  # the server's last line may trail the image
        return out, times.take()
    finally:
        page.close()


def summary(name: str, values: list[float]) -> str:
    if not values:
        return f"{name}: no samples"
    p90 = statistics.quantiles(values, n=10)[8] if len(values) >= 10 else max(values)
    return f"{name}: median {statistics.median(values):.1f} ms, p90 {p90:.1f} ms (n={len(values)})"


def _cell(values: list[float]) -> str:
    if not values:
        return "no samples"
    p90 = statistics.quantiles(values, n=10)[8] if len(values) >= 10 else max(values)
    return f"median {statistics.median(values):.0f} ms (p90 {p90:.0f}, n={len(values)})"


def write_results(args, results: dict, rate: float, wall: float, quiet_rate: float, load) -> None:
    """Replace this benchmark's section of RESULTS.md."""
    import platform

    import gradio
    import torch

    rows = "\n".join(f"| {name} | {_cell(b)} | {_cell(s)} |" for name, (b, s) in results.items())
    med = {name: (statistics.median(b) if b else None, statistics.median(s) if s else None)
           for name, (b, s) in results.items()}
    comparison = ""
    if med.get("training") and med.get("paused") and None not in med["training"] + med["paused"]:
        (bt, st), (bp, sp) = med["training"], med["paused"]
        comparison = (f"With the run going, the server-side median is {st:.0f} ms against {sp:.0f} ms paused "
                      f"({st / sp:.2f}x); the browser median {bt:.0f} ms against {bp:.0f} ms ({bt / bp:.2f}x).")
    nice = args.nice if args.nice is not None else 5
    section = f"""{BEGIN}
## Forward slider while a training run goes on (`benchmarks/slider_during_training.py`)

Device: {os.cpu_count()}-core {platform.machine()} CPU shared with other jobs, no GPU; torch {torch.__version__},
gradio {gradio.__version__}. Load average at the end: {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}.
The app runs in its own process as `launch.py` runs it; the run ({args.preset} on {args.dataset}, batch
{args.batch}) is the Train tab's job: a child process of the server with 1 torch thread at nice {nice}.
Slider moves alternate in blocks between the run paused and running (fresh page per block).

| condition | browser: input event -> new x_t image loaded | server: Gradio processing of the event |
| --- | --- | --- |
{rows}

Training speed while the slider was dragged: {rate:.1f} steps/s over {wall:.0f} s of wall time; left alone
afterwards: {quiet_rate:.1f} steps/s (the trainer's smoothed figure).
Targets: <= 20 ms server side, <= 80 ms browser median. {comparison}
Browser figures include every wait for a core: on a machine shared with other jobs (see the load
average) they say more about the machine than about the app; compare the conditions with each other.
{END}"""
    write_section(section, BEGIN, END, RESULTS)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--moves", type=int, default=60, help="moves per condition")
    p.add_argument("--rounds", type=int, default=4, help="paused/running alternations")
    p.add_argument("--preset", default="mlp-2d")
    p.add_argument("--dataset", default="swiss_roll")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--nice", type=int, default=None, help="niceness of the training process (app default: 5)")
    p.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    p.add_argument("--runs", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve:
        serve(args.serve, args.runs, args.nice)
        return 0

    from gradio_client import Client
    from playwright.sync_api import sync_playwright

    port = free_port()
    runs = str(scratch_dir("bench-runs-"))
    server = subprocess.Popen([sys.executable, "-u", __file__, "--serve", str(port), "--runs", runs,
                               *(["--nice", str(args.nice)] if args.nice is not None else [])],
                              stdout=subprocess.PIPE, text=True, cwd=str(ROOT))
    times = ServerTimes(server.stdout)
    url = f"http://127.0.0.1:{port}/"
    results = {}
    try:
        client = None
        for _ in range(120):
            try:
                client = Client(url, verbose=False)
                break
            except Exception:
                time.sleep(1)
        print(f"server up on port {port}", flush=True)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            drag(browser, url, 4, times)  # warm-up: the first requests compile and cache
            results["no run"] = ([], [])
            for _ in range(args.rounds):
                b_ms, s_ms = drag(browser, url, max(1, args.moves // args.rounds), times)
                results["no run"][0].extend(b_ms)
                results["no run"][1].extend(s_ms)
            print("no run:", *(summary(n, v) for n, v in zip(("browser", "server"), results["no run"])), flush=True)

            client.predict(args.dataset, args.preset, "linear", 1000, "eps", 2e-3, args.batch, 1_000_000, 200, 0, 0,
                           32, 3, api_name="/train_start")
            while client.predict(api_name="/train_status")["status"] == "starting":
                time.sleep(0.5)
            time.sleep(5)  # let the run's speed settle
            # Alternate paused and running blocks, so a change in the machine's other load hits both alike.
            results["paused"], results["training"] = ([], []), ([], [])
            steps, wall = 0, 0.0
            per_block = max(1, args.moves // args.rounds)
            for _ in range(args.rounds):
                client.predict(api_name="/train_pause")
                time.sleep(1.5)
                b_ms, s_ms = drag(browser, url, per_block, times)
                results["paused"][0].extend(b_ms)
                results["paused"][1].extend(s_ms)
                client.predict(api_name="/train_resume")
                time.sleep(1.5)
                before, wall0 = client.predict(api_name="/train_status"), time.perf_counter()
                b_ms, s_ms = drag(browser, url, per_block, times)
                results["training"][0].extend(b_ms)
                results["training"][1].extend(s_ms)
                after = client.predict(api_name="/train_status")
                steps += after["step"] - before["step"]
                wall += time.perf_counter() - wall0
            time.sleep(10)
            quiet = client.predict(api_name="/train_status")
            browser.close()
        client.predict(api_name="/train_stop")
    finally:
        server.terminate()
        server.wait(30)

    rate = steps / wall
    write_results(args, results, rate, wall, quiet["steps_per_s"], os.getloadavg())
    print(f"training process: {args.preset} on {args.dataset}, batch {args.batch}, "
          f"nice {args.nice if args.nice is not None else 'default'}; machine load now {os.getloadavg()[0]:.1f}")
    for name, (b, s) in results.items():
        print(f"{name:9s} {summary('browser', b)} | {summary('server', s)}")
    print(f"training speed while the slider moved: {rate:.1f} steps/s over {wall:.0f} s; "
          f"afterwards, untouched: {quiet['steps_per_s']:.1f} steps/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
