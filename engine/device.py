"""Choosing the compute device and the CPU fast paths (bfloat16, channels-last)."""

from __future__ import annotations

import functools
import os

import torch

from .errors import SeparationError


def pick_device(name: str = "auto") -> torch.device:
    """"auto" -> CUDA, then Apple MPS, then CPU. An explicit device that is absent is an error."""
    name = (name or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SeparationError("CUDA was asked for but no CUDA GPU is available; use --device cpu or auto.")
    if name == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise SeparationError("Apple MPS was asked for but is not available; use --device cpu or auto.")
    try:
        return torch.device(name)
    except RuntimeError as exc:
        raise SeparationError(f"Unknown device {name!r}: use auto, cpu, cuda or mps.") from exc


@functools.lru_cache(maxsize=1)
def cpu_has_fast_bf16() -> bool:
    """bfloat16 only pays on CPUs with native bf16 matrix units (AMX or AVX512-BF16)."""
    if os.environ.get("STEMLAB_NO_BF16"):
        return False
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as fh:
            flags = fh.read()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def describe(device: torch.device) -> str:
    """A human name for the device, shown in the GUI and written to separation.json."""
    if device.type == "cuda":
        return f"CUDA GPU ({torch.cuda.get_device_name(device)})"
    if device.type == "mps":
        return "Apple GPU (MPS)"
    return f"CPU ({torch.get_num_threads()} threads)"
