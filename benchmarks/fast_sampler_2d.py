"""Why a fast sampler lands further from a 2-D toy's data than DDPM 1000: the same checkpoint sampled
several ways, each scored against a 200,000-point real reference as real data is at the same n.

    .venv/bin/python benchmarks/fast_sampler_2d.py [NAME-or-FOLDER ...] [--n 2000] [--only LABEL ...] [--seeds K]

Per setting: SWD to the reference and its ratio to real data's own (mean of 8 real draws), k-NN
precision/recall against one real draw, strays (samples farther from the data than 99.9 % of real
points are), the spread across the arms (mean distance to the nearest reference point, real data's
own beside it), checkerboard's share off the squares. Settings separate the suspects: the x0 clip
(on/off), the deterministic last jump from t = 20 (DDIM 50 against DDIM 50 with eta = 1, and DDIM
with all 1000 steps), and the solver (DPM-Solver++). With `--seeds K`: only the SWD ratio, for sample seeds
0..K-1 (settings paired seed by seed) beside K fresh real draws scored alike, since one seed's ratio at
n = 2000 is mostly noise, with the medians of precision and recall and checkerboard's share off the squares.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.checkpoint import load, sampling_clip  # noqa: E402
from core.floors import draw_seeds, fresh_draw, sliced_reference  # noqa: E402
from core.goals import off_squares  # noqa: E402
from core.metrics import knn_distances, precision_recall  # noqa: E402
from core.samplers import get_sampler  # noqa: E402
from core.schedules import make_schedule  # noqa: E402


SETTINGS = [  # label, sampler, steps, options, clip on
    ("ddpm 1000", "ddpm", 1000, {}, True),
    ("ddim 50", "ddim", 50, {}, True),
    ("ddim 50, no clip", "ddim", 50, {}, False),
    ("ddim 50, eta 1", "ddim", 50, {"eta": 1.0}, True),
    ("ddim 200", "ddim", 200, {}, True),
    ("ddim 1000", "ddim", 1000, {}, True),
    ("ddim 1000, eta 1", "ddim", 1000, {"eta": 1.0}, True),  # the control: DDPM's chain by another road
    ("dpm++ 20", "dpm++2m", 20, {}, True),
    ("dpm++ 50", "dpm++2m", 50, {}, True),
    ("ddim 50, quadratic spacing", "ddim", 50, {"spacing": "quadratic"}, True),
    ("ddim 50, eta 1, quadratic spacing", "ddim", 50, {"eta": 1.0, "spacing": "quadratic"}, True),
    ("dpm++ 20, quadratic spacing", "dpm++2m", 20, {"spacing": "quadratic"}, True),
    ("dpm++ sde 50", "dpm++2m-sde", 50, {}, True),
    ("dpm++ sde 50, quadratic spacing", "dpm++2m-sde", 50, {"spacing": "quadratic"}, True),
    ("dpm++ sde 20, quadratic spacing", "dpm++2m-sde", 20, {"spacing": "quadratic"}, True),
]


def settings(only):
    """(label, sample) for each setting chosen (all when `only` is empty); sample(model, config, meta,
    schedule, n, seed) runs it to the end and returns the (n, 2) samples."""
    for label, sampler, steps, opts, clip in SETTINGS:
        if only and label not in only:
            continue

        def sample(model, config, meta, schedule, n, seed, sampler=sampler, steps=steps, opts=opts, clip=clip):
            last = None
            for last in get_sampler(sampler)(model, schedule, (n, 2), steps=steps,
                                             generator=torch.Generator().manual_seed(seed),
                                             prediction=config.diffusion.prediction,
                                             clip=sampling_clip(meta) if clip else None, **opts):
                pass
            return last.x_next.float()

        yield label, sample


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", default=["moons", "checkerboard", "swiss_roll", "rings"],
                   help="shipped checkpoints by name, or checkpoint folders by path (e.g. runs/moons-v)")
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--only", nargs="*", help="the settings to run, by label (default: all)")
    p.add_argument("--seeds", type=int, default=1,
                   help="sample seeds per setting: above 1, print the SWD ratio of each seed, their median and "
                        "the median precision and recall, beside as many extra real draws scored the same way "
                        "(one seed's ratio is noisy)")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    print(f"load average at start: {os.getloadavg()[0]:.1f} (2 cores)")
    for name in a.names:
        folder = Path(name) if ("/" in name or Path(name).is_dir()) else ROOT / "assets" / "checkpoints" / name
        model, config, meta = load(folder)
        model.eval()
        schedule = make_schedule(config.diffusion.schedule, config.diffusion.T)
        ref = sliced_reference(config)
        seeds = draw_seeds(config, 0)
        real = fresh_draw(config, a.n, seeds[0])
        floor = [ref(fresh_draw(config, a.n, s)) for s in seeds[1:]]
        near = ref.reference[torch.randperm(ref.size, generator=torch.Generator().manual_seed(0))[:20000]]
        real_nn = knn_distances(fresh_draw(config, a.n, seeds[1]), near, 1)[0][:, 0]
        stray_at = float(torch.quantile(real_nn, 0.999))
        fl = torch.tensor(floor)
        if a.seeds > 1:
            seeded(a, name, model, config, meta, schedule, ref, fl, real)
            continue
        print(f"\n## {name} ({config.diffusion.prediction} prediction, {meta.get('steps')} steps, n={a.n}): "
              f"real data's own SWD {fl.mean():.4f} +/- {fl.std():.4f}; real spread (mean distance to nearest "
              f"of 20k real) {real_nn.mean():.4f}; x0 clip {sampling_clip(meta)}")
        print("| setting | SWD | x real's own | precision | recall | strays | spread | off squares | s |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for label, sample in settings(a.only):
            t = time.perf_counter()
            x = sample(model, config, meta, schedule, a.n, 0)
            swd = ref(x)
            pr = precision_recall(real, x, k=3)
            nn = knn_distances(x, near, 1)[0][:, 0]
            off = f"{off_squares(x):.2%}" if config.data.name == "checkerboard" else "-"
            print(f"| {label} | {swd:.4f} | {swd / fl.mean():.2f} | {pr['precision']:.3f} | {pr['recall']:.3f} | "
                  f"{float((nn > stray_at).double().mean()):.2%} | {nn.mean():.4f} | {off} | "
                  f"{time.perf_counter() - t:.0f} |", flush=True)
    return 0


def seeded(a, name, model, config, meta, schedule, ref, fl, real) -> None:
    """The SWD ratio to real data's own for sample seeds 0..seeds-1 (the same x_T for every setting, so the
    settings pair up seed by seed), and as many extra real draws (data seeds 1000...) scored alike; beside
    them the medians of k-NN precision and recall (k = 3, against one real draw) and checkerboard's share
    off the squares per seed."""
    board = config.data.name == "checkerboard"
    print(f"\n## {name} ({config.diffusion.prediction} prediction, {meta.get('steps')} steps, n={a.n}): "
          f"SWD / real data's own mean ({fl.mean():.4f}), by sample seed")
    print("| setting | " + " | ".join(str(k) for k in range(a.seeds)) + " | median | above 1.3x | precision "
          "| recall |" + (" off the squares |" if board else ""))
    print("|---|" + "---:|" * (a.seeds + 4) + ("---|" if board else ""))

    def row(label, xs):
        r = [float(ref(x)) / float(fl.mean()) for x in xs]
        prs = [precision_recall(real, x, k=3) for x in xs]
        off = (" " + ", ".join(f"{off_squares(x):.1%}" for x in xs) + " |") if board else ""
        print(f"| {label} | " + " | ".join(f"{x:.2f}" for x in r) + f" | {statistics.median(r):.2f} | "
              f"{sum(x > 1.3 for x in r)} of {len(r)} | {statistics.median(p['precision'] for p in prs):.3f} | "
              f"{statistics.median(p['recall'] for p in prs):.3f} |{off}", flush=True)

    row("real data, fresh draws", [fresh_draw(config, a.n, 1000 + k) for k in range(a.seeds)])
    for label, sample in settings(a.only):
        row(label, [sample(model, config, meta, schedule, a.n, seed) for seed in range(a.seeds)])


if __name__ == "__main__":
    sys.exit(main())
