"""Speed against diffusers, side by side in one process: every CPU row of the speed comparison.

    python benchmarks/cpu_suite.py [--threads 2] [--rounds 7] [--rows train sample] [--no-write]

Each row times the project and the reference in interleaved rounds (A, B, A, B, ...) after a
warm-up, so both see the same load, and reports the median time per step of each and their ratio
(reference / project: above 1 the project is faster). The load average is recorded with every
round. Rows:

- training the 1.06 M-parameter UNet (1x32x32, channels 32/64/64, one res block per level,
  mid-block attention) at batch 64: `Trainer.step()` against a plain loop over diffusers'
  UNet2DModel of the same 1,062,497 parameters (diffusers' unconditional-training example:
  DDPMScheduler.add_noise, MSE, clipping, fused AdamW, EMAModel with foreach), on 2 threads and on
  1, with the project's variants (channels_last, torch.compile, torch's intra-op threads instead of
  the default shards, and on a CPU with native bf16 `cpu_bf16`, against diffusers' loop under the
  same bf16 autocast as well as its fp32 default; --variants all adds diffusers in channels_last),
  and on 2+ threads the pair again while as many busy loops as threads hold the cores (a laptop
  running other things);
- training the unet-digits and mlp-2d presets: `Trainer.step()` against the same plain loop
  around the same network;
- sampling with the 1.06 M UNets (DDIM 50, DDPM 200, batch 16): our sampler and net against
  diffusers' scheduler and UNet2DModel; the loop alone (the unet-digits net in both loops); and
  the loops' own cost (a 1x1 layer as the net).

About 10 minutes on 2 busy cores. The "best rounds" column is the ratio of each side's fastest
round, the one least disturbed by other processes on a shared machine.

Writes its section of benchmarks/RESULTS-speed.md.
"""
from __future__ import annotations

import argparse
import copy
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _results import write_section  # noqa: E402
from core.config import DataConfig, DiffusionConfig, ModelConfig, RunConfig, TrainConfig  # noqa: E402
from core.data import load_dataset  # noqa: E402
from core.device import cpu_has_bf16  # noqa: E402
from core.nets import PRESETS, build_model, count_parameters  # noqa: E402
from core.samplers import SAMPLERS, final  # noqa: E402
from core.schedules import make_schedule  # noqa: E402
from core.training import Trainer  # noqa: E402

RESULTS = ROOT / "benchmarks" / "RESULTS-speed.md"
# Our UNet at the layout of the comparison; scale_shift=False gives diffusers' parameter count exactly.
UNET_1M = ModelConfig("unet", {"base": 32, "channel_mult": [1, 2, 2], "blocks": 1, "attn_resolutions": [],
                               "scale_shift": False})
UNET_1M_DATA = ("digits", {"size": 32})


def diffusers_unet_1m():
    """diffusers' UNet2DModel at the same layout: 1,062,497 parameters."""
    from diffusers import UNet2DModel

    torch.manual_seed(0)
    return UNet2DModel(sample_size=32, in_channels=1, out_channels=1, block_out_channels=(32, 64, 64),
                       layers_per_block=1, down_block_types=("DownBlock2D",) * 3, up_block_types=("UpBlock2D",) * 3,
                       norm_num_groups=32)


def load() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ---------------------------------------------------------------------------------------------
# the reference: diffusers' unconditional-training example, stripped of accelerate and logging


