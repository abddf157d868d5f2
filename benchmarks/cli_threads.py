"""Command-line training and sampling time by torch thread count, quiet or under load.

    python benchmarks/cli_threads.py [--threads 1 2] [--busy 0 2]

Runs the real CLIs as child processes (`core.train --dataset swiss_roll --steps 200`, `core.train
--dataset digits --steps 60`, `core.sample` of the shipped digits model, DDIM 50, n=64), once per
thread count, first with the machine as it is and then with `--busy` spinning processes added
(one busy loop each: the other work of a shared machine). Wall-clock seconds go to
benchmarks/RESULTS-threads.md with the load average and the device.
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
CASES = {
    "train swiss_roll, 200 steps": ["-m", "core.train", "--dataset", "swiss_roll", "--steps", "200", "--out", "{tmp}/a"],
    "train digits, 60 steps": ["-m", "core.train", "--dataset", "digits", "--steps", "60", "--out", "{tmp}/b"],
    "sample digits, DDIM 50, n=64": ["-m", "core.sample", "--checkpoint", "assets/checkpoints/digits", "--n", "64",
                                     "--out", "{tmp}/c.png"],
}


def run(args: list[str], threads: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, *[a.format(tmp=tmp) for a in args], "--threads", str(threads)]
        start = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--busy", type=int, nargs="+", default=[0, os.cpu_count() or 2],
                   help="busy-loop processes added for each round (0: the machine as it is)")
    a = p.parse_args()
    rows = []
    for busy in a.busy:
        spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(busy)]
        try:
            time.sleep(1.0 if busy else 0.0)
            for name, args in CASES.items():
                secs = {n: run(args, n) for n in a.threads}
                load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
                rows.append((name, busy, secs, load))
                print(name, busy, {n: round(s, 1) for n, s in secs.items()}, load, flush=True)
        finally:
            for s in spinners:
                s.kill()
                s.wait()
    heads = " | ".join(f"{n} thread{'s' if n > 1 else ''}" for n in a.threads)
    lines = [
        "# Command-line tools by torch thread count (`benchmarks/cli_threads.py`)", "",
        f"Device: {os.cpu_count()}-core {platform.machine()} CPU, no GPU; torch {torch.__version__}; {date.today()}.",
        "Wall-clock seconds of the whole command (start-up included). 'Busy loops' are extra processes that",
        "each keep one core busy, as other work on a shared machine does; the load average is read after each row.", "",
        f"| command | busy loops | {heads} | load average |", "| --- | ---: | " + " | ".join("---:" for _ in a.threads) + " | --- |",
    ]
    for name, busy, secs, load in rows:
        lines.append(f"| {name} | {busy} | " + " | ".join(f"{secs[n]:.1f}" for n in a.threads) + f" | {load} |")
    (Path(__file__).parent / "RESULTS-threads.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
