"""Colour maths on changes in [-1, 1] (ITU-R BT.601, OpenCV's YCrCb): a change's luminance, and its chroma split
into a smooth part and the rest (the blotches G paints on skin)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

LUMA = (0.299, 0.587, 0.114)
CB_CR = ((-0.168736, -0.331264, 0.5), (0.5, -0.418688, -0.081312))


def luminance(delta: torch.Tensor) -> torch.Tensor:
    """An RGB change (B, 3, H, W) reduced to its luminance, the same value on every channel: adding it to an
    image leaves the image's chroma (Cb, Cr) exactly as it was."""
    w = delta.new_tensor(LUMA).view(1, 3, 1, 1)
    return (delta * w).sum(1, keepdim=True).expand_as(delta)


def chroma_parts(change: torch.Tensor, sigma: float = 2.0) -> tuple[torch.Tensor, torch.Tensor]:
    """The chroma (Cb, Cr) of a change (N, 3, H, W), split into a smooth part (a Gaussian blur of ``sigma``
    pixels, 4 sigma each side, edges reflected as OpenCV's default) and the rest; each (N, 2, H, W)."""
    chroma = torch.einsum("cj,njhw->nchw", change.new_tensor(CB_CR, dtype=torch.float32), change.float())
    radius = int(4 * sigma + 0.5)
    taps = torch.arange(-radius, radius + 1, dtype=torch.float32, device=change.device)
    kernel = torch.exp(-taps.square() / (2 * sigma * sigma))
    kernel = (kernel / kernel.sum()).repeat(2, 1, 1)
    blurred = F.pad(chroma, (radius, radius, radius, radius), mode="reflect")
    blurred = F.conv2d(blurred, kernel.view(2, 1, 1, -1), groups=2)
    blurred = F.conv2d(blurred, kernel.view(2, 1, -1, 1), groups=2)
    return blurred, chroma - blurred

