"""Start-up of the app: `python launch.py` until the page answers, and where the time goes.

    python benchmarks/startup.py [--runs 3]

Each run starts launch.py as a child on a free port and polls the page until it answers; a second
child times the phases one by one (import torch, import gradio, import the app, build the Blocks,
launch the server). Both go to benchmarks/RESULTS-startup.md with the load average and the device.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PHASES = r"""
import json, os, time
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
t = [time.perf_counter()]
import torch; t.append(time.perf_counter())
import gradio; t.append(time.perf_counter())
from explorer.app import build_app, launch_options; from explorer.context import Settings; t.append(time.perf_counter())
demo = build_app(Settings()); t.append(time.perf_counter())
demo.queue().launch(server_port=int(os.environ["PORT"]), prevent_thread_lock=True, quiet=True, **launch_options())
t.append(time.perf_counter())
demo.close()
print(json.dumps([b - a for a, b in zip(t, t[1:])]))
"""
NAMES = ["import torch", "import gradio", "import the app", "build the Blocks (tabs, first pictures)", "launch"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def time_to_page() -> float:
    port = free_port()
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "launch.py", "--port", str(port)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read()
                return time.perf_counter() - start
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError("launch.py exited before answering")
                time.sleep(0.05)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def phases() -> list[float]:
    out = subprocess.run([sys.executable, "-c", PHASES], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={**os.environ, "PORT": str(free_port())})
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3)
    a = p.parse_args()
    totals, parts = [], []
    for _ in range(a.runs):
        totals.append(time_to_page())
        parts.append(phases())
        print(f"page after {totals[-1]:.1f} s; phases {[round(x, 2) for x in parts[-1]]}", flush=True)
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    import torch
    import gradio
    lines = [
        "# Start-up (`benchmarks/startup.py`)", "",
        f"Device: {os.cpu_count()}-core {platform.machine()} CPU, no GPU; torch {torch.__version__}, gradio "
        f"{gradio.__version__}; {date.today()}; load average after the runs: {load}.", "",
        f"`python launch.py` until the page answers: median {statistics.median(totals):.1f} s "
        f"(runs: {', '.join(f'{t:.1f}' for t in totals)}).", "",
        "| phase | median seconds |", "| --- | ---: |",
    ]
    for k, name in enumerate(NAMES):
        lines.append(f"| {name} | {statistics.median(p[k] for p in parts):.2f} |")
    (Path(__file__).parent / "RESULTS-startup.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
