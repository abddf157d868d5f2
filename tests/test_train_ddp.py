"""`python -m core.train` under torchrun: two CPU processes (gloo) train one model; only rank 0 writes."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import torch

from core import checkpoint

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_torchrun_two_processes_write_one_checkpoint(tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
           "--master_addr", "127.0.0.1", "--master_port", str(free_port()),
           "-m", "core.train", "--dataset", "gaussians8", "--dataset-param", "n=1000", "--steps", "20",
           "--out", str(out), "--device", "cpu", "--net", "mlp", "--model-param", "width=16",
           "--model-param", "blocks=1", "--model-param", "fourier_features=4", "--T", "50",
           "--batch-size", "32", "--log-every", "5", "--checkpoint-every", "10"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # rank 0 alone reports, and it saw a world of two
    assert done.stdout.count("training mlp") == 1 and "x 2 processes" in done.stdout
    assert done.stdout.count("wrote") == 1

    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp"]  # one checkpoint, no leftovers
    model, config, meta = checkpoint.load(out)
    assert meta["steps"] == 20 and config.train.batch_size == 32
    assert all(torch.isfinite(v).all() for v in model.state_dict().values())
    lines = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [d["step"] for d in lines] == [5, 10, 15, 20]  # once each: only rank 0 logs
    assert lines[-1]["samples_per_s"] == lines[-1]["steps_per_s"] * 32  # the global batch
    state = checkpoint.load_train_state(out)
    assert state["world_size"] == 2 and state["step"] == 20


def test_the_trainer_is_freed_before_the_process_group_ends(tmp_path, monkeypatch):
    """The trainer lives in reference cycles and its DDP wrapper holds the group: left to the collector at exit, a
    rank now and then aborted in gloo's teardown after a good run. It must be gone when the group is ended."""
    import weakref

    import core.train as train

    made, alive_at_end = [], []

    class Tracked(train.Trainer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(weakref.ref(self))

    def one_process_group(_device_name):
        torch.distributed.init_process_group("gloo", store=torch.distributed.HashStore(), rank=0, world_size=1)
        return torch.device("cpu")

    real_destroy = torch.distributed.destroy_process_group

    def destroy(*args, **kwargs):
        alive_at_end.append([ref() is not None for ref in made])
        real_destroy(*args, **kwargs)

    monkeypatch.setattr(train, "Trainer", Tracked)
    monkeypatch.setattr(train, "_init_distributed", one_process_group)
    monkeypatch.setattr(torch.distributed, "destroy_process_group", destroy)
    code = train.main(["--dataset", "gaussians8", "--dataset-param", "n=200", "--steps", "3", "--out",
                       str(tmp_path / "run"), "--device", "cpu", "--net", "mlp", "--model-param", "width=16",
                       "--model-param", "blocks=1", "--T", "50", "--batch-size", "8"])
    assert code == 0 and not torch.distributed.is_initialized()
    assert alive_at_end == [[False]]
