"""A small image UNet in the DDPM / improved-diffusion mould.

ResBlocks (GroupNorm, SiLU, 3x3 convs) take the step embedding as a per-channel scale and shift
of their second norm (or as an added bias); self-attention runs at the resolutions you name and in
the bottleneck. Every level but the last halves the resolution, so an image of size S with
`len(channel_mult)` levels bottoms out at S / 2**(levels-1), which must stay >= MIN_RESOLUTION
(4): an 8x8 image allows 2 levels, 16x16 3, 32x32 4, 64x64 5. A config asking for more is refused
with a message naming the most this size allows, rather than silently cut down.

Input (B, C, H, W) and timesteps (B,) -> output (B, C, H, W). Works in channels_last too.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .base import Denoiser, Dropout, even_int, group_count, int_tuple, pos_int, probability
from .embeddings import StepEmbedding, as_timesteps

MIN_RESOLUTION = 4  # below 4x4 a 3x3 conv sees mostly padding


def zero_init(module: nn.Module) -> nn.Module:
    """Zero a layer's weights and bias: the block it ends starts as the identity (or the net as 0)."""
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


def norm(channels: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(group_count(channels, groups), channels)


class ResBlock(nn.Module):
    """GN -> SiLU -> conv -> (+ step) -> GN -> SiLU -> dropout -> conv, plus a skip.

    (B, cin, H, W) and a step embedding (B, emb_dim) -> (B, cout, H, W).
    """

    def __init__(self, cin: int, cout: int, emb_dim: int, groups: int, dropout: float, scale_shift: bool):
        super().__init__()
        self.scale_shift = scale_shift
        self.norm1 = norm(cin, groups)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * cout if scale_shift else cout)
        self.norm2 = norm(cout, groups)
        self.drop = Dropout(dropout)
        self.conv2 = zero_init(nn.Conv2d(cout, cout, 3, padding=1))
        self.skip = nn.Identity() if cin == cout else nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        e = self.emb(F.silu(emb))[:, :, None, None]
        if self.scale_shift:
            # improved-diffusion's "scale-shift norm": the step modulates the normalised features.
            scale, shift = e.chunk(2, dim=1)
            h = self.norm2(h) * (1 + scale) + shift
        else:
            h = self.norm2(h + e)
        h = self.conv2(self.drop(F.silu(h)))
        return self.skip(x) + h


class Attention(nn.Module):
    """Multi-head self-attention over the H*W positions, residual; (B, C, H, W) -> same."""

    def __init__(self, channels: int, heads: int, groups: int):
        super().__init__()
        if channels % heads:
            raise ValueError(f"attention heads={heads} must divide the channel count {channels}")
        self.heads = heads
        self.norm = norm(channels, groups)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = zero_init(nn.Conv2d(channels, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        # reshape, not view: in channels_last the (C, H*W) axes are not contiguous.
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, h * w).unbind(1)
        out = F.scaled_dot_product_attention(q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2))
        out = out.transpose(-1, -2).reshape(b, c, h, w)
        return x + self.proj(out)


class Downsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x):
        return self.conv(x)


class Upsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


def allowed_levels(height: int, width: int) -> int:
    """How many levels (len(channel_mult)) an H x W image allows.

    Each extra level halves both sides, which must stay even and end at >= MIN_RESOLUTION.
    """
    levels, h, w = 1, height, width
    while h % 2 == 0 and w % 2 == 0 and h // 2 >= MIN_RESOLUTION and w // 2 >= MIN_RESOLUTION:
        levels, h, w = levels + 1, h // 2, w // 2
    return levels