class PlainLoop:
    """One step: draw a batch, add noise with DDPMScheduler, MSE of the net's eps, clip, AdamW, EMA.

    forward(x_t, t) -> eps; the net is either diffusers' UNet2DModel or one of ours. Numbers are
    read to the host only every `log_every` steps, as a plain loop that logs does.
    """

    def __init__(self, net, forward, x: torch.Tensor, batch: int, device: torch.device, lr: float = 5e-4,
                 log_every: int = 10, channels_last: bool = False, amp: bool = False, compile: str | None = None):
        from diffusers import DDPMScheduler
        from diffusers.training_utils import EMAModel

        self.net = net.to(device).train()
        if channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        self.amp, self.graphs = amp, compile in ("reduce-overhead", "max-autotune")
        if compile is not None:
            forward = torch.compile(forward, mode=None if compile == "default" else compile)
        self.forward, self.x, self.batch, self.device = forward, x.to(device), batch, device
        self.channels_last, self.log_every = channels_last, log_every
        self.sched = DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear")
        params = list(self.net.parameters())
        try:
            self.opt = torch.optim.AdamW(params, lr=lr, fused=True)
        except (RuntimeError, ValueError):
            self.opt = torch.optim.AdamW(params, lr=lr, foreach=True)
        self.ema = EMAModel(params, decay=0.999, foreach=True)
        self.gen = torch.Generator(device=device).manual_seed(0)
        self.n = 0

    def step(self) -> None:
        idx = torch.randint(self.x.shape[0], (self.batch,), generator=self.gen, device=self.device)
        x0 = self.x[idx]
        if self.channels_last:
            x0 = x0.contiguous(memory_format=torch.channels_last)
        noise = torch.randn(x0.shape, generator=self.gen, device=self.device)
        t = torch.randint(0, 1000, (self.batch,), generator=self.gen, device=self.device)
        x_t = self.sched.add_noise(x0, noise, t)
        if self.graphs:
            torch.compiler.cudagraph_mark_step_begin()
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            loss = F.mse_loss(self.forward(x_t, t).float(), noise)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.net.parameters(), 1.0)
        self.opt.step()
        self.ema.step(self.net.parameters())
        self.n += 1
        if self.n % self.log_every == 0:
            loss.item()


def diffusers_forward(net):
    return lambda x, t: net(x, t).sample


def our_trainer(model: ModelConfig, data, batch: int, device, *, lr: float, compile: bool | str = False,
                channels_last: bool | None = None, log_every: int = 10, shards: int | None = None,
                cpu_bf16: bool = False) -> Trainer:
    cfg = RunConfig(model=model, diffusion=DiffusionConfig("linear", 1000), data=DataConfig(data.name),
                    train=TrainConfig(steps=1_000_000, batch_size=batch, lr=lr, preview_every=0, log_every=log_every,
                                      compile=compile))
    return Trainer(cfg, data, device, channels_last=channels_last, shards=shards, cpu_bf16=cpu_bf16)


# ---------------------------------------------------------------------------------------------
# timing


def interleaved(sides: dict, device: torch.device, rounds: int, steps: int, warmup: int = 3) -> dict:
    """{name: median seconds per call} of each side's callable, timed in alternating rounds; plus "_load"."""
    for fn in sides.values():
        for _ in range(warmup):
            fn()
        sync(device)
    times = {name: [] for name in sides}
    loads = []
    for r in range(rounds):
        order = list(sides) if r % 2 == 0 else list(reversed(sides))  # neither side always goes first
        for name in order:
            fn = sides[name]
            sync(device)
            start = time.perf_counter()
            for _ in range(steps):
                fn()
            sync(device)
            times[name].append((time.perf_counter() - start) / steps)
        loads.append(load())
    out = {name: statistics.median(v) for name, v in times.items()}
    out["_spread"] = {name: (min(v), max(v)) for name, v in times.items()}
    out["_load"] = (min(loads), max(loads))
    return out


def ratio_row(label: str, ours: str, ref: str, t: dict) -> dict:
    """Medians and their ratio, plus the ratio of the best rounds (the least disturbed by other processes)."""
    return {"row": label, "ours_ms": t[ours] * 1e3, "ref_ms": t[ref] * 1e3, "ratio": t[ref] / t[ours],
            "best_ratio": t["_spread"][ref][0] / t["_spread"][ours][0], "load": t["_load"]}


# ---------------------------------------------------------------------------------------------
# rows


