"""Train a denoiser from the command line: `python -m core.train --dataset swiss_roll --steps 2000 --out runs/swiss`.

Writes OUT as a checkpoint (model.safetensors with the EMA weights, config.json, and the state to
resume from) at the end and every --checkpoint-every steps, each time atomically. Beside the
weights, OUT/log.jsonl gets one JSON line every --log-every steps, and OUT/previews/ the sample
previews. With --keep-checkpoints K the K-1 checkpoints before the newest stay beside OUT as
OUT-step-NNNNNNN; --runs-quota refuses a save that would take OUT's folder past a size. A run
killed at any moment (even mid-save) is cleaned up by the next start or --resume: stranded
temporary folders go, and the log keeps every line up to the checkpoint resumed from. Runs unchanged under `torchrun --nproc_per_node N -m core.train ...` (DDP: gloo on the
CPU, NCCL on GPUs); only rank 0 writes anything.
"""
from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import math
import os
import sys
from pathlib import Path

import numpy as np
import torch

from . import checkpoint, retention
from .config import COMPILE_MODES, PREDICTIONS, DataConfig, DiffusionConfig, ModelConfig, RunConfig, TrainConfig
from .data import DATASETS, load_dataset
from .device import DEVICE_CHOICES, pick_device
from .nets import NETS, PRESETS, build_model, count_parameters
from .schedules import SCHEDULES
from .threads import add_threads_option, apply_threads
from .training import NonFiniteLossError, StepEvent, Trainer, dist_info

LOG = "log.jsonl"
PREVIEWS = "previews"
SIDE_FILES = (LOG, PREVIEWS)  # ours, inside OUT, but not part of the checkpoint proper

# Optimisation defaults per kind of data, where TrainConfig's (made for 2-D points) do not suit.
KIND_DEFAULTS = {
    "points": {"lr": 2e-3, "batch_size": 256},
    "image": {"lr": 5e-4, "batch_size": 64},
    "signal": {"lr": 1e-3, "batch_size": 128},
}
# Flags that describe a new run; --resume takes all of these from the checkpoint instead.
RUN_FLAGS = ("dataset", "dataset_param", "preset", "net", "model_param", "schedule", "T", "prediction", "lr",
             "batch_size", "ema_decay", "min_snr_gamma", "seed", "warmup_steps", "grad_clip", "weight_decay")


class UsageError(ValueError):
    """A bad command line: reported as `error: ...` with exit status 2."""


def parse_params(items: list[str] | None, flag: str) -> dict:
    """["n=500", "noise=0.1", "channel_mult=[1,2]"] -> {"n": 500, "noise": 0.1, "channel_mult": [1, 2]}.

    Values are read as JSON where they parse (numbers, lists, true/false/null), else kept as text.
    """
    out = {}
    for item in items or ():
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{flag} takes key=value, got {item!r}")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        out[key.strip()] = value
    return out


def default_preset(kind: str, sample_shape: tuple[int, ...]) -> str:
    """The preset for a kind of data, sized for it (images: by side length); the first that fits the shape."""
    side = min(sample_shape[1:]) if kind == "image" else 0
    candidates = {
        "points": ["mlp-2d"],
        "signal": ["conv1d-signals", "gru-signals"],
        "image": (["unet-digits", "unet-small", "unet-shapes"] if side <= 8 else
                  ["unet-shapes", "unet-small", "unet-digits"] if side >= 32 else
                  ["unet-small", "unet-digits", "unet-shapes"]),
    }[kind]
    for name in (c for c in candidates if c in PRESETS):
        try:
            build_model(PRESETS[name], sample_shape, seed=0)
            return name
        except ValueError:
            continue
    raise UsageError(f"no preset fits {kind} data of shape {sample_shape}; choose --net and --model-param")


