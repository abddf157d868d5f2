"""shapes' grounds (and figures) by sampler: is what keeps shapes from image quality the sampler or the weights?

    python benchmarks/shapes_samplers.py [--n 200] [--threads 2] [--figures dpm++2m-sde:100:quadratic]
                                         [SETTING ...] [--write]

A SETTING is sampler:steps[:spacing] (default: the fast setting at 50, 100 and 200 steps, and DDPM 1000).
For each, the shipped shapes model draws n samples (seed 0) and its grounds are read as the image-quality
goal reads them (core.goals.grounds: each image's 1-pixel frame; level, grain, tint), beside n real images.
Grounds are cheap to read at small n; FID is not (at n = 200 one seed's FID swings several-fold), so
`--figures SETTING` also scores one setting at n = 1000 exactly as benchmarks/checkpoint_figures.py scores
the shipped model (core.evaluate.evaluate_checkpoint: FID, KID, precision against 8 real draws) and checks
the stricter goal (core.goals.check_image_quality).

--write puts the tables in benchmarks/RESULTS-quality.md (its own section), with device, load and date.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a clone without installing

from benchmarks._results import write_section  # noqa: E402
from core.data import load_dataset  # noqa: E402
from core.evaluate import evaluate_checkpoint  # noqa: E402
from core.goals import check_image_quality, grounds  # noqa: E402
from core.sample import draw  # noqa: E402
from core.samplers import sampler_name  # noqa: E402
from core.threads import apply_threads  # noqa: E402

CHECKPOINT = ROOT / "assets" / "checkpoints" / "shapes"
RESULTS = ROOT / "benchmarks" / "RESULTS-quality.md"
BEGIN, END = "<!-- shapes_samplers: begin -->", "<!-- shapes_samplers: end -->"
DEFAULT = ["dpm++2m-sde:50:quadratic", "dpm++2m-sde:100:quadratic", "dpm++2m-sde:200:quadratic", "ddpm:1000"]


def setting(text: str) -> tuple[str, int, str]:
    parts = text.split(":")
    if len(parts) not in (2, 3) or not parts[1].isdigit():
        raise argparse.ArgumentTypeError(f"a setting is sampler:steps[:spacing], got {text!r}")
    return parts[0], int(parts[1]), parts[2] if len(parts) == 3 else "linear"


def words(s: tuple[str, int, str]) -> str:
    sampler, steps, spacing = s
    return f"{sampler_name(sampler)} {steps}" + (f", {spacing} spacing" if spacing != "linear" else "")


def ground_row(label: str, g: dict, seconds: float | None = None) -> str:
    took = "" if seconds is None else f"{seconds:.0f}"
    return (f"| {label} | {took} | {g['level_median']:.3f} | {g['level_p99']:.3f} | {g['level_max']:.3f} | "
            f"{g['grain_p90'] * 255:.1f} | {g['tinted']:.1%} |")


def ground_words(g: dict) -> str:
    return (f"level median {g['level_median']:.3f}, 99th pct {g['level_p99']:.3f}, greatest {g['level_max']:.3f}, "
            f"grain {g['grain_p90'] * 255:.1f}/255, tinted {g['tinted']:.1%}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("settings", nargs="*", type=setting, default=[setting(s) for s in DEFAULT])
    p.add_argument("--n", type=int, default=200, help="samples per setting for the grounds")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--figures", type=setting, help="also score this setting at n = 1000 (FID, KID, precision)")
    p.add_argument("--write", action="store_true")
    a = p.parse_args(argv)
    apply_threads(a.threads)
    load0 = os.getloadavg()
    started = datetime.now(timezone.utc)
    real = grounds(load_dataset("shapes", n=a.n, seed=1).x)
    rows = [ground_row(f"real data (n = {a.n}, seed 1)", real)]
    for s in a.settings:
        t = time.perf_counter()
        x, _ = draw(CHECKPOINT, sampler=s[0], steps=s[1], n=a.n, seed=0, device="cpu", spacing=s[2])
        rows.append(ground_row(words(s), grounds(x), time.perf_counter() - t))
        print(rows[-1], flush=True)
    out = [BEGIN, "## shapes: grounds by sampler (`benchmarks/shapes_samplers.py`)", "",
           f"x86_64 CPU ({os.cpu_count()} logical), {torch.get_num_threads()} torch threads, torch {torch.__version__}, "
           f"{started:%Y-%m-%d %H:%M} UTC; load average before {load0[0]:.1f} / {load0[1]:.1f}, after "
           "{after}. The shipped shapes model, sample seed 0; grounds as the image-quality goal reads them "
           "(core.goals.grounds): the level (0 black, 1 white) of each image's 1-pixel frame, its median and 99th "
           "percentile over the images and the greatest; grain, the 90th percentile of the frames' median "
           "deviation, in 8-bit levels; tinted, the share of images whose frame's channels differ by more than "
           "one 8-bit level. The goal: level median and 99th percentile within the real grounds' range, grain "
           "and tint as the data's (0).", "",
           f"| sampler (n = {a.n}) | seconds | level median | 99th pct | greatest | grain, 90th pct (/255) | tinted |",
           "|---|---:|---:|---:|---:|---:|---:|", *rows]
    if a.figures:
        s = a.figures
        t = time.perf_counter()
        r, gen = evaluate_checkpoint(CHECKPOINT, 1000, sampler=s[0], steps=s[1], seed=0, device="cpu",
                                     spacing=s[2], return_samples=True)
        took = time.perf_counter() - t
        m = r["metrics"]
        run = {"metrics": m, "grounds": grounds(gen), "grounds_real": grounds(load_dataset("shapes", n=1000, seed=1).x)}
        q = check_image_quality(run)
        fid, kid, prec = m["fid"], m["kid"], m["precision"]
        lo, hi = fid["vs_floor"]["interval"] if fid.get("vs_floor") else (float("nan"), float("nan"))
        out += ["", f"Scored as benchmarks/checkpoint_figures.py scores the shipped model: {words(s)}, n = 1000, "
                    f"seed 0, {took:.0f} s with the scoring.", "",
                "| figure | value | real data's own (mean ± sd, 8 draws) | against it |", "|---|---:|---:|---|",
                f"| FID | {fid['value']:.4g} | {fid['floor']:.4g} ± {fid['floor_sd']:.2g} | "
                f"x{fid['value'] / fid['floor']:.2f} [{lo:.2f}, {hi:.2f}] |",
                f"| KID | {kid['value']:.4g} | {kid['floor']:.4g} ± {kid['floor_sd']:.2g} | "
                f"{kid['value'] - kid['floor']:+.3g} |",
                f"| precision | {prec['value']:.3f} | {prec['floor']:.3f} ± {prec['floor_sd']:.2g} | "
                f"{prec['value'] - prec['floor']:+.3f} |",
                f"| recall | {m['recall']['value']:.3f} | {m['recall']['floor']:.3f} ± {m['recall']['floor_sd']:.2g} | "
                f"{m['recall']['value'] - m['recall']['floor']:+.3f} |",
                "", f"Grounds at n = 1000: {ground_words(run['grounds'])}; real data's (seed 1): "
                    f"{ground_words(run['grounds_real'])}.", "",
                f"Image-quality goal (core.goals.check_image_quality): **{'met' if q['met'] else 'missed'}**: "
                f"{'; '.join(q['why']) if isinstance(q['why'], list) else q['why']}."]
        print("\n".join(out[-12:]), flush=True)
    load1 = os.getloadavg()
    out = [line.replace("{after}", f"{load1[0]:.1f} / {load1[1]:.1f}") for line in out] + [END]
    if a.write:
        write_section("\n".join(out), BEGIN, END, RESULTS)
        print(f"written to {RESULTS}")
    else:
        print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