def training_rows(device, rounds: int, steps: int, variants: bool = True, compile_ok: bool = True) -> list[dict]:
    rows = []
    data = load_dataset(UNET_1M_DATA[0], **UNET_1M_DATA[1])
    dnet = diffusers_unet_1m()
    ours = our_trainer(UNET_1M, data, 64, device, lr=5e-4)
    assert count_parameters(ours.model) == count_parameters(dnet), "the two UNets must have the same size"
    ref = PlainLoop(dnet, diffusers_forward(dnet), data.x, 64, device)
    sides = {"ours": ours.step, "diffusers": ref.step}
    if ours.shards > 1:  # the default splits image batches over the threads; torch's own threading as well
        sides["ours, intra-op threads (shards=1)"] = our_trainer(UNET_1M, data, 64, device, lr=5e-4, shards=1).step
    if variants:
        sides["ours, channels_last"] = our_trainer(UNET_1M, data, 64, device, lr=5e-4, channels_last=True).step
        if compile_ok:
            sides["ours, compile"] = our_trainer(UNET_1M, data, 64, device, lr=5e-4, compile=True).step
        if cpu_has_bf16():  # bf16 autocast on both sides: diffusers' example offers it too (--mixed_precision bf16)
            sides["ours, cpu_bf16"] = our_trainer(UNET_1M, data, 64, device, lr=5e-4, cpu_bf16=True).step
            dbf = copy.deepcopy(dnet)
            sides["diffusers, bf16"] = PlainLoop(dbf, diffusers_forward(dbf), data.x, 64, device, amp=True).step
    if variants == "all":  # diffusers in channels_last too (slower than its default on an AVX2 CPU)
        dcl = copy.deepcopy(dnet)
        sides["diffusers, channels_last"] = PlainLoop(dcl, diffusers_forward(dcl), data.x, 64, device,
                                                      channels_last=True).step
    t = interleaved(sides, device, rounds, steps, warmup=2)
    n = f"{count_parameters(dnet):,}"
    threads = torch.get_num_threads()
    how = f"in {ours.shards} shards" if ours.shards > 1 else "one batch"
    rows.append(ratio_row(f"train 1.06 M UNet ({n} params), batch 64, {threads} threads: Trainer.step() ({how}) vs "
                          f"diffusers loop", "ours", "diffusers", t))
    for k in sides:  # each variant against diffusers' fastest side of the same precision
        if k.startswith("ours,"):
            bf16 = "bf16" in k
            best_ref = min((r for r in sides if r.startswith("diffusers") and ("bf16" in r) == bf16),
                           key=lambda r: t[r])
            rows.append(ratio_row(f"  {k} vs diffusers' best {'in bf16' if bf16 else 'in fp32'} ({best_ref})",
                                  k, best_ref, t))
            if bf16:
                rows.append(ratio_row(f"  {k} vs diffusers' default loop (fp32)", k, "diffusers", t))
    if "diffusers, channels_last" in sides:
        rows.append(ratio_row("  diffusers channels_last vs diffusers (for reference)", "diffusers, channels_last",
                              "diffusers", t))

    if threads > 1:  # the same pair on one thread
        one = our_trainer(UNET_1M, data, 64, device, lr=5e-4, shards=1)
        torch.set_num_threads(1)
        try:
            t = interleaved({"ours": one.step, "diffusers": sides["diffusers"]}, device, 3, 1, warmup=1)
        finally:
            torch.set_num_threads(threads)
        rows.append(ratio_row("  the same on 1 thread", "ours", "diffusers", t))
        rows += busy_rows(sides, device, threads)

    for preset, (name, params, batch, lr) in {"unet-digits": ("digits", {}, 128, 5e-4),
                                              "mlp-2d": ("swiss_roll", {}, 256, 2e-3)}.items():
        data = load_dataset(name, **params)
        ours = our_trainer(PRESETS[preset], data, batch, device, lr=lr)
        net = build_model(PRESETS[preset], tuple(data.x.shape[1:]), seed=0)
        ref = PlainLoop(net, net, data.x, batch, device, lr=lr)
        t = interleaved({"ours": ours.step, "plain": ref.step}, device, rounds, steps * (25 if preset == "mlp-2d" else 2))
        rows.append(ratio_row(f"train {preset}, batch {batch}: Trainer.step() vs a plain loop, same net",
                              "ours", "plain", t))
    return rows


