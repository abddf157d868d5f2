"""Measure each shipped checkpoint's figures with the current floors and store them beside it (figures.json).

    .venv/bin/python benchmarks/checkpoint_figures.py [NAME ...] [--threads 1]

The settings per kind are fixed here (2-D toys: n = 2000 with DDPM 1000 steps and with DDIM 50;
digits, shapes, signals: n = 1000 with DDIM 50; seed 0), so a rerun on any machine measures the
same thing. benchmarks/checkpoint_table.py writes assets/checkpoints/README.md's table from these
files; nobody types the numbers.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.checkpoint import load_config  # noqa: E402
from core.evaluate import evaluate_checkpoint  # noqa: E402
from core.goals import check, off_squares  # noqa: E402
from core.threads import apply_threads  # noqa: E402

CKPTS = ROOT / "assets" / "checkpoints"
ORDER = ["swiss_roll", "moons", "gaussians8", "checkerboard", "rings", "spiral",
         "signals_conv1d", "signals_gru", "digits", "shapes"]
SETTINGS = {"points": [("ddpm", 1000, 2000), ("ddim", 50, 2000)], "image": [("ddim", 50, 1000)],
            "signal": [("ddim", 50, 1000)]}
KEEP = ("label", "value", "interval", "floor", "floor_sd", "n_floor", "better", "vs_floor")


def measure(name: str) -> dict:
    path = CKPTS / name
    config, meta = load_config(path)
    runs = []
    for sampler, steps, n in SETTINGS[meta["kind"]]:
        load = os.getloadavg()[0]
        r, gen = evaluate_checkpoint(path, n, sampler=sampler, steps=steps, seed=0, device="cpu", return_samples=True)
        run = {"sampler": sampler, "steps": steps, "n": n, "seed": 0,
               "metrics": {k: {f: v.get(f) for f in KEEP} for k, v in r["metrics"].items() if k != "mse"},
               "overall": r["overall"], "floor": r["floor"], "seconds": round(r["timings"]["total_s"], 1),
               "load_before": round(load, 2)}
        if config.data.name == "checkerboard":
            run["off_squares"] = off_squares(gen)
        run["goal"] = check(meta["kind"], config.data.name, run)
        runs.append(run)
        print(f"{name} {sampler} {steps} n={n}: {r['overall']['says']}; goal {run['goal']} "
              f"({run['seconds']} s, load {load:.1f})", flush=True)
    return {"checkpoint": name, "dataset": config.data.name, "kind": meta["kind"],
            "measured": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
            "machine": f"{platform.machine()} CPU, {os.cpu_count()} cores, torch threads 1", "runs": runs}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", default=ORDER)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    apply_threads(a.threads)
    for name in a.names:
        if name not in ORDER:
            p.error(f"unknown checkpoint {name!r}; known: {', '.join(ORDER)}")
        t = time.perf_counter()
        out = measure(name)
        (CKPTS / name / "figures.json").write_text(json.dumps(out, indent=1) + "\n")
        print(f"{name}: written in {time.perf_counter() - t:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