def parser() -> argparse.ArgumentParser:
    # Each help text states its own default: ArgumentDefaultsHelpFormatter printed '(default: None)' after
    # them, and after the required --dataset and --out.
    p = argparse.ArgumentParser(prog="python -m core.train", description=__doc__.splitlines()[0])
    g = p.add_argument_group("what to train")
    g.add_argument("--dataset", help=f"required unless --resume; one of: {', '.join(DATASETS)}")
    g.add_argument("--dataset-param", action="append", metavar="KEY=VALUE",
                   help="a dataset parameter, e.g. n=5000 or path=data/mnist (repeatable)")
    net = g.add_mutually_exclusive_group()
    net.add_argument("--preset", help=f"a named model: {', '.join(PRESETS)} (default: one sized for the data)")
    net.add_argument("--net", help=f"a bare net with its default sizes: {', '.join(NETS)}")
    g.add_argument("--model-param", action="append", metavar="KEY=VALUE",
                   help="override a net parameter, e.g. width=128 or channel_mult=[1,2] (repeatable)")
    g.add_argument("--schedule", choices=list(SCHEDULES), help="noise schedule (default: linear)")
    g.add_argument("--T", type=int, help="diffusion steps (default: 1000)")
    g.add_argument("--prediction", choices=PREDICTIONS, help="what the net predicts (default: eps)")

    g = p.add_argument_group("optimisation (defaults depend on the kind of data)")
    g.add_argument("--steps", type=int, help="total optimisation steps (default: 2000; with --resume: the new total)")
    g.add_argument("--lr", type=float, help="peak learning rate (points 2e-3, images 5e-4, signals 1e-3)")
    g.add_argument("--batch-size", type=int, help="global batch size (points 256, images 64, signals 128)")
    g.add_argument("--warmup-steps", type=int, help="linear learning-rate warm-up (default: 100)")
    g.add_argument("--grad-clip", type=float, help="max gradient norm; 0 disables (default: 1.0)")
    g.add_argument("--weight-decay", type=float, help="AdamW weight decay (default: 0)")
    g.add_argument("--ema-decay", type=float, help="decay of the weights' moving average that is saved (default: 0.999)")
    g.add_argument("--min-snr-gamma", type=float, help="min-SNR-gamma loss weighting, e.g. 5 (default: off)")
    g.add_argument("--seed", type=int, help="seed of the data order, noise and initial weights (default: 0)")

    g = p.add_argument_group("running")
    g.add_argument("--out", help="checkpoint directory to write; required unless --resume, which defaults to the "
                                "resumed one")
    g.add_argument("--resume", metavar="DIR", help="continue the run saved in this checkpoint")
    g.add_argument("--device", default="auto", choices=DEVICE_CHOICES, help="auto: cuda, then mps, then cpu (default: auto)")
    g.add_argument("--compile", nargs="?", const="default", choices=COMPILE_MODES, metavar="MODE",
                   help=f"torch.compile the model; MODE: {', '.join(COMPILE_MODES)} (default when given: default; "
                        "reduce-overhead adds CUDA graphs on a GPU)")
    g.add_argument("--channels-last", action="store_true",
                   help="image models in channels_last memory layout on any device (default: on CUDA only)")
    add_threads_option(g)
    g.add_argument("--shards", type=int, metavar="N",
                   help="on a CPU, split each batch into N shards trained side by side, one thread each "
                        "(default: one per torch thread for image models, 1 for the others)")
    g.add_argument("--cpu-bf16", action="store_true",
                   help="on a CPU with native bf16 (AVX512-BF16 or AMX), train under bf16 autocast: up to about "
                        "2x faster for image models (less for small pictures); default fp32 (on CUDA bf16 "
                        "autocast is the default)")
    g.add_argument("--checkpoint-every", type=int, default=0,
                   help=f"also save every N steps, N >= {retention.MIN_CHECKPOINT_EVERY} (default 0: only at the end)")
    g.add_argument("--keep-checkpoints", type=int, default=1, metavar="K",
                   help="checkpoints of this run kept: OUT plus the K-1 before it as OUT-step-NNNNNNN (default: 1)")
    g.add_argument("--runs-quota", default="0", metavar="SIZE",
                   help="refuse a save that would take the folder holding OUT past SIZE, e.g. 2G (default 0: none)")
    g.add_argument("--log-every", type=int, default=10, help="steps between lines of OUT/log.jsonl (default: 10)")
    g.add_argument("--preview-every", type=int, default=0, help="steps between sample previews in OUT/previews (0: none)")
    g.add_argument("--no-train-state", action="store_true",
                   help="save only the sampling weights (smaller; the run cannot be resumed)")
    return p


