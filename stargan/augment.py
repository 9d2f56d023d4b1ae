"""Differentiable augmentation of every image D sees (DiffAugment, Zhao et al., NeurIPS 2020).

The same random transformation family is applied to real and generated images, in D's step and in G's, and it
is differentiable, so G's gradient passes through it. D can then no longer tell real from fake (or read a
class) from pixel details that the augmentation destroys, which makes it harder for G to satisfy D_cls with
small, invisible changes. Images are in [-1, 1]; every random draw comes from the caller's generator, so a run
stays reproducible and resumable.

Policies (comma-separated): ``translation`` (shift by up to 1/8 of the side, zero fill), ``cutout`` (a zeroed
square of ``CUTOUT`` of the side), ``color`` (brightness, saturation, contrast). ``color`` changes hair colour,
so it also changes what D_cls should read: use it knowingly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

POLICIES = ("translation", "cutout", "color")
TRANSLATION = 0.125
CUTOUT = 0.25  # DiffAugment uses 0.5; a quarter-side square keeps most of what the attributes are about


def parse_policy(policy: str) -> tuple[str, ...]:
    parts = tuple(p.strip() for p in policy.split(",") if p.strip())
    unknown = [p for p in parts if p not in POLICIES]
    if unknown:
        raise ValueError(f"unknown augmentation(s) {unknown}; choose from {', '.join(POLICIES)} (comma-separated)")
    return parts


def augment(x: torch.Tensor, policy: str, gen: torch.Generator) -> torch.Tensor:
    """``x`` (B, 3, H, W) with each of the policy's transformations drawn independently per image."""
    for part in parse_policy(policy):
        x = {"translation": _translation, "cutout": _cutout, "color": _color}[part](x, gen)
    return x


def _rand(gen: torch.Generator, x: torch.Tensor, *shape: int) -> torch.Tensor:
    return torch.rand(*shape, generator=gen).to(x.device, x.dtype)


def _translation(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    b, _, h, w = x.shape
    max_dy, max_dx = round(h * TRANSLATION), round(w * TRANSLATION)
    dy = torch.randint(-max_dy, max_dy + 1, (b,), generator=gen).to(x.device)
    dx = torch.randint(-max_dx, max_dx + 1, (b,), generator=gen).to(x.device)
    # Whole-pixel shifts by gathering from a zero-padded copy: exact, and differentiable in x.
    padded = F.pad(x, (max_dx, max_dx, max_dy, max_dy))
    rows = (torch.arange(h, device=x.device).view(1, h) - dy.view(b, 1) + max_dy).view(b, 1, h, 1)
    cols = (torch.arange(w, device=x.device).view(1, w) - dx.view(b, 1) + max_dx).view(b, 1, 1, w)
    c = x.shape[1]
    out = padded.gather(2, rows.expand(b, c, h, padded.shape[3]))
    return out.gather(3, cols.expand(b, c, h, w))


def _cutout(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    b, _, h, w = x.shape
    sh, sw = max(1, round(h * CUTOUT)), max(1, round(w * CUTOUT))
    cy = (torch.rand(b, generator=gen) * h).long().to(x.device).view(b, 1, 1)
    cx = (torch.rand(b, generator=gen) * w).long().to(x.device).view(b, 1, 1)
    ys = torch.arange(h, device=x.device).view(1, h, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, w)
    hole = ((ys - cy).abs() <= sh // 2) & ((xs - cx).abs() <= sw // 2)
    return x * (~hole).unsqueeze(1).to(x.dtype)


def _color(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    b = x.shape[0]
    x = x + (_rand(gen, x, b, 1, 1, 1) - 0.5)  # brightness
    mean = x.mean(1, keepdim=True)
    x = (x - mean) * (_rand(gen, x, b, 1, 1, 1) * 2) + mean  # saturation
    mean = x.mean((1, 2, 3), keepdim=True)
    return (x - mean) * (_rand(gen, x, b, 1, 1, 1) + 0.5) + mean  # contrast
