"""Devices and precision: the one helper for both (DESIGN, "one way to do each thing"), shared by training,
evaluation and the editor."""

from __future__ import annotations

import contextlib
import functools
import time

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


@functools.lru_cache(maxsize=1)
def cpu_bf16_speedup() -> float:
    """fp32's time over bf16's for one convolution's forward and backward on this CPU, in this process's threads.
    Native bf16 is not always the faster: AMX Xeons gained 2.5x on a training step and a Zen 4 EPYC 1.7x, but a
    Xeon with AVX512-BF16 and no AMX took 1.5x fp32's time (benchmarks/HISTORY.md, "Training speed")."""
    best = {"fp32": float("inf"), "bf16": float("inf")}
    with torch.inference_mode(False), torch.enable_grad():  # callers may be evaluating under no_grad
        x = torch.randn(4, 64, 32, 32).to(memory_format=torch.channels_last)
        conv = torch.nn.Conv2d(64, 64, 3, 1, 1).to(memory_format=torch.channels_last)
        for name in ("fp32", "bf16") * 3:  # interleaved: fair to both under load; the first of each warms up
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=name == "bf16"):
                start = time.perf_counter()
                for _ in range(3):
                    conv(x).float().sum().backward()
                best[name] = min(best[name], time.perf_counter() - start)
    return best["fp32"] / best["bf16"]


def resolve_precision(precision: str, device: torch.device) -> str:
    """"auto": bf16 where ``device`` computes it natively and, on a CPU, measurably faster (at least 1.1x) than
    fp32; fp32 elsewhere. Any other value as given."""
    if precision != "auto":
        return precision
    if not native_bf16(device):
        return "fp32"
    return "bf16" if device.type == "cuda" or cpu_bf16_speedup() >= 1.1 else "fp32"


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision not in ("bf16", "fp16"):
        raise ValueError(f"unknown precision {precision!r}; choose fp32, bf16 or fp16")
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("fp16 needs a CUDA GPU; on CPU use bf16 or fp32")
    return torch.autocast(device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)
