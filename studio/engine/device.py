"""Picking the device and the mixed-precision mode."""
from __future__ import annotations

import contextlib

import torch


def pick_device(preference: str = "auto") -> torch.device:
    if preference == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if preference == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("The recipe asks for device 'cuda' but no CUDA GPU is available; use device: auto.")
    if preference == "mps" and not torch.backends.mps.is_available():
        raise RuntimeError("The recipe asks for device 'mps' but Apple's MPS is not available; use device: auto.")
    return torch.device(preference)


def autocast_dtype(device: torch.device, precision: str = "auto") -> torch.dtype | None:
    """bf16 where the GPU supports it, else fp16 on GPU; None (plain fp32) on CPU or when asked."""
    if precision == "fp32" or (precision == "auto" and device.type == "cpu"):
        return None
    if precision == "bf16" or (precision == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported()):
        return torch.bfloat16
    return torch.float16


def autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
