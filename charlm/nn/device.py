"""Pick the device, set CPU threads, make a run's own generators, and say when a device's memory ran out."""

from __future__ import annotations

import os

import torch

from charlm.config import ModelConfig, TrainConfig, threads_setting
from charlm.errors import UserError


def pick_device(name: str = "auto") -> torch.device:
    """"auto" is a CUDA GPU when there is one, else Apple's GPU (MPS) when there is one, else the CPU."""
    name = (name or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if _mps_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for, but no CUDA GPU is available here; use --device cpu or auto")
    if name == "mps" and not _mps_available():
        raise UserError("--device mps was asked for, but Apple's MPS backend is not available here")
    if name not in ("cpu", "cuda", "mps"):
        raise UserError(f"unknown device {name!r}; choose auto, cpu, cuda or mps")
    return torch.device(name)


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


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


def set_threads(num: int | None = None, processes: int = 1) -> None:
    """Use `num` threads, else CHARLM_THREADS, else this process's share of the cores it may run on (all of
    them, or a `processes`-th when that many processes share the machine)."""
    num = num or threads_setting() or cpu_cores() // max(1, processes)
    torch.set_num_threads(max(1, num))


def generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A generator of a run's own, seeded: runs never seed or draw from the process-wide ones, which every
    thread of a server shares (a run seeding them would reset every visitor's randomness)."""
    return torch.Generator(device).manual_seed(seed)


class OutOfMemory(UserError):
    """The device ran out of memory: the batch, the sequence or the model is too large for it."""

    def __init__(self, where: str, model_cfg: ModelConfig | None, cfg: TrainConfig | None, processes: int = 1):
        self.sizes = {"batch_size": cfg and cfg.batch_size, "seq_len": cfg and cfg.seq_len,
                      "hidden_size": model_cfg and model_cfg.hidden_size}   # what to lower; None when not known
        self.what = f"{where} ran out of memory"   # what happened, for a caller that words the advice its own way
        if cfg is not None and model_cfg is not None:
            shared = f", shared by {processes} processes" if processes > 1 else ""
            self.what += (f" training batches of {cfg.batch_size} x {cfg.seq_len} characters{shared} with "
                          f"{model_cfg.num_layers} x LSTM({model_cfg.hidden_size})")
        super().__init__(f"{self.what}; lower the batch size, the sequence length or the hidden size")


def memory_that_ran_out(err: BaseException) -> str | None:
    """Which memory err says ran out ("the GPU", ...); None when err is about something else."""
    text = str(err)
    if "MPS" in text and "out of memory" in text:
        return "Apple's GPU"
    if isinstance(err, torch.OutOfMemoryError):   # torch.cuda.OutOfMemoryError
        return "the GPU"
    if "DefaultCPUAllocator: can't allocate memory" in text:
        return "the machine"
    return None