def busy_rows(sides: dict, device, threads: int, rounds: int = 3) -> list[dict]:
    """The 1.06 M training pair while `threads` other single-thread jobs (busy loops) hold the cores.

    A laptop in a lecture runs other things; torch's intra-op threads wait on each other at the end of
    every operation, which a busy core delays. The busy loops are this benchmark's own child processes.
    """
    loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(threads)]
    try:
        time.sleep(1.0)
        picked = {k: v for k, v in sides.items()
                  if k in ("ours", "diffusers", "ours, cpu_bf16") or k.startswith("ours, intra-op")}
        t = interleaved(picked, device, rounds, 1, warmup=1)
    finally:
        for proc in loops:
            proc.kill()
            proc.wait()
    label = f"  the same while {threads} other single-thread jobs hold the cores"
    rows = [ratio_row(label, "ours", "diffusers", t)]
    for k in picked:
        if k.startswith("ours,"):
            rows.append(ratio_row(f"    {k} vs diffusers (fp32), both busy", k, "diffusers", t))
    return rows


def _diffusers_sampler(kind: str, steps: int):
    import diffusers

    if kind == "ddim":
        return diffusers.DDIMScheduler(num_train_timesteps=1000, beta_schedule="linear", timestep_spacing="trailing",
                                       set_alpha_to_one=True, clip_sample=False)
    return diffusers.DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear", timestep_spacing="trailing",
                                   clip_sample=False)


def sampling_rows(device, rounds: int, batch: int = 16) -> list[dict]:
    rows = []
    sched = make_schedule("linear", 1000)
    ours_net = build_model(UNET_1M, (1, 32, 32), seed=0).to(device).eval()
    dnet = diffusers_unet_1m().to(device).eval()
    x_T = torch.randn(batch, 1, 32, 32, generator=torch.Generator().manual_seed(0)).to(device)

    def ours(net, kind, steps):
        def run():
            g = torch.Generator().manual_seed(0)
            return final(SAMPLERS[kind](net, sched, x_T.shape, steps=steps, x_T=x_T, generator=g, device=device))
        return run

    def ref(forward, kind, steps):
        def run():
            s = _diffusers_sampler(kind, steps)
            s.set_timesteps(steps, device=device)
            g = torch.Generator(device=device).manual_seed(0)
            x = x_T.clone()
            with torch.no_grad():
                for k in s.timesteps:
                    x = s.step(forward(x, k), k, x, generator=g).prev_sample
            return x
        return run

    # diffusers' timestep k is our k + 1 (its index 0 is the first noisy state)
    def our_net_in_diffusers(x, k):
        return ours_net(x, torch.full((x.shape[0],), int(k) + 1, device=x.device))

    def diffusers_net(x, k):
        return dnet(x, k).sample

    with torch.no_grad():
        for kind, steps in (("ddim", 50), ("ddpm", 200)):  # 9 s and 40 s a run at batch 16 on 2 cores
            t = interleaved({"ours": ours(ours_net, kind, steps), "diffusers": ref(diffusers_net, kind, steps)},
                            device, 2 if steps > 100 else 3, 1, warmup=0 if steps > 100 else 1)
            rows.append(ratio_row(f"sample 1.06 M UNet, {kind.upper()} {steps}, batch {batch}: ours vs diffusers "
                                  f"(each its own net)", "ours", "diffusers", t))
        digits = build_model(PRESETS["unet-digits"], (1, 8, 8), seed=0).to(device).eval()
        x8 = torch.randn(64, 1, 8, 8, generator=torch.Generator().manual_seed(0)).to(device)
        ddim_ours = lambda: final(SAMPLERS["ddim"](digits, sched, x8.shape, steps=50, x_T=x8, device=device))  # noqa: E731

        def ddim_ref():
            s = _diffusers_sampler("ddim", 50)
            s.set_timesteps(50, device=device)
            x = x8.clone()
            for k in s.timesteps:
                x = s.step(digits(x, torch.full((64,), int(k) + 1, device=device)), k, x).prev_sample
            return x

        diff = (ddim_ours() - ddim_ref()).abs().max().item()
        t = interleaved({"ours": ddim_ours, "diffusers": ddim_ref}, device, 3, 1, warmup=1)
        row = ratio_row(f"sampling loop alone: unet-digits net, DDIM 50, batch 64 (same net; max |diff| {diff:.1e})",
                        "ours", "diffusers", t)
        row["per_step_ms"] = (t["ours"] - t["diffusers"]) / 50 * 1e3
        rows.append(row)
        rows.append(_loop_overhead_row(sched, device))
    return rows


