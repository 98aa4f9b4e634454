"""Where a run computes: device selection and the precision it runs in there."""

from __future__ import annotations

import contextlib

import torch

from lab.errors import ConfigError


def resolve_device(name: str = "auto") -> torch.device:
    """`auto` picks cuda, then mps, then cpu; raises `ConfigError` for a missing or unknown
    device."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"unknown device {name!r}; choose auto, cpu, cuda or mps")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda requested but no CUDA device is available")
    if name == "mps" and not (getattr(torch.backends, "mps",
                                      None) and torch.backends.mps.is_available()):
        raise ConfigError("--device mps requested but MPS is not available")
    return torch.device(name)


def autocast(device: torch.device, bf16: bool = True) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA (unless `bf16` is off); full precision elsewhere."""
    if device.type == "cuda" and bf16:
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
