"""A trained G as a reference whose edits a new G copies at the start of training (distillation warm start).

The reference may work at another image size (the shipped 64 px G for a 128 px run). Its edit is taken the way
the demo pastes one: the change G makes, ``R(x, c_trg) - R(x, c_org)`` at the reference's size, upsampled and
added to the full-size face. So the target keeps the face's own detail, is the face itself where the labels do
not change, and carries none of the reference's own-picture errors (its blur, its checkerboard).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .domains import LabelSpace


class EditReference(nn.Module):
    """``target(x, c_trg, c_org)``: the reference G's edit of faces ``x`` (any size, in [-1, 1]) as a picture."""

    def __init__(self, generator: nn.Module, size: int) -> None:
        super().__init__()
        self.generator = generator.requires_grad_(False).eval()
        self.size = size

    @torch.no_grad()
    def target(self, x: torch.Tensor, c_trg: torch.Tensor, c_org: torch.Tensor) -> torch.Tensor:
        n, side = x.size(0), x.size(-1)
        small = x if side == self.size else F.interpolate(x.float(), size=(self.size, self.size), mode="area")
        small = small.to(x.dtype)
        both = self.generator(torch.cat([small, small]), torch.cat([c_trg, c_org]), source=torch.cat([c_org, c_org]))
        change = (both[:n] - both[n:]).float()
        if side != self.size:
            change = F.interpolate(change, size=(side, side), mode="bilinear", align_corners=False)
        return (x.float() + change).clamp(-1, 1).to(x.dtype)


def load_reference(source: str | Path, labels: LabelSpace, device: torch.device) -> EditReference:
    """The weights folder ``source`` as an EditReference; its labels must be this run's."""
    from .weights import load_weights

    loaded = load_weights(source, device=device, load_discriminator=False)
    if loaded.config.label_space != labels:
        theirs, ours = loaded.config.label_space.all_names, labels.all_names
        differ = (f"only in the reference: {sorted(set(theirs) - set(ours)) or 'none'}; only in this run: "
                  f"{sorted(set(ours) - set(theirs)) or 'none'}")
        raise ValueError(f"--distill-from {source}: its labels are not this run's ({differ}, or another order); "
                         "a reference must read and write the same labels")
    return EditReference(loaded.generator, loaded.config.image_size).to(device)