def _loop_overhead_row(sched, device, steps: int = 50) -> dict:
    """The loops' own cost: DDIM 50 around a net that costs next to nothing (a 1x1 layer on 2-D points)."""
    net = torch.nn.Linear(2, 2)
    tiny = lambda x, t: net(x)  # noqa: E731
    x = torch.randn(256, 2, generator=torch.Generator().manual_seed(0)).to(device)

    def ours():
        return final(SAMPLERS["ddim"](tiny, sched, x.shape, steps=steps, x_T=x, device=device))

    def ref():
        s = _diffusers_sampler("ddim", steps)
        s.set_timesteps(steps, device=device)
        y = x.clone()
        for k in s.timesteps:
            y = s.step(tiny(y, k), k, y).prev_sample
        return y

    with torch.no_grad():
        t = interleaved({"ours": ours, "diffusers": ref}, device, 15, 5, warmup=2)
    row = ratio_row(f"sampling loop alone: a 1x1 layer on 256 points, DDIM {steps} (the loop's own cost)",
                    "ours", "diffusers", t)
    row["per_step_ms"] = (t["ours"] - t["diffusers"]) / steps * 1e3
    return row


# ---------------------------------------------------------------------------------------------
# report


def versions() -> str:
    import diffusers

    return f"torch {torch.__version__}, diffusers {diffusers.__version__}, Python {platform.python_version()}"


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def table(rows: list[dict]) -> list[str]:
    out = ["| row | project (ms) | reference (ms) | reference / project (medians) | best rounds | "
           "load (1-min, min-max) |", "| --- | ---: | ---: | ---: | ---: | --- |"]
    for r in rows:
        extra = f" ({r['per_step_ms']:+.2f} ms per sampler step)" if "per_step_ms" in r else ""
        out.append(f"| {r['row']} | {r['ours_ms']:.1f} | {r['ref_ms']:.1f} | {r['ratio']:.2f}x{extra} | "
                   f"{r['best_ratio']:.2f}x | {r['load'][0]:.1f}-{r['load'][1]:.1f} |")
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=2, help="training steps per round and side (more for small nets)")
    p.add_argument("--rows", nargs="+", default=["train", "sample"], choices=["train", "sample"])
    p.add_argument("--variants", choices=["none", "ours", "all"], default="ours",
                   help="channels_last and compile runs of ours (ours), also diffusers in channels_last (all)")
    p.add_argument("--no-write", action="store_true", help="print only; leave RESULTS-speed.md alone")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    device = torch.device("cpu")
    began = time.perf_counter()
    rows = []
    if "train" in a.rows:
        rows += training_rows(device, a.rounds, a.steps, variants={"none": False, "ours": True, "all": "all"}[a.variants])
        print("\n".join(table(rows)), flush=True)
    if "sample" in a.rows:
        rows += sampling_rows(device, a.rounds)
    lines = table(rows)
    print("\n".join(lines))
    took = time.perf_counter() - began
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    begin, end = "<!-- cpu-suite -->", "<!-- /cpu-suite -->"
    block = "\n".join([
        begin, "## CPU: the project against diffusers, side by side", "",
        f"{stamp}. {cpu_name()} ({os.cpu_count()} logical CPUs), {a.threads} torch thread(s); {versions()}. "
        f"`python benchmarks/cpu_suite.py --threads {a.threads} --rounds {a.rounds} --steps {a.steps}` "
        f"({took:.0f} s). Medians of {a.rounds} interleaved rounds; the 1-minute load average was read after "
        f"every round.", "", *lines, "", end])
    if not a.no_write:
        write_section(block, begin, end, RESULTS)
        print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