class UNet(Denoiser):
    """A small DDPM-style UNet for (C, H, W) images.

    base: channels at full resolution; channel_mult: one multiplier per level (each level after
    the first starts with a 2x downsampling); blocks: ResBlocks per level; attn_resolutions: the
    side lengths (e.g. 16 for a 16x16 feature map; the shorter side if not square) at which to add self-attention; mid_attn:
    attention in the bottleneck; heads: attention heads; dropout: inside ResBlocks;
    scale_shift: inject the step as scale and shift (else as an added bias); groups: the most
    GroupNorm groups (the largest divisor of each width up to this is used); step_dim: width of
    the sinusoidal step code (default: base, rounded up to even).
    """

    kind = "image"

    def __init__(
        self,
        sample_shape: Sequence[int],
        *,
        base: int = 64,
        channel_mult: Sequence[int] = (1, 2, 2),
        blocks: int = 2,
        attn_resolutions: Sequence[int] = (),
        mid_attn: bool = True,
        heads: int = 4,
        dropout: float = 0.0,
        scale_shift: bool = True,
        groups: int = 32,
        step_dim: int | None = None,
    ):
        super().__init__(sample_shape)
        cin, height, width = self.sample_shape
        base = pos_int("base", base)
        mults = int_tuple("channel_mult", channel_mult)
        blocks = pos_int("blocks", blocks)
        attn = set(int_tuple("attn_resolutions", attn_resolutions, allow_empty=True))
        heads = pos_int("heads", heads)
        dropout = probability("dropout", dropout)
        groups = pos_int("groups", groups)
        step_dim = even_int("step_dim", base + base % 2 if step_dim is None else step_dim)

        most = allowed_levels(height, width)
        if len(mults) > most:
            raise ValueError(
                f"channel_mult={list(mults)} has {len(mults)} levels, i.e. {len(mults) - 1} halvings of a "
                f"{height}x{width} image; its sides must halve evenly and stay >= {MIN_RESOLUTION}, so at most "
                f"{most} level(s) are allowed here (e.g. channel_mult={[1, 2, 2, 2, 2][:most]})"
            )
        sizes = [min(height, width) // 2**i for i in range(len(mults))]
        bad = sorted(attn - set(sizes))
        if bad:
            raise ValueError(f"attn_resolutions {bad} do not occur in this UNet; its feature maps have sides {sizes}")

        emb_dim = 4 * base
        self.step = StepEmbedding(step_dim, emb_dim)
        self.inp = nn.Conv2d(cin, base, 3, padding=1)

        def res(a, b):
            return ResBlock(a, b, emb_dim, groups, dropout, scale_shift)

        # Encoder: remember each output's width, the decoder concatenates them back in reverse.
        self.down = nn.ModuleList()
        skips, ch = [base], base
        for level, mult in enumerate(mults):
            for _ in range(blocks):
                layer = nn.ModuleList([res(ch, base * mult)])
                ch = base * mult
                if sizes[level] in attn:
                    layer.append(Attention(ch, heads, groups))
                self.down.append(layer)
                skips.append(ch)
            if level < len(mults) - 1:
                self.down.append(nn.ModuleList([Downsample(ch)]))
                skips.append(ch)

        self.mid = nn.ModuleList([res(ch, ch)] + ([Attention(ch, heads, groups)] if mid_attn else []) + [res(ch, ch)])

        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(mults))):
            for i in range(blocks + 1):
                layer = nn.ModuleList([res(ch + skips.pop(), base * mult)])
                ch = base * mult
                if sizes[level] in attn:
                    layer.append(Attention(ch, heads, groups))
                if level > 0 and i == blocks:
                    layer.append(Upsample(ch))
                self.up.append(layer)

        self.out = nn.Sequential(norm(ch, groups), nn.SiLU(), zero_init(nn.Conv2d(ch, cin, 3, padding=1)))

    @staticmethod
    def _run(layer: nn.ModuleList, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        for module in layer:
            h = module(h, emb) if isinstance(module, ResBlock) else module(h)
        return h

    def forward(self, x: torch.Tensor, t: torch.Tensor | int) -> torch.Tensor:
        self.check_input(x)
        emb = self.step(as_timesteps(t, x.shape[0], x.device))
        h = self.inp(x)
        hs = [h]
        for layer in self.down:
            h = self._run(layer, h, emb)
            hs.append(h)
        h = self._run(self.mid, h, emb)
        for layer in self.up:
            h = self._run(layer, torch.cat([h, hs.pop()], dim=1), emb)
        return self.out(h)
