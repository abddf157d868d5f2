"""Where along the reverse process do the shipped shapes model's grounds go wrong?

    python benchmarks/shapes_grounds_by_t.py [--n 128] [--threads 2] [--from 25 50 100 200] [--end-at 10 25 50]
                                             [--checkpoint DIR] [--write]

Real shapes images (seed 1) are noised to a timestep t0 (q(x_t0 | x_0), seed 0) and brought back by the
model three ways: in one call (its predicted x0 at t0), by DDPM's ancestral steps from t0 down to 0
(SDEdit: the image's content survives to t0, the model draws the rest), and by DDIM's deterministic steps
(eta 0) over the same timesteps, which add no fresh noise on the way. Their grounds are read as the
image-quality goal reads them (core.goals.grounds: level, grain and tint of each image's 1-pixel frame).
If grounds come back tinted or too light from small t0, the model's low-noise denoising is at fault; if
only from large t0, the decisions made at high noise are. The whole run from pure noise (t0 = T) is
benchmarks/shapes_samplers.py's DDPM 1000 row.

--end-at: from pure noise (seed 0), the fast setting (DPM-Solver++ 2M SDE, 50 steps, quadratic spacing)
stopped early: the sample is the model's x0 at the last of its timesteps at or above t_min, so the
smallest noise levels, where a faint tint of the whole ground can no longer be told from the image,
are skipped.

--write puts the table in benchmarks/RESULTS-quality.md (its own section), with device, load and date; it
is for the shipped model (another --checkpoint prints its table only).
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
from core import checkpoint  # noqa: E402
from core.data import load_dataset  # noqa: E402
from core.forward import model_predictions, posterior_coefficients, q_sample  # noqa: E402
from core.goals import grounds  # noqa: E402
from core.samplers import SAMPLERS, sampler_options  # noqa: E402
from core.schedules import make_schedule  # noqa: E402
from core.threads import apply_threads  # noqa: E402

CHECKPOINT = ROOT / "assets" / "checkpoints" / "shapes"
RESULTS = ROOT / "benchmarks" / "RESULTS-quality.md"
BEGIN, END = "<!-- shapes_grounds_by_t: begin -->", "<!-- shapes_grounds_by_t: end -->"


def row(label: str, g: dict, extra: str = "") -> str:
    return (f"| {label} | {extra} | {g['level_median']:.3f} | {g['level_p99']:.3f} | {g['grain_p90'] * 255:.1f} | "
            f"{g['tinted']:.1%} |")


@torch.no_grad()
def from_t0(model, schedule, x0: torch.Tensor, t0: int, prediction: str, clip) -> tuple[torch.Tensor, ...]:
    """(the model's x0 at t0 in one call, DDPM ancestral sampling from x_t0 down to 0, and DDIM's deterministic
    steps (eta 0) from the same x_t0: the same path with no fresh noise along it)."""
    g = torch.Generator().manual_seed(0)
    x_t0 = q_sample(schedule, x0, t0, torch.randn(x0.shape, generator=g))
    one, _ = model_predictions(model, schedule, x_t0, t0, prediction, clip)
    abar = schedule.alpha_bar.tolist()
    x, y = x_t0, x_t0
    for t in range(t0, 0, -1):
        pred, _ = model_predictions(model, schedule, x, t, prediction, clip)
        c0, ct, var = posterior_coefficients(abar[t], abar[t - 1])
        x = c0 * pred + ct * x
        if t > 1:
            x = x + var ** 0.5 * torch.randn(x.shape, generator=g)
        pred, eps = model_predictions(model, schedule, y, t, prediction, clip)
        y = abar[t - 1] ** 0.5 * pred + (1 - abar[t - 1]) ** 0.5 * eps  # DDIM (eta 0), Song et al. eq. 12
    return one, x, y


@torch.no_grad()
def fast_ending_at(model, schedule, n: int, t_min: int | None, prediction: str, clip) -> tuple[torch.Tensor, int]:
    """(samples, the timestep of the model's last call) of DPM-Solver++ 2M SDE 50 quadratic from pure noise,
    ending with the x0 at its last timestep >= t_min (None: the whole run)."""
    steps = SAMPLERS["dpm++2m-sde"](model, schedule, (n, 3, 32, 32), steps=50, generator=torch.Generator().manual_seed(0),
                                    device="cpu", prediction=prediction, clip=clip,
                                    **sampler_options("dpm++2m-sde", 0.0, "quadratic"))
    for step in steps:
        if t_min is not None and step.t_next < t_min:
            return step.x0, step.t
        last = step
    return last.x_next, last.t


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--from", dest="starts", type=int, nargs="+", default=[25, 50, 100, 200])
    p.add_argument("--end-at", dest="ends", type=int, nargs="*", default=[10, 25, 50])
    p.add_argument("--checkpoint", type=Path, default=CHECKPOINT, help="a shapes checkpoint (default: the shipped one)")
    p.add_argument("--write", action="store_true")
    a = p.parse_args(argv)
    apply_threads(a.threads)
    load0 = os.getloadavg()
    started = datetime.now(timezone.utc)
    model, config, meta = checkpoint.load(a.checkpoint)
    model.eval()
    schedule = make_schedule(config.diffusion.schedule, config.diffusion.T)
    clip = checkpoint.sampling_clip(meta)
    x0 = load_dataset("shapes", n=a.n, seed=1).x
    rows = [row(f"real data (n = {a.n}, seed 1)", grounds(x0))]
    for t0 in a.starts:
        t = time.perf_counter()
        one, back, ddim = from_t0(model, schedule, x0, t0, config.diffusion.prediction, clip)
        ab = float(schedule.alpha_bar[t0])
        rows.append(row(f"t0 = {t0}: x0 predicted in one call", grounds(one), f"{ab:.3f}"))
        rows.append(row(f"t0 = {t0}: DDPM's {t0} steps back", grounds(back), f"{ab:.3f}"))
        rows.append(row(f"t0 = {t0}: DDIM's {t0} steps back (eta 0)", grounds(ddim), f"{ab:.3f}"))
        print(*rows[-3:], f"({time.perf_counter() - t:.0f} s)", sep="\n", flush=True)
    ends = []
    for t_min in [None, *a.ends]:
        x, t_last = fast_ending_at(model, schedule, a.n, t_min, config.diffusion.prediction, clip)
        label = "the whole run" if t_min is None else f"ending at t_min = {t_min}"
        ends.append(row(label, grounds(x), f"{t_last}"))
        print(ends[-1], flush=True)
    load1 = os.getloadavg()
    shipped = a.checkpoint.resolve() == CHECKPOINT.resolve()
    out = [BEGIN, "## shapes: where the grounds go wrong (`benchmarks/shapes_grounds_by_t.py`)", "",
           f"x86_64 CPU ({os.cpu_count()} logical), {torch.get_num_threads()} torch threads, torch {torch.__version__}, "
           f"{started:%Y-%m-%d %H:%M} UTC; load average before {load0[0]:.1f} / {load0[1]:.1f}, after "
           f"{load1[0]:.1f} / {load1[1]:.1f}. Real shapes images (n = {a.n}, seed 1) noised to t0 (seed 0), then the "
           f"{'shipped shapes model' if shipped else f'model in {a.checkpoint}'}'s x0 from one call at t0, DDPM's ancestral steps from t0 to 0 and DDIM's (eta 0). "
           "Grounds as in the section above (core.goals.grounds).", "",
           "| start | ᾱ at t0 | level median | 99th pct | grain, 90th pct (/255) | tinted |",
           "|---|---:|---:|---:|---:|---:|", *rows, "",
           f"From pure noise (n = {a.n}, seed 0), DPM-Solver++ 2M SDE, 50 steps, quadratic spacing, ending with the "
           "model's x0 at its last timestep at or above t_min:", "",
           "| run | last model call at t | level median | 99th pct | grain, 90th pct (/255) | tinted |",
           "|---|---:|---:|---:|---:|---:|", *ends, END]
    text = "\n".join(out)
    if a.write and shipped:
        write_section(text, BEGIN, END, RESULTS)
        print(f"written to {RESULTS}")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
