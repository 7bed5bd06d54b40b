"""What a visitor's click on a Learn page will cost, known before it runs, and how its long loops stop midway.

A page asks for work that grows with the prime, the characters to write, the beam's width, the text to score,
and the model's size; a window model (the 2017 design) multiplies it all by up to `window`, as it re-reads
its window for every character. A page estimates the work here from the model's shape and the sizes asked,
and shrinks or refuses what would take more than BUDGET_S of one core, before anything heavy starts.

The estimate counts what arrays.ArrayLSTM does: one matrix product per layer per character and row (the
embedding is folded into layer 0's table, so its width costs nothing per step), a head per prediction, and
numpy's fixed cost per call. The rates are this project's CPU's, measured by bench/learn_bound.py (which
prints estimate against measurement); a faster machine does the same work sooner, so the bound errs safe.

Torch-free and numpy-free: the app imports it on every Learn page, and the estimate is arithmetic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

BUDGET_S = 6.0          # seconds of one core a click may ask for: the 2017 model at the lab's defaults (~5), the demo at its caps (~2.5)
RATE_ONE = 6e9          # multiply-adds a second at batch 1 (a memory-bound matrix-vector product)
RATE_FEW = 4e9          # for a few rows (a beam of 5: numpy's small matrix products fare worst)
RATE_MANY = 15e9        # multiply-adds a second for many rows at once (a beam of 16, windows re-read together)
MANY_ROWS = 16          # rows from which the faster rate holds
CALL_S = 15e-6          # numpy's fixed cost of one layer's step, or of a head (a handful of calls)
BEAM_STEP_S = 300e-6    # a beam step's bookkeeping: log-probabilities, the best of beams x vocab, the states kept
REREAD_ROWS = 256       # arrays._REREAD_ROWS: windows re-read together when scoring
# neurons.states reads a long text of a carried model as rows: its _EXACT_CHARS, _WARM_UP, _ROWS and _ROW_CHARS.
STATES_EXACT, STATES_WARM_UP, STATES_ROWS, STATES_ROW_CHARS = 4096, 256, 32, 256

StopCheck = Callable[[], bool]   # -> True when the work should stop (its visitor left, or the page moved on)


class Stopped(Exception):
    """A long loop was told to stop: nothing it computed should be kept."""


def check(should_stop: StopCheck | None) -> None:
    """Raise Stopped when should_stop says so; the long loops call this every few characters."""
    if should_stop is not None and should_stop():
        raise Stopped("stopped: the page that asked for this is gone or asked for something else")


@dataclass(frozen=True)
class Shape:
    """What the cost depends on: the LSTM's size and whether it re-reads a window."""
    layers: int
    hidden: int
    vocab: int
    window: int | None = None

    @classmethod
    def of(cls, engine) -> "Shape":
        """An engine's shape: arrays.ArrayLSTM, or decoding.TorchEngine (its CharLSTM's config)."""
        if hasattr(engine, "w_hh"):
            return cls(len(engine.w_hh), engine.hidden_size, engine.vocab_size, engine.window)
        config = engine.model.config
        return cls(config.num_layers, config.hidden_size, config.vocab_size, engine.window)

    def describe(self) -> str:
        """'a 512-character window, 3 × 512' or '1 × 384, carrying its state': the model, for a message."""
        size = f"{self.layers} × {self.hidden}"
        return f"a {self.window}-character window, {size}" if self.window else f"{size}, carrying its state"

    def step_s(self, rows: int = 1) -> float:
        """Seconds for one character through every layer, for `rows` rows at once."""
        macs = rows * 4 * self.hidden * self.hidden * (2 * self.layers - 1)
        return self.layers * CALL_S + macs / _rate(rows)

    def head_s(self, rows: int = 1) -> float:
        """Seconds for the predictions (logits) of `rows` rows."""
        return CALL_S + rows * self.hidden * self.vocab / _rate(rows)

    def reads(self, before: int, count: int) -> int:
        """Characters stepped to predict `count` characters in turn, the first after `before` characters
        (at least 1): a carried model steps each once; a window model re-reads up to `window` for each."""
        if not self.window:
            return count
        return _capped_sum(max(1, before), max(1, before) + count - 1, self.window)


