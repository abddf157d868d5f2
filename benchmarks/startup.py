"""Start-up of the app: `python launch.py` until the page answers, and where the time goes.

    python benchmarks/startup.py [--runs 3]

Each run starts launch.py as a child on a free port and polls the page until it answers; a second
child times the phases one by one (import torch, import gradio, import the app, build the Blocks,
launch the server), and a third times `import gradio` with Gradio's type-stub writer left on. Both go to benchmarks/RESULTS-startup.md with the load average and the device.
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
import explorer  # first, as launch.py does: it keeps Gradio's stub writer out (explorer.gradio_fixes)
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
# The same import with Gradio's type-stub writer left on (as Gradio ships), for comparison.
PLAIN_GRADIO = r"""
import time
import explorer, torch
t = time.perf_counter(); import gradio; print(time.perf_counter() - t)
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


def child(code: str, **env: str) -> str:
    """The last line a child Python printed; its error output if it failed."""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", **env})
    if out.returncode != 0:
        raise RuntimeError(f"a timing child failed:\n{out.stderr[-3000:]}")
    return out.stdout.strip().splitlines()[-1]


def phases() -> list[float]:
    return json.loads(child(PHASES, PORT=str(free_port())))


def plain_gradio() -> float:
    return float(child(PLAIN_GRADIO, DIFFUSION_EXPLORER_GRADIO_STUBS="1"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3)
    a = p.parse_args()
    totals, parts, plain = [], [], []
    for _ in range(a.runs):
        totals.append(time_to_page())
        parts.append(phases())
        plain.append(plain_gradio())
        print(f"page after {totals[-1]:.1f} s; phases {[round(x, 2) for x in parts[-1]]}; "
              f"import gradio with its stub writer {plain[-1]:.2f} s", flush=True)
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
    lines += ["", f"`import gradio` with Gradio's type-stub writer on, as Gradio ships (explorer.gradio_fixes turns it "
              f"off): median {statistics.median(plain):.2f} s, in the same runs."]
    (Path(__file__).parent / "RESULTS-startup.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