def build_config(a: argparse.Namespace, data_kind: str, sample_shape: tuple[int, ...]) -> tuple[RunConfig, str]:
    """The RunConfig of a new run from the flags; returns it and a label of the model chosen."""
    if a.preset is not None and a.preset not in PRESETS:
        raise UsageError(f"unknown preset {a.preset!r}; known: {', '.join(PRESETS)}")
    if a.net is not None and a.net not in NETS:
        raise UsageError(f"unknown net {a.net!r}; known: {', '.join(NETS)}")
    if a.net is not None:
        model, label = ModelConfig(a.net, {}), f"net {a.net}"
    else:
        name = a.preset or default_preset(data_kind, sample_shape)
        model, label = PRESETS[name], f"preset {name}"
    extra = parse_params(a.model_param, "--model-param")
    if extra:
        model = ModelConfig(model.net, {**model.params, **extra})
    diffusion = DiffusionConfig(**_given(a, schedule="schedule", T="T", prediction="prediction"))
    train = {**KIND_DEFAULTS[data_kind], "log_every": a.log_every, "preview_every": a.preview_every,
             "checkpoint_every": a.checkpoint_every, "compile": a.compile or False,
             **_given(a, steps="steps", lr="lr", batch_size="batch_size", warmup_steps="warmup_steps",
                      grad_clip="grad_clip", weight_decay="weight_decay", ema_decay="ema_decay",
                      min_snr_gamma="min_snr_gamma", seed="seed")}
    data = DataConfig(a.dataset, parse_params(a.dataset_param, "--dataset-param"))
    return RunConfig(model=model, diffusion=diffusion, data=data, train=TrainConfig(**train)), label


def _given(a: argparse.Namespace, **names) -> dict:
    return {key: getattr(a, attr) for key, attr in names.items() if getattr(a, attr) is not None}


def _check_out(out: Path, resuming_here: bool) -> None:
    """Fail before training, not after it, if OUT cannot take a checkpoint."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a directory")
    if out.is_dir() and not resuming_here:
        foreign = [p.name for p in out.iterdir() if p.name not in SIDE_FILES]
        if foreign and not ((out / checkpoint.CONFIG).exists() or (out / checkpoint.WEIGHTS).exists()):
            raise UsageError(f"--out {out} is a non-empty directory that is not a checkpoint; choose a new path")


def previous_name(out: Path, step: int) -> Path:
    """Where --keep-checkpoints keeps the checkpoint of `step` that OUT held before."""
    return out.parent / f"{out.name}-step-{step:07d}"


def save_checkpoint(trainer: Trainer, out: Path, train_state: bool = True, keep: int = 1,
                    quota: retention.Quota | None = None) -> None:
    """Save atomically; our side files (log, previews) are carried into the new directory by hard links,
    so a kill at any moment leaves them whole. Keeps the `keep - 1` checkpoints before it beside OUT."""
    previous = None
    if keep > 1 and (out / checkpoint.CONFIG).is_file():
        try:
            steps = checkpoint.load_config(out)[1].get("steps")
        except checkpoint.CheckpointError:
            steps = None
        if isinstance(steps, int) and steps != trainer.step_count:
            previous = previous_name(out, steps)
    trainer.save(out, {"dataset_kind": trainer.data.kind}, train_state=train_state, carry=SIDE_FILES,
                 check_space=quota.check if quota is not None else None, keep_previous_as=previous)
    if keep > 1:
        retention.prune(out.parent, keep - 1, prefix=f"{out.name}-")


def trim_log(out: Path, step: int) -> int:
    """Drop the lines of OUT/log.jsonl after `step` (a resumed run writes them again) and a torn last line.

    Returns the number of lines kept. The file is replaced atomically.
    """
    log = out / LOG
    if not log.is_file():
        return 0
    kept, changed = [], False
    for line in log.read_bytes().splitlines(keepends=True):
        if not line.endswith(b"\n"):
            changed = True  # killed while writing it
            continue
        try:
            line_step = json.loads(line).get("step")
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
            line_step = None
        if isinstance(line_step, int) and line_step > step:
            changed = True
            continue
        kept.append(line)
    if changed:
        tmp = log.with_name(f".{LOG}.trim-{os.getpid()}")
        tmp.write_bytes(b"".join(kept))
        os.replace(tmp, log)
    return len(kept)


class RunLog:
    """OUT/log.jsonl and OUT/previews/, opened per write so a checkpoint swap under them does no harm."""

    def __init__(self, out: Path, kind: str, append: bool):
        self.out, self.kind = out, kind
        out.mkdir(parents=True, exist_ok=True)
        if not append and (out / LOG).exists():
            (out / LOG).unlink()

    def __call__(self, event: StepEvent) -> None:
        with open(self.out / LOG, "a", encoding="utf-8") as f:
            f.write(json.dumps(event.to_dict()) + "\n")
        if event.preview is not None:
            self.preview(event.step, event.preview)

    def preview(self, step: int, x: torch.Tensor) -> None:
        folder = self.out / PREVIEWS
        folder.mkdir(exist_ok=True)
        np.save(folder / f"step_{step:07d}.npy", x.numpy())
        if self.kind == "image":
            from PIL import Image
            from .sample import to_uint8_grid
            grid = to_uint8_grid(x)
            Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid).save(folder / f"step_{step:07d}.png")


def _init_distributed(device_name: str) -> torch.device:
    """Join the process group torchrun describes (if any) and return this process's device."""
    device = pick_device(device_name)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or "RANK" not in os.environ:
        return device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    elif device.type != "cpu":
        raise UsageError(f"distributed training runs on cuda or cpu, not {device.type}; pass --device cpu")
    torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def _fmt(x: float) -> str:
    return f"{x:.4g}" if math.isfinite(x) else str(x)


