"""A recurrent denoiser for 1-D signals: a bidirectional GRU reads the noisy sequence.

Each position's input is the signal value(s) plus a projection of the step embedding, and the
step embedding also sets the GRU's initial hidden state, so the recurrence knows the noise level
from its first step. A small MLP head maps each position's two-way state to the output there.

Input (B, C, L) and timesteps (B,) -> output (B, C, L). Any length L works (the net has no
length-specific weights), so a model trained at one L can denoise another.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .base import Denoiser, even_int, pos_int, probability
from .embeddings import StepEmbedding, as_timesteps


class GRUDenoiser(Denoiser):
    """Bidirectional GRU over positions.

    hidden: GRU width (per direction); layers: stacked GRU layers; bidirectional: read both ways
    (else left to right only); step_dim: width of the sinusoidal step code; dropout: between
    GRU layers.
    """

    kind = "signal"

    def __init__(
        self,
        sample_shape: Sequence[int],
        *,
        hidden: int = 128,
        layers: int = 2,
        bidirectional: bool = True,
        step_dim: int = 64,
        dropout: float = 0.0,
    ):
        super().__init__(sample_shape)
        channels, _ = self.sample_shape
        hidden = pos_int("hidden", hidden)
        self.layers = pos_int("layers", layers)
        self.dirs = 2 if bidirectional else 1
        self.hidden = hidden
        dropout = probability("dropout", dropout)

        self.step = StepEmbedding(even_int("step_dim", step_dim), hidden)
        self.inp = nn.Linear(channels, hidden)
        self.step_in = nn.Linear(hidden, hidden)  # added at every position
        self.step_h0 = nn.Linear(hidden, self.layers * self.dirs * hidden)  # initial state of every layer/direction
        self.gru = nn.GRU(hidden, hidden, num_layers=self.layers, batch_first=True,
                          bidirectional=bool(bidirectional), dropout=dropout if self.layers > 1 else 0.0)
        width = self.dirs * hidden
        self.head = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, hidden), nn.SiLU(), nn.Linear(hidden, channels))
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor | int) -> torch.Tensor:
        if x.ndim != 3 or x.shape[1] != self.sample_shape[0]:
            raise ValueError(f"GRUDenoiser expects (B, {self.sample_shape[0]}, L), got {tuple(x.shape)}")
        b = x.shape[0]
        emb = F.silu(self.step(as_timesteps(t, b, x.device)))
        seq = self.inp(x.transpose(1, 2)) + self.step_in(emb)[:, None, :]  # (B, L, hidden)
        h0 = torch.tanh(self.step_h0(emb)).reshape(b, self.layers * self.dirs, self.hidden)
        out, _ = self.gru(seq, h0.transpose(0, 1).contiguous())
        return self.head(out).transpose(1, 2)
