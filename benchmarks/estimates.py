"""How right the app's time estimates are: the estimate from a few measured sampler steps against a real run.

For three shipped models (swiss_roll, digits, shapes) and a few settings each, `explorer.costs`
estimates the run from freshly measured sampler steps on this device (a new speed book, so nothing
is remembered from before), then the sampler really runs and is timed; three rounds per case, so
the machine's own spread shows beside the estimate's bias. Target: within +/-30%.
Torch runs with one thread, as the app's default on a 2-core machine.

    python benchmarks/estimates.py [--rounds 3]

Writes its section of benchmarks/RESULTS.md (between its own markers) and prints the numbers.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from datetime import date
from pathlib import Path
from _results import write_section  # noqa: E402  (benchmarks/_results.py, beside this script)
from _scratch import scratch_dir  # noqa: E402  (benchmarks/_scratch.py, beside this script)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
BEGIN, END = "<!-- estimates: begin -->", "<!-- estimates: end -->"

# (model, sampler, steps, n): a short and a long run each, at the Reverse tab's sample counts
ROUNDS = 3  # each case measured and run this many times: the spread is the machine's, the bias the estimate's
CASES = [("swiss_roll", "ddim", 50, 500), ("swiss_roll", "ddpm", 1000, 500),
         ("digits", "ddim", 50, 16), ("digits", "ddpm", 200, 64),
         ("shapes", "ddim", 10, 4), ("shapes", "ddim", 25, 8)]


def run_case(name: str, sampler: str, steps: int, n: int, calls) -> tuple[float, float]:
    """(estimated seconds, real seconds) of drawing n samples in `steps` steps."""
    import torch

    from core.checkpoint import load
    from core.samplers import get_sampler
    from core.schedules import make_schedule
    from explorer import costs

    model, config, meta = load(ROOT / "assets" / "checkpoints" / name, device="cpu")
    model.eval()
    est = costs.sampling_estimate(model, meta["sample_shape"], sampler=sampler, steps=steps, n=n, device="cpu",
                                  costs=calls)
    schedule = make_schedule(config.diffusion.schedule, config.diffusion.T)
    g = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    for _ in get_sampler(sampler)(model, schedule, (n, *meta["sample_shape"]), generator=g, steps=steps,
                                  device="cpu", prediction=config.diffusion.prediction):
        pass
    return est.seconds, time.perf_counter() - start


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=ROUNDS,
                   help=f"times each case is measured and run, each measuring afresh (default {ROUNDS})")
    a = p.parse_args(argv)
    if a.rounds < 1:
        p.error(f"--rounds must be at least 1, not {a.rounds}")
    import torch

    from explorer import costs

    torch.set_num_threads(1)
    rows, worst, long_worst = [], 0.0, 0.0
    load_start = os.getloadavg()
    for name, sampler, steps, n in CASES:
        ests, reals, errs = [], [], []
        for _ in range(a.rounds):  # each round measures afresh (a new speed book), as a new device would
            calls = costs.CallCosts(book=costs.SpeedBook(scratch_dir() / "speeds.json"))
            est, real = run_case(name, sampler, steps, n, calls)
            ests.append(est)
            reals.append(real)
            errs.append((est - real) / real)
        worst = max(worst, *map(abs, errs))
        if min(reals) >= costs.SAY_ABOVE_S / 4:
            long_worst = max(long_worst, *map(abs, errs))
        rows.append(f"| {name} | {sampler.upper()} {steps} | {n} | {' / '.join(f'{e:.2f}' for e in ests)} s "
                    f"| {' / '.join(f'{r:.2f}' for r in reals)} s | {' / '.join(f'{100 * e:+.0f}%' for e in errs)} |")
        print(rows[-1], flush=True)
    load = os.getloadavg()
    section = f"""{BEGIN}

Device: {os.cpu_count()}-core {platform.machine()} CPU shared with other jobs, no GPU; torch {torch.__version__},
1 thread; {date.today().isoformat()}. Load average at the start {load_start[0]:.1f}, at the end {load[0]:.1f} /
{load[1]:.1f} / {load[2]:.1f}. Estimate = steps x the median of timed sampler steps on the batch (network
call and the sampler's own work; after a warm-up step; at least 3 steps, up to 0.5 s or 25 steps), measured afresh for each
model and n, as the app does once per device; real = the sampler run to the end. {a.rounds} rounds per case, each
measuring afresh. `benchmarks/estimates.py`; target within +/-30%.

| model | sampler | n | estimated | real | error |
| --- | --- | ---: | ---: | ---: | ---: |
{chr(10).join(rows)}

Largest error: {100 * worst:.0f}%; over the runs of {costs.SAY_ABOVE_S / 4:.1f} s and more: {100 * long_worst:.0f}%
(the app announces runs over {costs.SAY_ABOVE_S:.0f} s). Until 2026-12-03 the estimate timed the network alone:
the 2-D toys' runs then took a third longer than said (swiss_roll -32% to -39% on a quiet machine), their
sampler's own work being about half of each step.
{END}"""
    write_section(section, BEGIN, END, RESULTS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