def run(a: argparse.Namespace) -> int:
    if a.resume is None and (a.dataset is None or a.out is None):
        raise UsageError("--dataset and --out are required (or --resume DIR to continue a run)")
    apply_threads(a.threads)  # first: a bad value must fail before anything is loaded or written
    if a.resume is not None:
        given = [f"--{n.replace('_', '-')}" for n in RUN_FLAGS if getattr(a, n) is not None]
        if given:
            raise UsageError(f"--resume takes the model, data and training settings from the checkpoint; "
                             f"drop {', '.join(given)} (only --steps, --out and the running flags may change)")
    for flag, value in (("--checkpoint-every", a.checkpoint_every), ("--log-every", a.log_every),
                        ("--preview-every", a.preview_every)):
        if value < 0:
            raise UsageError(f"{flag} must be >= 0, got {value}")
    try:
        retention.check_checkpoint_every(a.checkpoint_every, "--checkpoint-every")
    except retention.DiskLimitError as e:
        raise UsageError(str(e)) from None
    for flag, check, value in (("--keep-checkpoints", retention.check_keep, a.keep_checkpoints),
                               ("--runs-quota", retention.parse_size, a.runs_quota)):
        try:
            check(value)
        except retention.DiskLimitError as e:
            raise UsageError(f"{flag}: {e}") from None
    limit = retention.parse_size(a.runs_quota)
    out = Path(a.out if a.out is not None else a.resume)
    rank = int(os.environ.get("RANK", "0"))
    if rank == 0:  # a run killed earlier (even mid-save) leaves hidden folders beside its checkpoint
        for where in {out, Path(a.resume)} if a.resume is not None else {out}:
            for line in checkpoint.recover(where):
                print(f"recovered {where}: {line}", file=sys.stderr, flush=True)
    resuming_here = a.resume is not None and out.resolve() == Path(a.resume).resolve()
    _check_out(out, resuming_here)
    quota = retention.Quota(out.resolve().parent, limit, hint="delete old runs there or pass a larger --runs-quota")
    try:
        quota.check()
    except retention.DiskLimitError as e:
        raise UsageError(str(e)) from None
    a.quota = quota

    if a.resume is not None:
        try:
            saved, _ = checkpoint.load_config(a.resume)
        except (FileNotFoundError, checkpoint.CheckpointError) as e:
            raise UsageError(f"cannot resume: {e}") from None
        if not checkpoint.has_train_state(a.resume):
            raise UsageError(f"cannot resume {a.resume}: it was saved without its training state")
        tc = saved.train
        tc = dataclasses.replace(tc, steps=a.steps if a.steps is not None else tc.steps, log_every=a.log_every,
                                 preview_every=a.preview_every, checkpoint_every=a.checkpoint_every,
                                 compile=a.compile or False)
        config, label = saved.replace(train=tc), "resumed"
        data = load_dataset(config.data.name, **config.data.params)
    else:
        data = load_dataset(a.dataset, **parse_params(a.dataset_param, "--dataset-param"))
        config, label = build_config(a, data.kind, tuple(data.x.shape[1:]))

    device = _init_distributed(a.device)
    rank, world = dist_info()
    trainer = None
    try:
        layout = True if a.channels_last else None
        if a.resume is not None:
            trainer = Trainer.resume(a.resume, data, device, config=config, channels_last=layout, shards=a.shards,
                                     cpu_bf16=a.cpu_bf16)
        else:
            trainer = Trainer(config, data, device, channels_last=layout, shards=a.shards, cpu_bf16=a.cpu_bf16)
        if rank == 0:  # only now, so a model that does not fit the data leaves no folder behind
            if a.resume is not None:
                trim_log(out, trainer.step_count)
            trainer.log = RunLog(out, data.kind, append=a.resume is not None)
        return _train(trainer, out, label, a, rank, world)
    finally:
        if torch.distributed.is_initialized():
            # The trainer sits in reference cycles, so only the garbage collector frees it, and its DDP wrapper
            # holds the process group: left to the collector at interpreter exit, gloo's threads were torn down
            # mid-finalisation and a rank now and then aborted ("terminate called without an active exception")
            # after a run that had succeeded. Free it here, while everything is alive, then end the group.
            trainer = None
            gc.collect()
            torch.distributed.destroy_process_group()


