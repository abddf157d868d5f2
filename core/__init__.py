"""Diffusion Explorer's core: schedules, the forward process, denoisers, samplers, data,
training, metrics and checkpoints. Knows nothing of any UI."""

__version__ = "0.1.0"
