"""Devices and precision: the one helper for both (DESIGN, "one way to do each thing"), shared by training,
evaluation and the editor."""

from __future__ import annotations

import contextlib

import torch


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for but no CUDA GPU is visible; use --device cpu or auto")
    return device


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 natively: a CUDA GPU that supports it, or a CPU with AVX512-BF16 or AMX.
    Elsewhere bf16 is emulated: an iteration of the cpu recipe's networks took 16x longer than in fp32 on an
    AVX2-only CPU (benchmarks/RESULTS.md, "Training speed")."""
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """"auto": bf16 where ``device`` computes it natively, fp32 elsewhere; any other value as given."""
    if precision != "auto":
        return precision
    return "bf16" if native_bf16(device) else "fp32"


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision not in ("bf16", "fp16"):
        raise ValueError(f"unknown precision {precision!r}; choose fp32, bf16 or fp16")
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("fp16 needs a CUDA GPU; on CPU use bf16 or fp32")
    return torch.autocast(device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)
