"""Speed against diffusers on a GPU, side by side in one process: every GPU row of the speed comparison.

    python benchmarks/gpu_suite.py [--budget-s 450] [--rows train-1m train-36m sample] [--dry-run]

Rows, each the project against diffusers' best mode measured in the same run (interleaved rounds,
medians), with the achieved TFLOP/s beside each (torch's flop counter over one step):

- train-1m: the 1.06 M-parameter UNet (1x32x32, channels 32/64/64), batch 256;
- train-36m: the 35.7 M-parameter DDPM-CIFAR10 UNet (3x32x32, channels 128/256/256/256, two res
  blocks per level, attention at 16x16), batch 128;
- sample: DDPM 1000 and DDIM 50 steps at batch 64 with both UNets.

Modes: eager (bf16 autocast, fused AdamW, channels_last on both sides) and torch.compile
"reduce-overhead" (CUDA graphs). The suite is sized for a short GPU loan: it stops starting new
measurements once --budget-s is spent and writes its section of benchmarks/RESULTS-speed.md after
every row, so a run cut short keeps what it measured. --dry-run runs every row at toy size on
the CPU (one round, eager unless --modes says otherwise) to check the script; it writes nothing.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _results import write_section  # noqa: E402
from cpu_suite import (  # noqa: E402
    RESULTS, UNET_1M, PlainLoop, _diffusers_sampler, diffusers_forward, diffusers_unet_1m, interleaved, load,
    our_trainer, versions,
)
from core.config import ModelConfig  # noqa: E402
from core.data import Dataset  # noqa: E402
from core.nets import build_model, count_parameters  # noqa: E402
from core.sample import Compiled  # noqa: E402
from core.samplers import SAMPLERS, final  # noqa: E402
from core.schedules import make_schedule  # noqa: E402

# Ours at the DDPM-CIFAR10 layout; scale_shift=False gives diffusers' 35,746,307 parameters exactly.
UNET_36M = ModelConfig("unet", {"base": 128, "channel_mult": [1, 2, 2, 2], "blocks": 2, "attn_resolutions": [16],
                                "scale_shift": False})
MODES = ("eager", "reduce-overhead")


def diffusers_unet_36m():
    """diffusers' UNet2DModel at google/ddpm-cifar10-32's layout (35,746,307 parameters), freshly initialised."""
    from diffusers import UNet2DModel

    torch.manual_seed(0)
    return UNet2DModel(sample_size=32, in_channels=3, out_channels=3, block_out_channels=(128, 256, 256, 256),
                       layers_per_block=2, down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"),
                       up_block_types=("UpBlock2D", "UpBlock2D", "AttnUpBlock2D", "UpBlock2D"))


LAYOUTS = {"1m": (UNET_1M, diffusers_unet_1m, (1, 32, 32)), "36m": (UNET_36M, diffusers_unet_36m, (3, 32, 32))}


def flops_of(fn) -> float:
    """FLOPs of one call of fn, counted by torch's flop counter."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


def toy_data(shape, n: int = 2048) -> Dataset:
    """Random images in [-1, 1]: what the pixels are does not change the speed."""
    x = torch.rand(n, *shape, generator=torch.Generator().manual_seed(0)) * 2 - 1
    return Dataset(name="random", kind="image", x=x)


class Budget:
    def __init__(self, seconds: float):
        self.start, self.seconds = time.perf_counter(), seconds

    def left(self) -> float:
        return self.seconds - (time.perf_counter() - self.start)


def train_row(layout: str, batch: int, device, modes, rounds: int, steps: int, budget: Budget) -> list[dict]:
    ours_cfg, make_ref, shape = LAYOUTS[layout]
    data = toy_data(shape)
    cuda = device.type == "cuda"
    sides, fwd_bwd = {}, {}
    for mode in modes:
        if budget.left() < (60 if mode == "eager" else 150):  # a compiled pair also pays its compile time
            break
        compile = False if mode == "eager" else mode
        tr = our_trainer(ours_cfg, data, batch, device, lr=2e-4, compile=compile, channels_last=cuda, log_every=50)
        sides[f"ours {mode}"] = tr.step
        dnet = make_ref()
        ref = PlainLoop(dnet, diffusers_forward(dnet), data.x, batch, device, lr=2e-4, log_every=50,
                        channels_last=cuda, amp=cuda, compile=None if mode == "eager" else mode)
        sides[f"diffusers {mode}"] = ref.step
        if mode == "eager":
            fwd_bwd["ours"] = _train_flops(tr.model, shape, batch, device)
            fwd_bwd["diffusers"] = _train_flops(dnet, shape, batch, device, diffusers=True)
    if not sides:
        return []
    t = interleaved(sides, device, rounds, steps, warmup=3)
    n = count_parameters(build_model(ours_cfg, shape, seed=0))
    return _rows(f"train {layout} UNet ({n:,} params), batch {batch}", sides, t, fwd_bwd, batch)


