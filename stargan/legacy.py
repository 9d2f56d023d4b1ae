"""Import the original StarGAN implementation's checkpoints (``200000-G.ckpt``, ``200000-D.ckpt``).

    python -m stargan.legacy 200000-G.ckpt [--discriminator 200000-D.ckpt] \\
        --attrs Black_Hair,Blond_Hair,Brown_Hair,Male,Young --image-size 128 --out DIR

writes a weights folder (DESIGN decision 4) with the CelebA alignment template (decision 5). Every key of the
original layout is listed in an explicit table (``generator_key_table`` / ``discriminator_key_table``):
anything not in the table, or a required key that is absent, fails loudly by name. InstanceNorm's
``running_mean``, ``running_var`` and ``num_batches_tracked`` are dropped on purpose (decision 2: normalisation
is per-image); checkpoints from old PyTorch versions without ``num_batches_tracked`` are accepted. Files are
read with ``torch.load(weights_only=True)``: plain tensors only, no code is unpickled.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import pickle
import re
import shlex
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

from .config import ModelConfig
from .domains import LabelSpace, celeba
from .face import CELEBA_ALIGNED_TEMPLATE
from .models import build_discriminator, build_generator
from .weights import WeightsError, save_weights

__all__ = ["CELEBA_ALIGNED_TEMPLATE", "LegacyImportError", "convert_state_dict", "discriminator_key_table",
           "generator_key_table", "import_original", "load_original_checkpoint", "main"]

logger = logging.getLogger(__name__)

# Table value: (new key, shape) for a kept tensor, or (None, None) for one dropped on purpose.
KeyTable = dict[str, tuple[str | None, tuple[int, ...] | None]]
_DROPPED = ("running_mean", "running_var", "num_batches_tracked")  # InstanceNorm running statistics


class LegacyImportError(WeightsError):
    """An original checkpoint that does not fit the layout or the options given; the message names the key."""


def _conv(table: KeyTable, name: str, shape: tuple[int, ...], bias: bool = False) -> None:
    table[f"{name}.weight"] = (f"{name}.weight", shape)
    if bias:
        table[f"{name}.bias"] = (f"{name}.bias", (shape[0],))


def _norm(table: KeyTable, name: str, channels: int) -> None:
    table[f"{name}.weight"] = (f"{name}.weight", (channels,))
    table[f"{name}.bias"] = (f"{name}.bias", (channels,))
    for stat in _DROPPED:
        table[f"{name}.{stat}"] = (None, None)


def generator_key_table(conv_dim: int = 64, c_dim: int = 5, repeat_num: int = 6) -> KeyTable:
    """Every key of the original ``Generator(conv_dim, c_dim, repeat_num)`` state dict, in its order.

    ``main``: 7x7 conv, IN, ReLU (0-2); two down-sampling convs (3-8); residual blocks (9 ...); two transposed
    convs; the 7x7 output conv. The names are the same in this project's Generator (decision 1).
    """
    t: KeyTable = {}
    _conv(t, "main.0", (conv_dim, 3 + c_dim, 7, 7))
    _norm(t, "main.1", conv_dim)
    dim, i = conv_dim, 3
    for _ in range(2):
        _conv(t, f"main.{i}", (dim * 2, dim, 4, 4))
        _norm(t, f"main.{i + 1}", dim * 2)
        dim, i = dim * 2, i + 3
    for _ in range(repeat_num):
        _conv(t, f"main.{i}.main.0", (dim, dim, 3, 3))
        _norm(t, f"main.{i}.main.1", dim)
        _conv(t, f"main.{i}.main.3", (dim, dim, 3, 3))
        _norm(t, f"main.{i}.main.4", dim)
        i += 1
    for _ in range(2):
        _conv(t, f"main.{i}", (dim, dim // 2, 4, 4))  # ConvTranspose2d weights are (in, out, kH, kW)
        _norm(t, f"main.{i + 1}", dim // 2)
        dim, i = dim // 2, i + 3
    _conv(t, f"main.{i}", (3, dim, 7, 7))
    return t


def discriminator_key_table(image_size: int = 128, conv_dim: int = 64, c_dim: int = 5, repeat_num: int = 6) -> KeyTable:
    """Every key of the original ``Discriminator(image_size, conv_dim, c_dim, repeat_num)`` state dict."""
    t: KeyTable = {}
    _conv(t, "main.0", (conv_dim, 3, 4, 4), bias=True)
    dim = conv_dim
    for k in range(1, repeat_num):
        _conv(t, f"main.{2 * k}", (dim * 2, dim, 4, 4), bias=True)
        dim *= 2
    kernel = image_size // 2**repeat_num
    _conv(t, "conv1", (1, dim, 3, 3))
    _conv(t, "conv2", (c_dim, dim, kernel, kernel))
    return t


def load_original_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """The state dict in an original ``.ckpt`` file, read without unpickling any code."""
    path = Path(path)
    if not path.is_file():
        raise LegacyImportError(f"{path}: no such checkpoint file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as e:
        raise LegacyImportError(f"{path}: not a plain PyTorch state dict that can be read without unpickling code "
                                f"(torch.load(weights_only=True) refused it: {e}); pass the original "
                                "200000-G.ckpt / 200000-D.ckpt files") from e
    if not isinstance(obj, Mapping) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                               for k, v in obj.items()):
        raise LegacyImportError(f"{path}: expected a state dict (names -> tensors) as the original code saves with "
                                f"torch.save(G.state_dict(), ...), got {type(obj).__name__}")
    return dict(obj)


def _looks_like(state: Mapping[str, torch.Tensor]) -> str:
    # Guess the generator options from the checkpoint itself, for error hints only.
    if "main.0.weight" not in state or state["main.0.weight"].dim() != 4:
        return ""
    blocks = {m[1] for k in state if (m := re.match(r"main\.(\d+)\.main\.0\.weight$", k))}
    w = state["main.0.weight"]
    if blocks:
        return (f" (this checkpoint looks like a generator with --conv-dim {w.shape[0]} --repeat-num {len(blocks)} "
                f"and {w.shape[1] - 3} labels)")
    return f" (this checkpoint looks like a discriminator with conv_dim {w.shape[0]})"


def convert_state_dict(state: Mapping[str, torch.Tensor], table: KeyTable, source: str) -> dict[str, torch.Tensor]:
    """Map an original state dict through ``table``: refuse unknown or missing keys and wrong shapes by name."""
    unknown = [k for k in state if k not in table]
    if unknown:
        raise LegacyImportError(f"{source}: unexpected key(s) not in the original layout for these options: "
                                f"{', '.join(unknown[:6])}{' ...' if len(unknown) > 6 else ''}{_looks_like(state)}; "
                                "check --conv-dim/--repeat-num/--image-size, or that this is an original StarGAN "
                                "checkpoint")
    missing = [k for k, (new, _) in table.items() if new is not None and k not in state]
    if missing:
        raise LegacyImportError(f"{source}: missing key(s) of the original layout: "
                                f"{', '.join(missing[:6])}{' ...' if len(missing) > 6 else ''}{_looks_like(state)}; "
                                "check --conv-dim/--repeat-num, or whether the file is incomplete")
    out = {}
    for key, (new, shape) in table.items():
        if new is None:
            continue  # running statistics: per-image normalisation never uses them (decision 2)
        got = tuple(state[key].shape)
        if got != shape:
            raise LegacyImportError(f"{source}: {key} has shape {got}, expected {shape} for these options"
                                    f"{_looks_like(state)}; check --conv-dim/--repeat-num/--image-size/--attrs")
        out[new] = state[key]
    dropped = sum(1 for k in state if table[k][0] is None)
    logger.info("%s: %d tensors kept, %d InstanceNorm running statistics dropped", source, len(out), dropped)
    return out


def _module(build, config: ModelConfig, state: dict[str, torch.Tensor]) -> nn.Module:
    with torch.device("meta"):
        module = build(config)
    module.load_state_dict(state, strict=True, assign=True)
    return module


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def import_original(generator_ckpt: str | Path, out: str | Path, attrs: Sequence[str], image_size: int = 128,
                    discriminator_ckpt: str | Path | None = None, conv_dim: int = 64, repeat_num: int = 6,
                    d_conv_dim: int | None = None, d_repeat_num: int | None = None,
                    command: str | None = None) -> Path:
    """Convert original CelebA checkpoints into a weights folder at ``out`` and return its path.

    ``attrs`` are the CelebA attribute names the model was trained with, in training order (the original
    default: Black_Hair, Blond_Hair, Brown_Hair, Male, Young). D's options default to G's.
    """
    generator_ckpt = Path(generator_ckpt)
    d_conv_dim = conv_dim if d_conv_dim is None else d_conv_dim
    d_repeat_num = repeat_num if d_repeat_num is None else d_repeat_num
    try:
        space = LabelSpace((celeba(list(attrs)),))
    except (KeyError, ValueError) as e:
        raise LegacyImportError(f"--attrs: {e.args[0] if e.args else e}") from e
    config = ModelConfig(space, image_size, conv_dim, repeat_num, d_conv_dim, d_repeat_num)

    g_raw = load_original_checkpoint(generator_ckpt)
    first = g_raw.get("main.0.weight")
    if first is not None and first.dim() == 4 and first.shape[1] - 3 != len(attrs):
        raise LegacyImportError(
            f"{generator_ckpt}: G was trained with {first.shape[1] - 3} labels (main.0.weight takes 3 + "
            f"{first.shape[1] - 3} input channels) but --attrs names {len(attrs)} ({', '.join(attrs)}); pass the "
            "attribute names the model was trained with, in training order")
    g_state = convert_state_dict(g_raw, generator_key_table(conv_dim, len(attrs), repeat_num), str(generator_ckpt))
    generator = _module(build_generator, config, g_state)

    discriminator = None
    provenance = {
        "source": "original StarGAN implementation (github.com/yunjey/stargan) checkpoint, converted by "
                  "stargan.legacy; InstanceNorm running statistics dropped (per-image normalisation)",
        "data": "CelebA img_align_celeba (178x218, centre crop 178, resized to "
                f"{image_size}); labels {', '.join(attrs)}",
        "terms": "CelebA may be used for non-commercial research and educational purposes only; so may these "
                 "weights, which were trained on it.",
        "checkpoint": generator_ckpt.name, "checkpoint_sha256": _sha256(generator_ckpt),
    }
    if m := re.match(r"(\d+)-G\.ckpt$", generator_ckpt.name):
        provenance["steps"] = int(m[1])  # the original names checkpoints by iteration
    if discriminator_ckpt is not None:
        discriminator_ckpt = Path(discriminator_ckpt)
        d_raw = load_original_checkpoint(discriminator_ckpt)
        cls = d_raw.get("conv2.weight")
        if cls is not None and cls.dim() == 4 and cls.shape[0] != len(attrs):
            raise LegacyImportError(f"{discriminator_ckpt}: D classifies {cls.shape[0]} labels (conv2.weight) but "
                                    f"--attrs names {len(attrs)}; pass the attribute names the model was trained with")
        if cls is not None and cls.dim() == 4 and cls.shape[-1] != image_size // 2**d_repeat_num:
            raise LegacyImportError(f"{discriminator_ckpt}: D's conv2 kernel is {cls.shape[-1]}, which means "
                                    f"--image-size {cls.shape[-1] * 2**d_repeat_num} for repeat_num {d_repeat_num}, "
                                    f"not {image_size}")
        d_table = discriminator_key_table(image_size, d_conv_dim, len(attrs), d_repeat_num)
        d_state = convert_state_dict(d_raw, d_table, str(discriminator_ckpt))
        discriminator = _module(build_discriminator, config, d_state)
        provenance["discriminator_checkpoint"] = discriminator_ckpt.name
        provenance["discriminator_checkpoint_sha256"] = _sha256(discriminator_ckpt)
    if command:
        provenance["command"] = command
    return save_weights(out, generator, config, discriminator, template=CELEBA_ALIGNED_TEMPLATE,
                        provenance=provenance)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stargan.legacy", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("generator", type=Path, help="the original G checkpoint, e.g. 200000-G.ckpt")
    parser.add_argument("--discriminator", type=Path, help="the original D checkpoint, e.g. 200000-D.ckpt")
    parser.add_argument("--attrs", required=True,
                        help="comma-separated CelebA attributes in training order, e.g. "
                             "Black_Hair,Blond_Hair,Brown_Hair,Male,Young")
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--conv-dim", type=int, default=64, help="G's (and by default D's) conv_dim (paper: 64)")
    parser.add_argument("--repeat-num", type=int, default=6,
                        help="G's residual blocks (and by default D's layers) (paper: 6)")
    parser.add_argument("--d-conv-dim", type=int, help="D's conv_dim when it differs from G's")
    parser.add_argument("--d-repeat-num", type=int, help="D's layers when they differ from G's residual blocks")
    parser.add_argument("--out", type=Path, required=True, help="the weights folder to write")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    attrs = [a.strip() for a in args.attrs.split(",") if a.strip()]
    # Recorded in the model card: file names only (no local directories), every option spelled out.
    command = ["python", "-m", "stargan.legacy", args.generator.name]
    if args.discriminator:
        command += ["--discriminator", args.discriminator.name]
    command += ["--attrs", ",".join(attrs), "--image-size", str(args.image_size), "--conv-dim", str(args.conv_dim),
                "--repeat-num", str(args.repeat_num)]
    for flag, value in (("--d-conv-dim", args.d_conv_dim), ("--d-repeat-num", args.d_repeat_num)):
        if value is not None:
            command += [flag, str(value)]
    command += ["--out", args.out.name]
    try:
        out = import_original(args.generator, args.out, attrs, args.image_size, args.discriminator, args.conv_dim,
                              args.repeat_num, args.d_conv_dim, args.d_repeat_num,
                              command=shlex.join(command))
    except WeightsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
