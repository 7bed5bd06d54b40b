"""What the trainer reports: a Progress event at each step, evaluation and checkpoint, and the TrainResult."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from charlm.train.state import RunState
from charlm.units import LN2


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

    @classmethod
    def of(cls, kind: str, state: RunState, *, elapsed_s: float, fraction: float, train_chars: int,
           **extra) -> "Progress":
        """An event of this kind with the run's figures as `state` holds them, `elapsed_s` seconds in and
        `fraction` of the budget done (1 or more: spent)."""
        fraction = min(fraction, 1.0)
        eta = None
        if 0 < fraction < 1 and state.step > 0:   # the rest of the budget at this session's pace
            eta = (elapsed_s - state.elapsed_before) * (1 - fraction) / max(fraction - state.fraction_before, 1e-9)
        val = state.latest_val
        return cls(kind=kind, step=state.step, epoch=state.chars_seen / train_chars, chars_seen=state.chars_seen,
                   train_loss=state.smoothed, val_loss=val, val_bits=val / LN2 if val is not None else None,
                   chars_per_sec=state.rate_chars / state.rate_time if state.rate_time > 0 else 0.0,
                   elapsed_s=elapsed_s, eta_s=eta, lr=state.lr, fraction=fraction, **extra)


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

    @classmethod
    def of(cls, state: RunState, best_path: Path | None, last_path: Path | None) -> "TrainResult":
        """How the run ended, as `state` holds it, with the files it wrote."""
        return cls(best_val_loss=state.best_val, final_val_loss=state.latest_val, history=state.history,
                   best_path=best_path, last_path=last_path, stopped=state.stopped, steps=state.step,
                   chars_seen=state.chars_seen, elapsed_s=state.elapsed_s, message=state.message)