def _train_flops(net, shape, batch, device, diffusers=False) -> float:
    x = torch.randn(batch, *shape, device=device)
    t = torch.randint(1, 1000, (batch,), device=device)

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            out = net(x, t).sample if diffusers else net(x, t)
        out.float().pow(2).mean().backward()

    f = flops_of(step)
    net.zero_grad(set_to_none=True)
    return f


def _rows(label: str, sides: dict, t: dict, flops: dict, items: int) -> list[dict]:
    """One row per mode of ours against diffusers' best mode, with TFLOP/s from the eager count."""
    best = min((k for k in sides if k.startswith("diffusers")), key=lambda k: t[k])
    rows = []
    for k in sides:
        if not k.startswith("ours"):
            continue
        rows.append({"row": f"{label}: {k} vs diffusers' best ({best.removeprefix('diffusers ')})",
                     "ours_ms": t[k] * 1e3, "ref_ms": t[best] * 1e3, "ratio": t[best] / t[k], "load": t["_load"],
                     "ours_tflops": flops.get("ours", 0) / t[k] / 1e12,
                     "ref_tflops": flops.get("diffusers", 0) / t[best] / 1e12,
                     "per_s": items / t[k]})
    for k in sides:
        if k.startswith("diffusers"):
            rows.append({"row": f"{label}: {k} (reference)", "ours_ms": float("nan"), "ref_ms": t[k] * 1e3,
                         "ratio": float("nan"), "load": t["_load"], "ours_tflops": float("nan"),
                         "ref_tflops": flops.get("diffusers", 0) / t[k] / 1e12, "per_s": items / t[k]})
    return rows


def sample_rows(layout: str, batch: int, device, modes, rounds: int, budget: Budget, dry: bool) -> list[dict]:
    ours_cfg, make_ref, shape = LAYOUTS[layout]
    sched = make_schedule("linear", 1000)
    ours_net = build_model(ours_cfg, shape, seed=0).to(device).eval()
    dnet = make_ref().to(device).eval()
    if device.type == "cuda":
        ours_net, dnet = ours_net.to(memory_format=torch.channels_last), dnet.to(memory_format=torch.channels_last)
    x_T = torch.randn(batch, *shape, generator=torch.Generator().manual_seed(0)).to(device)
    rows = []
    for kind, steps in (("ddim", 2 if dry else 50), ("ddpm", 3 if dry else 1000)):
        sides, flops = {}, {}
        for mode in modes:
            if budget.left() < (60 if mode == "eager" else 120):
                break
            net = ours_net if mode == "eager" else Compiled(ours_net, mode)
            ref_fn = diffusers_forward(dnet) if mode == "eager" else _compiled_diffusers(dnet, mode)
            sides[f"ours {mode}"] = _ours_sampler(net, sched, kind, steps, x_T, device)
            sides[f"diffusers {mode}"] = _diffusers_loop(ref_fn, kind, steps, x_T, device)
        if not sides:
            break
        with torch.no_grad():
            flops["ours"] = flops_of(lambda: ours_net(x_T, torch.full((batch,), 500, device=device))) * steps
            flops["diffusers"] = flops_of(lambda: dnet(x_T, torch.full((batch,), 500, device=device)).sample) * steps
        t = interleaved(sides, device, max(1, rounds // (3 if steps > 100 else 1)), 1, warmup=1)
        rows += _rows(f"sample {layout} UNet, {kind.upper()} {steps}, batch {batch}", sides, t, flops, batch)
    return rows


def _compiled_diffusers(dnet, mode):
    fn = torch.compile(dnet, mode=mode)

    def forward(x, t):
        torch.compiler.cudagraph_mark_step_begin()
        return fn(x, t).sample.clone()
    return forward


def _ours_sampler(net, sched, kind, steps, x_T, device):
    def run():
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            g = torch.Generator().manual_seed(0)
            return final(SAMPLERS[kind](net, sched, x_T.shape, steps=steps, x_T=x_T, generator=g, device=device))
    return run


def _diffusers_loop(forward, kind, steps, x_T, device):
    def run():
        s = _diffusers_sampler(kind, steps)
        s.set_timesteps(steps, device=device)
        g = torch.Generator(device=device).manual_seed(0)
        x = x_T.clone()
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            for k in s.timesteps:
                x = s.step(forward(x, k).float(), k, x, generator=g).prev_sample
        return x
    return run


def table(rows: list[dict]) -> list[str]:
    out = ["| row | project (ms) | diffusers (ms) | diffusers / project | items/s (project or reference row) | "
           "TFLOP/s project | TFLOP/s diffusers | load |",
           "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in rows:
        out.append(f"| {r['row']} | {r['ours_ms']:.2f} | {r['ref_ms']:.2f} | {r['ratio']:.2f}x | {r['per_s']:,.0f} | "
                   f"{r['ours_tflops']:.2f} | {r['ref_tflops']:.2f} | {r['load'][0]:.1f}-{r['load'][1]:.1f} |")
    return out


def device_line(device) -> str:
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        return f"{p.name} ({p.total_memory / 2**30:.0f} GiB), CUDA {torch.version.cuda}"
    return f"CPU ({os.cpu_count()} logical CPUs; dry run)"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", nargs="+", default=["train-1m", "train-36m", "sample"],
                   choices=["train-1m", "train-36m", "sample"])
    p.add_argument("--modes", nargs="+", choices=MODES, help="default: eager reduce-overhead (dry run: eager)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=20, help="training steps per round and side")
    p.add_argument("--budget-s", type=float, default=450, help="start no new measurement after this many seconds")
    p.add_argument("--dry-run", action="store_true", help="toy sizes on the CPU, one round; writes nothing")
    a = p.parse_args(argv)
    dry = a.dry_run
    if not dry and not torch.cuda.is_available():
        p.error("no CUDA device here; use --dry-run to check the script on the CPU")
    device = torch.device("cpu" if dry else "cuda")
    modes = a.modes or (["eager"] if dry else list(MODES))
    rounds, steps = (1, 1) if dry else (a.rounds, a.steps)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True  # both sides alike
        torch.backends.cudnn.benchmark = True
    budget = Budget(a.budget_s)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    rows: list[dict] = []

    def report(final_note: str = "") -> None:
        lines = table(rows)
        print("\n".join(lines), flush=True)
        if dry:
            return
        begin, end = "<!-- gpu-suite -->", "<!-- /gpu-suite -->"
        block = "\n".join([
            begin, "## GPU: the project against diffusers' best mode, side by side", "",
            f"{stamp}. {device_line(device)}; {versions()}. `python benchmarks/gpu_suite.py` "
            f"(modes {', '.join(modes)}; bf16 autocast, fused AdamW, channels_last on both sides). Medians of "
            f"{rounds} interleaved rounds; TFLOP/s from torch's flop counter over one step. Load: the host's 1-minute "
            f"load average. {final_note}", "", *lines, "", end])
        write_section(block, begin, end, RESULTS)

    plan = {"train-1m": lambda m: train_row("1m", 2 if dry else 256, device, m, rounds, steps, budget),
            "train-36m": lambda m: train_row("36m", 2 if dry else 128, device, m, rounds, steps, budget),
            "sample": lambda m: (sample_rows("1m", 2 if dry else 64, device, m, rounds, budget, dry)
                                 + sample_rows("36m", 2 if dry else 64, device, m, rounds, budget, dry))}
    skipped, failed = [], []
    for name in a.rows:
        if budget.left() < 60:
            skipped.append(name)
            continue
        tries = [modes] + ([["eager"]] if modes != ["eager"] else [])  # a row that breaks: again in eager alone
        for m in tries:
            if m is not modes:
                if budget.left() < 60:
                    break
                print(f"== {name}: again in eager mode alone", flush=True)
            try:
                rows += plan[name](m)
                break
            except Exception as e:  # one row that breaks (a compile, say) must not cost the others on a short loan
                traceback.print_exc()
                failed.append(f"{name} ({', '.join(m)}): {type(e).__name__}: {str(e).splitlines()[0][:200]}")
        report()
    took = time.perf_counter() - budget.start
    report(f"Took {took:.0f} s (load {load():.1f})." + (f" Not reached within the budget: {', '.join(skipped)}."
                                                        if skipped else "")
           + (f" Failed: {'; '.join(failed)}." if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
