"""StarGAN's generator and discriminator, exactly as the paper and the original code (DESIGN decision 1).

Module names follow the original (``main.N``, ``conv1``, ``conv2``) so state-dict keys match its checkpoints.
InstanceNorm is per-image in training and inference (decision 2): no running statistics, so ``eval()`` and
``train()`` give the same output.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import ModelConfig


def _instance_norm(channels: int) -> nn.InstanceNorm2d:
    return nn.InstanceNorm2d(channels, affine=True, track_running_stats=False)


class ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False), _instance_norm(channels), nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False), _instance_norm(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.main(x)


class Generator(nn.Module):
    """G(x, c): the label is replicated spatially and concatenated to the image channels."""

    def __init__(self, conv_dim: int = 64, c_dim: int = 5, repeat_num: int = 6) -> None:
        super().__init__()
        self.c_dim = c_dim
        layers: list[nn.Module] = [
            nn.Conv2d(3 + c_dim, conv_dim, 7, 1, 3, bias=False), _instance_norm(conv_dim), nn.ReLU(inplace=True),
        ]
        dim = conv_dim
        for _ in range(2):
            layers += [nn.Conv2d(dim, dim * 2, 4, 2, 1, bias=False), _instance_norm(dim * 2), nn.ReLU(inplace=True)]
            dim *= 2
        layers += [ResidualBlock(dim) for _ in range(repeat_num)]
        for _ in range(2):
            layers += [nn.ConvTranspose2d(dim, dim // 2, 4, 2, 1, bias=False), _instance_norm(dim // 2),
                       nn.ReLU(inplace=True)]
            dim //= 2
        layers += [nn.Conv2d(dim, 3, 7, 1, 3, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        if c.shape[-1] != self.c_dim:
            raise ValueError(f"G expects labels of length {self.c_dim}, got {c.shape[-1]}")
        c = c.to(dtype=x.dtype).view(c.size(0), c.size(1), 1, 1).expand(-1, -1, x.size(2), x.size(3))
        return self.main(torch.cat([x, c], dim=1))


class Discriminator(nn.Module):
    """D(x) -> (PatchGAN real/fake map, one classification logit per label name)."""

    def __init__(self, image_size: int = 128, conv_dim: int = 64, c_dim: int = 5, repeat_num: int = 6) -> None:
        super().__init__()
        final = image_size // 2**repeat_num
        if image_size % 2**repeat_num or final < 1:
            raise ValueError(
                f"image_size {image_size} cannot be handled by a discriminator with repeat_num {repeat_num}: "
                f"its class head needs a whole final map of image_size / 2**repeat_num >= 1 pixels; use an image size "
                f"that is a multiple of {2**repeat_num} or fewer layers")
        layers: list[nn.Module] = [nn.Conv2d(3, conv_dim, 4, 2, 1), nn.LeakyReLU(0.01)]
        dim = conv_dim
        for _ in range(1, repeat_num):
            layers += [nn.Conv2d(dim, dim * 2, 4, 2, 1), nn.LeakyReLU(0.01)]
            dim *= 2
        self.main = nn.Sequential(*layers)
        self.conv1 = nn.Conv2d(dim, 1, 3, 1, 1, bias=False)
        self.conv2 = nn.Conv2d(dim, c_dim, final, bias=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.main(x)
        return self.conv1(h), self.conv2(h).flatten(1)


def build_generator(config: ModelConfig) -> Generator:
    return Generator(config.g_conv_dim, config.g_label_dim, config.g_repeat_num)


def build_discriminator(config: ModelConfig) -> Discriminator:
    return Discriminator(config.image_size, config.d_conv_dim, config.d_label_dim, config.d_repeat_num)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
