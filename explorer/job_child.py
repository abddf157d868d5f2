"""The training process of the app's background job (explorer/jobs.py starts it, one run at a time).

Run as `python -c "from explorer.job_child import child_entry; child_entry()" CMD_FD EVT_FD NICE`. Not
multiprocessing's spawn: it re-runs the parent's main script in the child (which breaks any launcher
without an `if __name__ == "__main__"` guard and imports gradio there for nothing). A plain subprocess
imports only this module, core and torch, and talks over two private pipes: it trains with
`core.training.Trainer`, obeys the commands (pause, resume, save, stop) and sends back plain numbers and
small numpy previews.
"""
from __future__ import annotations

import math
import os
import shutil
import time
import traceback
from pathlib import Path

import numpy as np

from core import retention
from core.config import RunConfig

FLUSH_SECONDS = 0.25      # the child batches per-step numbers this often (a UI polls about once a second)
REFERENCE_N = 1000        # real samples sent once for comparison (points: a scatter; images: a grid)


def checkpoint_name(step: int) -> str:
    return f"step-{step:07d}"


def _to_numpy(x, dtype=np.float16) -> np.ndarray:
    return x.detach().to("cpu").float().numpy().astype(dtype)


def _warm_up() -> None:
    """Pay the one-off costs of a first run before any run asks: importing torch and the trainer, and
    building a first optimizer (torch's AdamW imports torch._dynamo on first use: 2-10 s on 2 busy cores)."""
    import torch

    import core.checkpoint  # noqa: F401  (saving a checkpoint needs it)
    import core.data  # noqa: F401
    import core.training  # noqa: F401

    w = torch.nn.Parameter(torch.zeros(4, 4))
    opt = torch.optim.AdamW([w], lr=1e-3)
    (w.sum() ** 2).backward()
    opt.step()


def child_entry() -> None:
    """Entry point of the training process; its arguments are the two pipe descriptors and its niceness."""
    import signal
    import sys
    from multiprocessing.connection import Connection

    # Ctrl+C in the terminal reaches the whole process group; the parent decides when we stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    nice = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    if nice and hasattr(os, "nice"):
        try:
            os.nice(nice)  # the UI's requests come first when both want the CPU
        except OSError:
            pass
    commands, events = Connection(int(sys.argv[1]), writable=False), Connection(int(sys.argv[2]), readable=False)
    try:
        _warm_up()
    except Exception:  # nothing lost: the run itself then meets the same problem and reports it
        pass
    try:
        events.send({"type": "ready", "pid": os.getpid()})  # the parent may ask (spare_ready); a run skips it
    except OSError:
        return
    try:
        setup = commands.recv()
    except EOFError:
        return  # a spare that was never used: the app closed its pipe
    _child_main(setup, commands, events)


def _child_main(setup: dict, commands, events) -> None:
    """Train until done or told to stop; report over `events`, obey `commands`."""
    import torch

    torch.set_num_threads(setup["threads"])
    trainer = None
    try:
        from core.data import load_dataset
        from core.training import NonFiniteLossError, Trainer

        config = RunConfig.from_json(setup["config"])
        data = load_dataset(config.data.name, **config.data.params)
        trainer = Trainer(config, data, setup["device"], cpu_bf16=setup.get("cpu_bf16", False))
        g = torch.Generator().manual_seed(config.train.seed)
        ref_idx = torch.randperm(len(data), generator=g)[:REFERENCE_N if data.kind == "points" else 64]
        events.send({"type": "started", "kind": data.kind, "sample_shape": list(data.shape),
                     "dataset_size": len(data), "parameters": sum(p.numel() for p in trainer.model.parameters()),
                     "t_bin_edges": list(trainer.per_t.edges), "reference": _to_numpy(data.x[ref_idx]),
                     "device": str(trainer.device), "threads": setup["threads"], "shards": trainer.shards,
                     "cpu_bf16": trainer.cpu_bf16, "pid": os.getpid()})
        _child_loop(trainer, Path(setup["run_dir"]), setup["checkpoint_every"], commands, events, NonFiniteLossError)
    except (EOFError, BrokenPipeError):
        return  # the app went away: nobody is left to report to
    except Exception as e:  # reported to the UI; the parent marks the job failed
        try:
            events.send({"type": "error", "message": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc(),
                         "step": getattr(trainer, "step_count", 0)})
        except OSError:
            pass


