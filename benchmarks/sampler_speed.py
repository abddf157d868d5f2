"""Sampling speed: our samplers beside diffusers' schedulers driving the same network, same process.

    python benchmarks/sampler_speed.py [--device auto] [--repeats 5]

Both sides run the identical denoiser on the identical x_T; the ratio isolates sampler overhead
(tiny model) and end-to-end speed (a real UNet preset). Results are also checked to agree.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from core.config import ModelConfig
from core.device import pick_device
from core.nets import PRESETS, build_model
from core.samplers import SAMPLERS, final
from core.schedules import make_schedule


def _sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def _time(fn, dev, repeats):
    fn()  # warm-up
    out = []
    for _ in range(repeats):
        _sync(dev)
        t0 = time.perf_counter()
        fn()
        _sync(dev)
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def run(device="auto", repeats=5):
    import diffusers

    dev = pick_device(device)
    sched = make_schedule("linear", 1000)
    cases = [
        ("tiny MLP (sampler overhead)", ModelConfig("mlp", {"width": 16, "blocks": 1}), (2,), 256),
        ("unet-digits preset", PRESETS["unet-digits"], (1, 8, 8), 64),
        ("unet-shapes preset", PRESETS["unet-shapes"], (3, 32, 32), 16),
    ]
    rows = []
    for label, cfg, shape, batch in cases:
        model = build_model(cfg, shape, seed=0).to(dev).eval()
        x_T = torch.randn(batch, *shape, generator=torch.Generator().manual_seed(0)).to(dev)
        for name, steps, make_ref in [
            ("ddim", 50, lambda: diffusers.DDIMScheduler(num_train_timesteps=1000, beta_schedule="linear",
                                                         timestep_spacing="trailing", set_alpha_to_one=True,
                                                         clip_sample=False)),
            ("dpm++2m", 20, lambda: diffusers.DPMSolverMultistepScheduler(
                num_train_timesteps=1000, beta_schedule="linear", timestep_spacing="trailing",
                algorithm_type="dpmsolver++", solver_order=2, lower_order_final=True, final_sigmas_type="zero")),
        ]:
            def ours():
                return final(SAMPLERS[name](model, sched, x_T.shape, steps=steps, x_T=x_T, device=dev))

            def ref():
                s = make_ref()
                s.set_timesteps(steps, device=dev)
                x = x_T.clone()
                with torch.no_grad():
                    for k in s.timesteps:
                        eps = model(x, torch.full((batch,), int(k) + 1, device=dev))
                        x = s.step(eps, k, x).prev_sample
                return x

            with torch.no_grad():
                diff = (ours() - ref()).abs().max().item()
            t_ours, t_ref = _time(ours, dev, repeats), _time(ref, dev, repeats)
            rows.append((label, f"{name} {steps} steps, batch {batch}", t_ours * 1e3, t_ref * 1e3, t_ref / t_ours, diff))
    return dev, rows


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="auto")
    p.add_argument("--repeats", type=int, default=5)
    a = p.parse_args()
    dev, rows = run(a.device, a.repeats)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"CPU ({torch.get_num_threads()} threads, {platform.machine()})"
    print(f"device: {name}; torch {torch.__version__}")
    print("| model | sampler | ours (ms) | diffusers (ms) | diffusers / ours | max abs diff |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]:.1f} | {r[3]:.1f} | {r[4]:.2f}x | {r[5]:.1e} |")


if __name__ == "__main__":
    main()