def _train(trainer: Trainer, out: Path, label: str, a: argparse.Namespace, rank: int, world: int) -> int:
    from tqdm import tqdm

    tc = trainer.config.train
    main = rank == 0
    if main:
        print(f"training {trainer.config.model.net} ({label}, {count_parameters(trainer.model):,} parameters) on "
              f"{trainer.data.name} ({len(trainer.data)} x {tuple(trainer.data.x.shape[1:])}) on {trainer.device}"
              f"{f' x {world} processes' if world > 1 else ''}{' under bf16 autocast' if trainer.cpu_bf16 else ''}"
              f"{f', each batch in {trainer.shards} shards' if trainer.shards > 1 else ''}; "
              f"steps {trainer.step_count} -> {tc.steps}",
              flush=True)
    bar = tqdm(total=tc.steps, initial=trainer.step_count, unit="step", dynamic_ncols=True,
               disable=not (main and sys.stderr.isatty()))
    try:
        for event in trainer.run():
            bar.update(1)
            if event.step % max(1, tc.log_every) == 0:
                bar.set_postfix(loss=f"{event.loss_avg:.4f}", lr=f"{event.lr:.2e}", refresh=False)
            if main and tc.checkpoint_every and event.step % tc.checkpoint_every == 0 and event.step < tc.steps:
                save_checkpoint(trainer, out, train_state=not a.no_train_state, keep=a.keep_checkpoints, quota=getattr(a, "quota", None))
    except KeyboardInterrupt:
        # Ctrl-C keeps what was learnt: the weights after the last finished step, resumable with --resume
        bar.close()
        if main and trainer.step_count > 0:
            save_checkpoint(trainer, out, train_state=not a.no_train_state, keep=a.keep_checkpoints, quota=getattr(a, "quota", None))
            print(f"interrupted at step {trainer.step_count} of {tc.steps}; saved {out}"
                  f"{'' if a.no_train_state else f' (continue with --resume {out})'}", file=sys.stderr, flush=True)
        return 130
    except NonFiniteLossError as e:
        bar.close()
        if main:
            kept = f"the last checkpoint in {out} is kept" if (out / checkpoint.WEIGHTS).exists() else "nothing was saved"
            print(f"error: {e}; {kept}", file=sys.stderr)
        return 1
    bar.close()
    if main:
        save_checkpoint(trainer, out, train_state=not a.no_train_state, keep=a.keep_checkpoints, quota=getattr(a, "quota", None))
        last = trainer.last_event
        loss = f", loss {_fmt(last.loss_avg)}" if last is not None else ""
        print(f"wrote {out} ({trainer.step_count} steps{loss}, {trainer.elapsed:.1f} s)", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = parser()
    a = p.parse_args(argv)
    try:
        return run(a)
    except UsageError as e:
        p.error(str(e))
    except (ValueError, FileNotFoundError) as e:  # bad dataset/config values: say what, exit 2 like argparse
        p.error(str(e))
    return 2


if __name__ == "__main__":
    sys.exit(main())
