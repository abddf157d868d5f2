"""What a run will cost on this device: the measured time of one model call, remembered per model and batch.

A sampler step is one forward pass of the network on the whole batch (DDPM, DDIM and DPM-Solver++
2M all make one call per step), so the time of a run is close to steps x the time of one call.
That time is measured here, once per (checkpoint, batch, device), not guessed, and kept for the
life of the process. Requests estimate their cost with it before they start, refuse what would
hold the queue too long, and say what would fit.
"""
from __future__ import annotations

import threading
import time

import torch

LIMIT_S = 120.0  # a request estimated to run longer than this is refused (it would hold the queue)


def say_seconds(s: float) -> str:
    """'0.4 s', '12 s', '3 min' for people."""
    if s < 1:
        return f"{s:.1f} s"
    return f"{round(s)} s" if s < 90 else f"{round(s / 60)} min"


class CallCosts:
    """Seconds per model call by (key, batch, device); measured on first use, then remembered."""

    def __init__(self, repeats: int = 3):
        self.repeats = repeats
        self._seen: dict[tuple, float] = {}
        self._lock = threading.Lock()

    def seconds_per_call(self, key: str, model, sample_shape, n: int, device) -> float:
        """The median time of one forward pass on n samples (after a warm-up call)."""
        k = (key, int(n), str(device))
        with self._lock:
            if k in self._seen:
                return self._seen[k]
        x = torch.zeros((int(n), *sample_shape), device=device)
        t = torch.full((int(n),), 1, dtype=torch.long, device=device)
        times = []
        with torch.no_grad():
            model(x, t)  # the first call pays for allocations and kernel choice
            for _ in range(self.repeats):
                start = time.perf_counter()
                model(x, t)
                if x.device.type == "cuda":
                    torch.cuda.synchronize(x.device)
                times.append(time.perf_counter() - start)
        cost = sorted(times)[len(times) // 2]
        with self._lock:
            self._seen[k] = cost
        return cost


COSTS = CallCosts()
