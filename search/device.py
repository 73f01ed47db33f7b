"""Where a proxy training runs and in what precision: the device of a process, mixed precision
on CUDA, and cuDNN's kernel choice."""

from __future__ import annotations

import contextlib
import os

import torch


def resolve_device(name: str, worker: int = 0) -> torch.device:
    """`auto` picks CUDA when present. On CUDA, worker k of a machine's processes gets GPU
    k mod the number of GPUs, so `search.workers=N` on N GPUs puts one worker on each."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("train.device='cuda' but no CUDA device is available: use auto or cpu")
        return torch.device("cuda", worker % torch.cuda.device_count())
    return torch.device(name)


def resolve_precision(name: str, device: torch.device) -> str:
    """`auto`: bf16 on a GPU that supports it, else fp16 (with a gradient scaler); fp32 on a CPU."""
    if device.type != "cuda":
        return "fp32"  # CPU autocast is slower than fp32 for these convolutions
    if name == "auto":
        return "bf16" if torch.cuda.is_bf16_supported(including_emulation=False) else "fp16"
    return name


def autocast_for(precision: str):
    """A factory of the autocast context of `precision` (a no-op context for fp32)."""
    if precision == "fp32":
        return contextlib.nullcontext
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return lambda: torch.autocast("cuda", dtype=dtype)


def set_determinism(device: torch.device, deterministic: bool) -> None:
    """Reproducible CUDA kernels when asked; otherwise let cuDNN time and pick the fastest for
    a candidate's shapes, which never change during its training."""
    if device.type != "cuda":
        return
    if deterministic:  # cuBLAS needs a fixed workspace for reproducible matrix products
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.backends.cudnn.benchmark = not deterministic
    torch.backends.cudnn.deterministic = deterministic
    # warn_only: adaptive pooling's backward has no deterministic CUDA kernel; its sums differ
    # only in their last bits between runs, which the test of two identical runs would show.
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
