"""Pick the compute device (cuda > mps > cpu) and the autocast policy that goes with it."""
from __future__ import annotations

import contextlib

import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def available_devices() -> list[str]:
    """Names of the device types this machine can run on, best first."""
    found = []
    if torch.cuda.is_available():
        found.append("cuda")
    if _mps_available():
        found.append("mps")
    found.append("cpu")
    return found


def pick_device(name: str | None = "auto") -> torch.device:
    """`auto` (or None) picks cuda > mps > cpu; an explicit name must be present on this machine."""
    name = (name or "auto").lower()
    kind = name.split(":")[0]
    if kind not in DEVICE_CHOICES:
        raise ValueError(f"unknown device {name!r}; choose one of {', '.join(DEVICE_CHOICES)}")
    have = available_devices()
    if kind == "auto":
        return torch.device(have[0])
    if kind not in have:
        raise ValueError(
            f"device {name!r} was asked for but is not available here; available: {', '.join(have)}"
        )
    return torch.device(name)


def cpu_has_bf16() -> bool:
    """Whether this CPU does bf16 arithmetic natively (AVX512-BF16 or AMX), as oneDNN's bf16 kernels need.

    There a 1.06 M-parameter UNet's training step on 32x32 pictures under bf16 autocast is about 2x
    as fast as in fp32, and 1.3x on the 8x8 digits (benchmarks/RESULTS-speed.md, RESULTS-quality.md);
    without it bf16 is emulated and slower than fp32.
    """
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch build without the query
        return False


def autocast(device: torch.device, enabled: bool = True, cpu: bool = False):
    """bf16 autocast on CUDA (fast and overflow-safe) when `enabled`; on a CPU only when `cpu` is asked
    for (fp32 is the default there: exact, and what the shipped models were trained in); a no-op elsewhere."""
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    if cpu and device.type == "cpu":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def describe_device(device: torch.device | str) -> str:
    """A human name for where work ran, e.g. 'cuda (NVIDIA H100 80GB HBM3)' or 'cpu (x86_64, 2 threads)'."""
    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        import platform

        threads = torch.get_num_threads()
        return f"cpu ({platform.machine() or 'unknown'}, {threads} thread{'s' if threads != 1 else ''})"
    return device.type