def _rate(rows: int) -> float:
    return RATE_ONE if rows == 1 else RATE_MANY if rows >= MANY_ROWS else RATE_FEW


def _capped_sum(first: int, last: int, cap: int) -> int:
    """sum(min(cap, k) for k in range(first, last + 1)), in constant time."""
    if last < first:
        return 0
    low_end = min(last, cap)
    total = (first + low_end) * (low_end - first + 1) // 2 if first <= low_end else 0
    return total + cap * max(0, last - max(first - 1, cap))


def _read_chars(shape: Shape, prime: int) -> int:
    """Characters read for a prime (a new line when it is empty; a window model reads its last `window`)."""
    return min(max(1, prime), shape.window or max(1, prime))


def read_s(shape: Shape, prime: int) -> float:
    """Reading a prime of `prime` characters and predicting the next one."""
    return _read_chars(shape, prime) * shape.step_s() + shape.head_s()


def write_s(shape: Shape, prime: int, length: int, rows: int = 1) -> float:
    """sampling.write: read the prime, then `length` characters in each of `rows` rows (a beam's rows too)."""
    if length <= 0:
        return read_s(shape, prime)
    steps = shape.reads(_read_chars(shape, prime) + 1, length - 1)
    return read_s(shape, prime) + steps * shape.step_s(rows) + length * shape.head_s(rows)


def beam_s(shape: Shape, prime: int, length: int, width: int) -> float:
    """decoding.beam_search: read the prime, then `length` steps of `width` beams, stepped together."""
    return write_s(shape, prime, length, rows=width) + length * BEAM_STEP_S


def score_s(shape: Shape, chars: int, scored: int | None = None) -> float:
    """scoring.score_text over a text of `chars` characters, the last `scored` of them scored (all but the
    first when None), each from everything before it."""
    scored = chars - 1 if scored is None else min(scored, chars - 1)
    if scored <= 0:
        return 0.0
    if not shape.window:
        return chars * (shape.step_s() + shape.head_s())
    head = min(shape.window, chars)              # the text's start, read once as a stream
    full = min(scored, chars - head)             # each re-read from zero, REREAD_ROWS windows at a time
    chunks = math.ceil(full / REREAD_ROWS)
    rows = min(full, REREAD_ROWS)
    return head * (shape.step_s() + shape.head_s()) + chunks * (shape.window * shape.step_s(rows) + shape.head_s(rows))


def states_s(shape: Shape, chars: int) -> float:
    """neurons.states over a text of `chars` characters (ranking units, colouring a text by one): a window
    model reads it as scoring does; a carried one steps it as one stream, or a long text as rows together."""
    if shape.window:
        return score_s(shape, chars)
    if chars <= STATES_EXACT:
        return chars * (shape.step_s() + shape.head_s())
    rows = max(1, min(STATES_ROWS, (chars - STATES_WARM_UP) // STATES_ROW_CHARS))
    steps = STATES_WARM_UP + math.ceil((chars - STATES_WARM_UP) / rows)
    return steps * (shape.step_s(rows) + shape.head_s(rows))


def largest_within(cost: Callable[[int], float], most: int, budget: float = BUDGET_S) -> int:
    """The largest n in [0, most] whose cost(n) fits the budget (cost grows with n); 0 when none does."""
    if cost(most) <= budget:
        return most
    low, high = 0, most          # cost(low) fits or low is 0; cost(high) does not
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if cost(middle) <= budget else (low, middle)
    return low if cost(low) <= budget else 0


def influence_s(shape: Shape, before: int, back: int) -> float:
    """influence.influence: what each of the last `back` of `before` characters read meant to one prediction.

    A carried model reads the characters before those once, then steps a batch that grows by one variant
    per character (1, 2, ... `back` rows); a window model re-reads its window once as written and once for
    each variant within it, together."""
    measured = max(0, min(back, before))
    if shape.window:
        rows = min(measured, shape.window)
        once = shape.window * shape.step_s() + shape.head_s()
        return once + (shape.window * shape.step_s(rows) + shape.head_s(rows) if rows else 0.0)
    lead = (before - measured) * (shape.step_s() + shape.head_s())
    return lead + sum(shape.step_s(rows) + shape.head_s(rows) for rows in range(1, measured + 2))
