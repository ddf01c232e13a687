"""Picking the device and the mixed-precision mode."""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

import torch

from studio.errors import UserError


def pick_device(preference: str = "auto") -> torch.device:
    if preference == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if preference == "cuda" and not torch.cuda.is_available():
        raise UserError("The recipe asks for device 'cuda' but no CUDA GPU is available; use device: auto.")
    if preference == "mps" and not torch.backends.mps.is_available():
        raise UserError("The recipe asks for device 'mps' but Apple's MPS is not available; use device: auto.")
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


def devices_found() -> dict:
    """The accelerators this machine has, for the UI and for `train.devices: all`."""
    if torch.cuda.is_available():
        names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        return {"kind": "cuda", "count": len(names), "names": names}
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return {"kind": "mps", "count": 1, "names": ["Apple GPU (MPS)"]}
    return {"kind": "cpu", "count": 1, "names": ["CPU"]}


PROC_STATUS = Path("/proc/self/status")


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    else:
        try:  # Linux: "5" resets the process's resident-memory high-water mark (VmHWM), so it measures this run
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            pass


def peak_memory_mb(device: torch.device) -> float | None:
    """Peak accelerator memory of the run; on the CPU the worker process's peak resident memory since the run
    began (Linux). None where neither can be read."""
    if device.type == "cuda":
        return round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    try:
        for line in PROC_STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)  # reported in KiB
    except OSError:
        pass
    return None


GB = 1024**3


def machine_memory() -> tuple[str, float]:
    """(device, GB) a run would train in here: the first GPU's memory, or the computer's memory."""
    if torch.cuda.is_available():
        return "cuda", torch.cuda.get_device_properties(0).total_memory / GB
    return "cpu", os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GB


def available_gb(device: torch.device) -> float:
    """Memory a run can use: the GPU's free memory, or the memory the system says is available."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free / GB
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024**2
    except OSError:
        pass
    return machine_memory()[1]