def _child_loop(trainer, run_dir: Path, checkpoint_every: int, commands, events, nan_error) -> None:
    buffer: list[tuple] = []
    last_flush = -math.inf  # the first step is sent at once: the charts start with it
    paused = False
    total = trainer.config.train.steps
    last_event = None
    previews, preview_s, last_elapsed = 0, 0.0, trainer.elapsed  # the time previews took, for later estimates

    def flush(ev=None) -> None:
        nonlocal buffer, last_flush
        msg = {"type": "progress", "rows": buffer}
        if ev is not None:
            msg.update(per_t=list(ev.per_t_loss), steps_per_s=ev.steps_per_s, samples_per_s=ev.samples_per_s,
                       elapsed=ev.elapsed, previews=previews, preview_s=preview_s)
        events.send(msg)
        buffer, last_flush = [], time.monotonic()

    quota = retention.app_quota(run_dir.parent)

    periodic: list[Path] = []  # the checkpoint-every saves; Save, Stop and the final one are always kept

    def save(path: Path, token=None, every: bool = False) -> str:
        where = str(trainer.save(path, check_space=quota.check))  # refused before a byte is written when full
        if every:
            periodic.append(path)
        elif path in periodic:  # saved on request at the same step: kept
            periodic.remove(path)
        removed = []
        while len(periodic) > retention.DEFAULT_KEEP:
            old = periodic.pop(0)
            shutil.rmtree(old, ignore_errors=True)
            removed.append(str(old))
        events.send({"type": "saved", "token": token, "path": where, "step": trainer.step_count, "removed": removed})
        return where

    while True:
        # A command: wait for one while paused, otherwise only look. EOF = the app is gone.
        cmd = commands.recv() if commands.poll(1.0 if paused else 0) else None
        if cmd is not None:
            what = cmd[0]
            if what == "pause" and not paused:
                paused = True
                flush(last_event)
                events.send({"type": "paused", "step": trainer.step_count})
            elif what == "resume" and paused:
                paused = False
                events.send({"type": "resumed", "step": trainer.step_count})
            elif what == "save":
                _, token = cmd
                try:
                    save(run_dir / checkpoint_name(trainer.step_count), token)
                except Exception as e:
                    events.send({"type": "save_failed", "token": token, "message": f"{type(e).__name__}: {e}"})
            elif what == "stop":
                # Stop keeps what was learnt: the weights so far are saved (resumable) before the child ends
                flush(last_event)
                if trainer.step_count > 0:
                    try:
                        save(run_dir / checkpoint_name(trainer.step_count))
                    except Exception as e:
                        events.send({"type": "save_failed", "token": None, "message": f"{type(e).__name__}: {e}"})
                events.send({"type": "stopped", "step": trainer.step_count})
                return
            continue
        if paused:
            continue
        try:
            ev = trainer.step()
        except nan_error as e:
            flush(last_event)
            events.send({"type": "error", "message": str(e), "step": trainer.step_count, "traceback": ""})
            return
        last_event = ev
        if ev.preview is not None:  # the step's time beyond a plain step's (smoothed) time
            previews += 1
            preview_s += max(0.0, ev.elapsed - last_elapsed - 1.0 / ev.steps_per_s)
        last_elapsed = ev.elapsed
        buffer.append((ev.step, ev.loss, ev.lr, ev.grad_norm))
        if ev.preview is not None:
            flush(ev)
            events.send({"type": "preview", "step": ev.step, "samples": _to_numpy(ev.preview)})
        elif time.monotonic() - last_flush >= FLUSH_SECONDS:
            flush(ev)
        if checkpoint_every and ev.step % checkpoint_every == 0 and ev.step < total:
            save(run_dir / checkpoint_name(ev.step), every=True)
        if trainer.done:
            flush(ev)
            path = save(run_dir / checkpoint_name(ev.step))
            events.send({"type": "finished", "step": ev.step, "path": path})
            return
