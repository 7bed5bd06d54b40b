"""What the trainer reports: a Progress event at each step, evaluation and checkpoint, and the TrainResult."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class Progress:
    kind: str                      # "step", "eval", "checkpoint", "warning", "done", "stopped"
    step: int
    epoch: float                   # passes over the training text so far
    chars_seen: int                # training targets predicted so far
    train_loss: float | None       # smoothed, nats/char
    val_loss: float | None         # latest evaluation, nats/char
    val_bits: float | None         # the same in bits/char
    chars_per_sec: float
    elapsed_s: float
    eta_s: float | None
    lr: float
    fraction: float                # of the budget, 0..1
    sample: str | None = None      # at evaluations
    message: str | None = None
    path: str | None = None        # the checkpoint written, for "checkpoint"
    arithmetic: str = "fp32"       # what the steps compute in: "fp32" or "bf16 autocast" (charlm.train.precision)
    arithmetic_why: str = ""       # why it was chosen, for people ("probe: 1.45x faster than fp32", ...)


@dataclass
class TrainResult:
    best_val_loss: float | None
    final_val_loss: float | None
    history: list[dict]
    best_path: Path | None
    last_path: Path | None
    stopped: bool
    steps: int
    chars_seen: int
    elapsed_s: float
    message: str | None = None
