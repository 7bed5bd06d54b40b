"""Pick the device, set CPU threads, and seed every random source a run uses."""

from __future__ import annotations

import os
import random

import numpy as np
import torch


def pick_device(name: str = "auto") -> torch.device:
    """"auto" is CUDA when present, else CPU; Apple MPS only when asked for by name."""
    name = (name or "auto").lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but no CUDA GPU is available here; use --device cpu or auto")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("--device mps was asked for, but Apple's MPS backend is not available here")
    if name not in ("cpu", "cuda", "mps"):
        raise ValueError(f"unknown device {name!r}; choose auto, cpu, cuda or mps")
    return torch.device(name)


def describe(device: torch.device) -> str:
    """A short name for people: the GPU's model name, or the CPU with its thread count."""
    if device.type == "cuda":
        return f"GPU: {torch.cuda.get_device_name(device)}"
    if device.type == "mps":
        return "Apple GPU (MPS)"
    threads = torch.get_num_threads()
    return f"CPU ({threads} thread{'' if threads == 1 else 's'})"


def cpu_cores() -> int:
    """Cores this process may run on (its affinity, which a container or taskset narrows), at least 1."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def set_threads(num: int | None = None) -> None:
    """Use `num` threads, else CHARLM_THREADS, else every core the process may run on."""
    if not num:
        try:
            num = int(os.environ.get("CHARLM_THREADS", "0"))
        except ValueError:   # a mistyped setting must not stop the app; fall back to every core
            num = 0
    num = num or cpu_cores()
    torch.set_num_threads(max(1, num))


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, numpy and torch; return the generator that draws training batches."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator
