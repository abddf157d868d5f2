"""Measure each shipped checkpoint's figures with the current floors and store them beside it (figures.json).

    .venv/bin/python benchmarks/checkpoint_figures.py [NAME ...] [--threads 1] [--mse-only]

The settings per kind are fixed here, so a rerun on any machine measures the same thing: 2-D toys
n = 2000 with DDPM 1000 steps, with DDIM 50 (the Reverse tab's default) and with the fast setting
DPM-Solver++(2M) SDE, 50 steps, quadratic spacing, each over sample seeds 0-3 (one seed's SWD ratio at n = 2000 is
mostly noise; the goal reads their mean, core.goals.over_seeds; seed 0's full figures are kept for
the table); digits, shapes, signals: n = 1000 with DDIM 50, seed 0. benchmarks/checkpoint_table.py
writes assets/checkpoints/README.md's table from these files; nobody types the numbers.

Each file also records the model's noise-prediction MSE per timestep on real data (`mse`: n as the kind's
first setting, seed 0, exactly what `core.evaluate` reports as metrics["mse"]), which the Evaluate tab
draws before anyone presses Evaluate. `--mse-only` measures that alone (seconds, no sampling) and writes it
into the existing files, leaving their runs as they are.
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

import torch  # noqa: E402

from core.checkpoint import load_config  # noqa: E402
from core.evaluate import checkpoint_noise_mse, evaluate_checkpoint  # noqa: E402
from core.data import load_dataset  # noqa: E402
from core.goals import check, check_image_quality, grounds, off_squares, over_seeds  # noqa: E402
from core.threads import apply_threads  # noqa: E402

CKPTS = ROOT / "assets" / "checkpoints"
ORDER = ["swiss_roll", "moons", "gaussians8", "checkerboard", "rings", "spiral",
         "signals_conv1d", "signals_gru", "digits", "shapes"]
# the fast setting: the 50-step setting closest to the data over 4 seeds of every toy (benchmarks/fast_sampler_2d.py)
FAST = ("dpm++2m-sde", 50, 2000, {"spacing": "quadratic"})
SETTINGS = {"points": [("ddpm", 1000, 2000, {}), ("ddim", 50, 2000, {}), FAST],
            "image": [("ddim", 50, 1000, {})], "signal": [("ddim", 50, 1000, {})]}
# shapes also with the fast setting: its noise in every step is what leaves the grounds plain (DDIM's
# deterministic path leaves them grainy and lighter, at 50 steps as at 250). checkerboard also with the
# solver's steps evenly spaced: quadratic spacing's few steps at high noise, where a point's square is
# decided, leave twice as many points between the squares (1.3 % against 0.6 %, benchmarks/RESULTS.md)
# rings also with DDPM's upper-bound noise (sigma^2 = beta): with cosine's steps the default lower bound thinned
# its rings even with an exact denoiser (benchmarks/RESULTS.md); and with the solver's steps evenly spaced: its
# log-SNR schedule already puts many steps at low noise, and quadratic spacing leaves too few at high noise
MORE = {"shapes": [("dpm++2m-sde", 50, 1000, {"spacing": "quadratic"})],
        "checkerboard": [("dpm++2m-sde", 50, 2000, {})],
        "rings": [("ddpm-beta", 1000, 2000, {}), ("dpm++2m-sde", 50, 2000, {})]}
SEEDS = {"points": 4, "image": 1, "signal": 1}
KEEP = ("label", "value", "interval", "floor", "floor_sd", "n_floor", "better", "vs_floor")


def measure_mse(name: str) -> dict:
    """The noise-prediction MSE per timestep of a shipped model, as the Evaluate tab draws it at rest."""
    path = CKPTS / name
    _, meta = load_config(path)
    n, seed = SETTINGS[meta["kind"]][0][2], 0
    fig = checkpoint_noise_mse(path, n, seed=seed, device="cpu")
    return {"n": fig["n"], "seed": seed, "value": fig["value"], "interval": fig["interval"],
            "warnings": fig["warnings"], "per_t": fig["per_t"], **when_and_where()}


def when_and_where() -> dict:
    return {"measured": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
            "machine": f"{platform.machine()} CPU, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}"}


def measure(name: str) -> dict:
    path = CKPTS / name
    config, meta = load_config(path)
    runs = []
    for sampler, steps, n, opts in SETTINGS[meta["kind"]] + MORE.get(name, []):
        load = os.getloadavg()[0]
        per_seed, seconds = [], 0.0
        for seed in range(SEEDS[meta["kind"]]):
            r, gen = evaluate_checkpoint(path, n, sampler=sampler, steps=steps, seed=seed, device="cpu",
                                         return_samples=True, **opts)
            seconds += r["timings"]["total_s"]
            off = {"off_squares": off_squares(gen)} if config.data.name == "checkerboard" else {}
            if seed == 0:
                run = {"sampler": sampler, "steps": steps, **opts, "n": n, "seed": 0,
                       "metrics": {k: {f: v.get(f) for f in KEEP} for k, v in r["metrics"].items() if k != "mse"},
                       "overall": r["overall"], "floor": r["floor"], **off}
                if config.data.name == "shapes":  # the stricter image-quality goal reads the grounds too
                    run["grounds"] = grounds(gen)
                    run["grounds_real"] = grounds(load_dataset("shapes", n=n, seed=1).x)
            if meta["kind"] == "points":
                m = r["metrics"]
                per_seed.append({"seed": seed, "swd": m["swd"]["value"], "swd_floor": m["swd"]["floor"],
                                 "precision": m["precision"]["value"], "recall": m["recall"]["value"], **off})
        run.update(seconds=round(seconds, 1), load_before=round(load, 2))
        if per_seed:
            run["seeds"] = per_seed
        run["goal"] = check(meta["kind"], config.data.name, over_seeds(per_seed) if per_seed else run)
        if "grounds" in run:
            run["quality"] = check_image_quality(run)
        runs.append(run)
        print(f"{name} {sampler} {steps} {opts or ''} n={n}: {run['overall']['says']}; goal {run['goal']} "
              f"({run['seconds']} s, load {load:.1f})", flush=True)
    return {"checkpoint": name, "dataset": config.data.name, "kind": meta["kind"], **when_and_where(), "runs": runs,
            "mse": measure_mse(name)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", default=ORDER)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--mse-only", action="store_true",
                   help="measure the noise-prediction MSE alone and write it into the existing figures.json")
    a = p.parse_args(argv)
    apply_threads(a.threads)
    for name in a.names:
        if name not in ORDER:
            p.error(f"unknown checkpoint {name!r}; known: {', '.join(ORDER)}")
    for name in a.names:
        t = time.perf_counter()
        target = CKPTS / name / "figures.json"
        if a.mse_only:
            out = json.loads(target.read_text())
            out["mse"] = measure_mse(name)
        else:
            out = measure(name)
        tmp = target.with_suffix(".json.tmp")  # never a half-written file beside the model
        tmp.write_text(json.dumps(out, indent=1) + "\n")
        tmp.replace(target)
        print(f"{name}: written in {time.perf_counter() - t:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
