"""The arithmetic a run trains in: bf16 autocast or fp32, chosen by measuring rather than assuming.

On CUDA, bf16 autocast (when the run allows it). On a CPU, only where the CPU does bf16 natively (AVX512-BF16
or AMX) and a short probe of the run's own model and batch finds it faster: without native support bf16 is
emulated and far slower, and even with it a small model can lose more to conversions than it gains.
"""

from __future__ import annotations

import statistics
import time
from typing import Callable

import torch

FP32, BF16 = "fp32", "bf16 autocast"
RESUMED = "as the run began"   # why a resumed run computes as it does: it keeps its first session's choice
MIN_GAIN = 1.15      # bf16 must be at least this much faster than fp32 in the probe to be chosen
PROBE_ROUNDS = 3     # timed steps per arithmetic (each after one untimed warm-up), interleaved


def cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none, as on macOS)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def native_bf16() -> bool:
    """Does this CPU compute bf16 in hardware (AVX512-BF16 or AMX), as oneDNN sees it?"""
    flags = cpu_flags()
    if flags and not {"avx512_bf16", "amx_bf16"} & flags:
        return False
    try:   # no flags to read (macOS, or ARM's "Features" line): oneDNN's word alone
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def probe_step(model: torch.nn.Module, vocab_size: int, rows: int, seq: int) -> Callable[[bool], None]:
    """step(bf16): one forward and backward of `model` on random ids of the run's batch shape (at most 32 x 64),
    for the probe; the weights, their gradients and the model's generator of dropout masks are left as they were."""
    rows, seq = min(rows, 32), min(seq, 64)
    ids = torch.randint(0, vocab_size, (rows, seq + 1), generator=torch.Generator().manual_seed(0))

    def step(bf16: bool) -> None:
        masks = getattr(model, "generator", None)
        rng = masks.get_state() if masks is not None else None
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits, _ = model(ids[:, :-1])
            loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(), ids[:, 1:].flatten())
        loss.backward()
        model.zero_grad(set_to_none=True)
        if rng is not None:
            masks.set_state(rng)
    return step


def probe(step: Callable[[bool], None], rounds: int = PROBE_ROUNDS,
          clock: Callable[[], float] | None = None) -> tuple[float, float]:
    """Median seconds of step(False) (fp32) and step(True) (bf16): one warm-up each, then `rounds` of each,
    interleaved, so a busy moment on a shared machine falls on both."""
    clock = clock or time.perf_counter
    step(False)
    step(True)
    times = {False: [], True: []}
    for _ in range(rounds):
        for bf16 in (False, True):
            started = clock()
            step(bf16)
            times[bf16].append(clock() - started)
    return statistics.median(times[False]), statistics.median(times[True])


def choose(device: torch.device, allowed: bool, step: Callable[[bool], None]) -> tuple[str, str]:
    """-> (the arithmetic, why) for a run on `device`; `allowed` False (amp off) means fp32.

    `step(bf16)` runs one training step's forward and backward in that arithmetic, leaving the weights as
    they were; it is called only on a CPU with native bf16.
    """
    if not allowed:
        return FP32, "bf16 turned off"
    if device.type == "cuda":
        return BF16, "GPU"
    if device.type != "cpu":
        return FP32, f"{device.type} trains in fp32"
    if not native_bf16():
        return FP32, "this CPU has no native bf16"
    fp32_s, bf16_s = probe(step)
    gain = fp32_s / max(bf16_s, 1e-9)
    if gain >= MIN_GAIN:
        return BF16, f"probe: {gain:.2f}x faster than fp32"
    return FP32, f"probe: bf16 only {gain:.2f}x as fast"
