"""Overfitting read from a run's evaluations: the gap between validation and training loss, and where validation turned.

A run is evaluated now and then: (step, smoothed training loss, validation loss), in nats/char. Validation
"turned" at its best evaluation (the lowest loss, the earliest of equals: the one whose weights charlm keeps)
once the latest evaluation has risen above that best by more than noise. Noise here is what a validation loss
moves by between neighbouring evaluations of a run that is still improving slowly: the shipped demo model's
last evaluations differ by 0.1 to 0.5 %. So a rise counts from NOISE_SHARE (1 %) of the best loss, and never
less than NOISE_FLOOR nats (a loss near 0, on a text learned by heart, would otherwise turn at every wiggle).
The latest evaluation decides, not any later one: a curve that rose and came back within noise of its best has
levelled off, it has not turned. Plain Python: the Train page and Learn's Training over time both read it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

NOISE_SHARE = 0.01    # a rise of validation loss under 1 % of its best is noise, not a turn
NOISE_FLOOR = 0.001   # nats/char: the least rise that counts, whatever the best loss


@dataclass(frozen=True)
class Reading:
    """What a run's evaluations say about overfitting."""
    gaps: list[tuple[int, float]]   # (step, val - train nats/char) at each evaluation with both losses
    best: tuple[int, float] | None  # (step, val nats/char) of the lowest validation loss, earliest of equals
    turn: int | None                # the step where validation turned (the best), None while it has not
    kind: str                       # "too few", "learning", "levelled" or "overfitting"
    verdict: str                    # one line a teacher reads out

    @property
    def latest_gap(self) -> float | None:
        """val - train nats/char at the latest evaluation that has both; None when none has."""
        return self.gaps[-1][1] if self.gaps else None


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def best(losses: list[tuple[int, float | None, float | None]]) -> tuple[int, float] | None:
    """(step, val nats/char) of the lowest validation loss, the earliest of equals: the evaluation whose weights
    the model file keeps (rewritten at every evaluation, it holds the best one's). None before the first."""
    evals = [(step, val) for step, _, val in losses if _number(val)]
    return min(evals, key=lambda pair: pair[1]) if evals else None


def read(losses: list[tuple[int, float | None, float | None]], kept: int | None = None) -> Reading:
    """Read (step, train nats/char or None, val nats/char or None) rows, oldest first; rows without a validation
    loss (training steps between evaluations) are passed over. kept: the step whose weights the model holds, when
    its file names one; the best evaluation's otherwise."""
    evals = [(step, train if _number(train) else None, val) for step, train, val in losses if _number(val)]
    gaps = [(step, val - train) for step, train, val in evals if train is not None]
    if len(evals) < 2:
        return Reading(gaps, None, None, "too few", "Not enough evaluations yet: the verdict on overfitting "
                       "needs at least two.")
    step, best_val = lowest = best(losses)
    best_at = next(i for i, (at, _, val) in enumerate(evals) if (at, val) == lowest)
    best_train = evals[best_at][1]
    _, last_train, last_val = evals[-1]
    if best_at == len(evals) - 1:
        return Reading(gaps, lowest, None, "learning", "Still learning: validation falls with training.")
    if last_val - best_val <= max(NOISE_SHARE * best_val, NOISE_FLOOR):
        return Reading(gaps, lowest, None, "levelled",
                       f"Levelled off: validation has stayed within noise (1 %) of its best, at step {step:,}, "
                       "since then; more training of this kind adds little.")
    weights = f" The weights kept are from step {(kept if kept is not None else step):,}."
    if best_train is not None and last_train is not None and last_train < best_train:
        verdict = (f"Validation loss has been rising since step {step:,} while training loss keeps falling: the "
                   f"model is memorising its training text (overfitting).{weights}")
    else:
        verdict = (f"Validation loss has been rising since step {step:,}, and training loss has not fallen "
                   f"either since then: more training of this kind does not help.{weights}")
    return Reading(gaps, lowest, step, "overfitting", verdict)
