"""Sampling on numpy arrays: each strategy's filter, the draw, and the loop that writes; no torch here.

Everything runs in numpy for two reasons. At batch 1 a torch call costs 5-10 microseconds of
dispatch on a small CPU, and choosing a character takes a dozen calls (BENCHMARKS.md). And the app's
first page view can write with the shipped model before torch, two seconds to import, has loaded.
Randomness comes from an explicit numpy Generator, so a seed gives the same text on every path.
"""

from __future__ import annotations

import math
import numbers
import secrets
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from charlm.errors import UserError
from charlm.workload import StopCheck, check

def fresh_seed() -> int:
    """A seed for a visitor who gave none, from the operating system: never from the process's shared generators,
    which a training run or another visitor's code may have seeded (two visitors would then draw the same)."""
    return secrets.randbelow(2**31)


STRATEGIES = ("greedy", "sample", "top-k", "top-p", "min-p", "beam")


@dataclass(frozen=True)
class DecodeConfig:
    strategy: str = "top-p"    # one of STRATEGIES
    temperature: float = 0.8   # 0 means greedy whatever the strategy
    top_k: int = 20            # top-k: keep the k most likely characters
    top_p: float = 0.9         # top-p: keep the smallest set holding this much probability
    min_p: float = 0.05        # min-p: keep characters at least this fraction of the best one's probability
    beam_width: int = 5        # beam: hypotheses kept

    def __post_init__(self):
        if self.strategy not in STRATEGIES:
            raise UserError(f"unknown strategy {self.strategy!r}; choose one of: {', '.join(STRATEGIES)}")
        for label, value in (("temperature", self.temperature), ("top-p", self.top_p), ("min-p", self.min_p)):
            _check_finite(label, value)
        for label, value in (("top-k", self.top_k), ("beam width", self.beam_width)):
            _check_whole(label, value)
        if self.temperature < 0:
            raise UserError("temperature must be 0 or more")
        if self.top_k < 1:
            raise UserError("top-k must be at least 1")
        if not 0 < self.top_p <= 1:
            raise UserError("top-p must be in (0, 1]")
        if not 0 <= self.min_p <= 1:
            raise UserError("min-p must be in [0, 1]")
        if self.beam_width < 1:
            raise UserError("beam width must be at least 1")

    @property
    def greedy(self) -> bool:
        """True when every step takes the most likely character (greedy, beam, or temperature 0)."""
        return self.strategy in ("greedy", "beam") or self.temperature == 0


def _check_finite(label: str, value) -> None:
    """A real, finite number: nan slips through a check like `value < 0` (its comparisons are all False)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise UserError(f"{label} must be a finite number; got {value!r}")


def _check_whole(label: str, value) -> None:
    """A whole number; True is an int to Python but not a count to a person."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise UserError(f"{label} must be a whole number; got {value!r}")


# Each filter takes logits (batch, vocab) and returns them with the excluded characters at -inf.

def top_k_filter(logits: np.ndarray, k: int) -> np.ndarray:
    """Keep the k most likely characters (and any tied with the k-th)."""
    vocab = logits.shape[-1]
    k = min(k, vocab)
    kth = np.partition(logits, vocab - k, axis=-1)[:, vocab - k:vocab - k + 1]
    return np.where(logits < kth, -np.inf, logits)


def top_p_filter(logits: np.ndarray, p: float) -> np.ndarray:
    """Keep the fewest most likely characters whose probabilities sum to p (the best one always stays)."""
    ranked = np.sort(logits, axis=-1)[:, ::-1]                             # best first
    probs = np.exp(ranked - ranked[:, :1])                                  # unnormalised, best = 1
    mass = np.cumsum(probs, axis=-1)
    # Drop a character when the mass before it already reaches p of the total.
    keep = mass - probs < p * mass[:, -1:]
    lowest_kept = np.where(keep, ranked, np.inf).min(axis=-1, keepdims=True)
    return np.where(logits < lowest_kept, -np.inf, logits)


def min_p_filter(logits: np.ndarray, min_p: float) -> np.ndarray:
    """Keep characters at least min_p times as likely as the best one."""
    if min_p == 0:
        return logits
    floor = logits.max(axis=-1, keepdims=True) + math.log(min_p)
    return np.where(logits < floor, -np.inf, logits)


def filtered(logits: np.ndarray, cfg: DecodeConfig) -> np.ndarray:
    """(batch, vocab) raw logits -> the logits sampling draws from: temperature, then the strategy's filter."""
    if cfg.greedy:
        # One character per step is the most likely one: all the mass sits there.
        return np.where(logits < logits.max(axis=-1, keepdims=True), -np.inf, logits)
    logits = logits / cfg.temperature
    if cfg.strategy == "top-k":
        return top_k_filter(logits, cfg.top_k)
    if cfg.strategy == "top-p":
        return top_p_filter(logits, cfg.top_p)
    if cfg.strategy == "min-p":
        return min_p_filter(logits, cfg.min_p)
    return logits


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """(batch, vocab) logits -> log-probabilities, in float64 (beam scores and sums of many characters)."""
    shifted = logits.astype(np.float64) - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def draw(logits: np.ndarray, u: np.ndarray) -> np.ndarray:
    """(batch, vocab) logits and (batch, 1) uniforms in [0, 1) -> (batch,) ids drawn from softmax(logits).

    Inverts the cumulative sum: the id is how many cumulative masses lie at or below u x total.
    A character filtered to -inf has zero width and is never drawn; since u < 1 and the sums are in
    float64, u x total stays below the total, so the draw never runs past the last allowed character.
    """
    weights = np.exp((logits - logits.max(axis=-1, keepdims=True)).astype(np.float64))
    cdf = np.cumsum(weights, axis=-1)
    return (cdf <= u * cdf[:, -1:]).sum(axis=-1)


def pick(logits: np.ndarray, cfg: DecodeConfig, u: np.ndarray | None) -> np.ndarray:
    """(batch, vocab) raw logits and (batch, 1) uniforms -> (batch,) ids: the strategy's choice.

    Greedy, beam and temperature 0 take the argmax and need no uniforms.
    """
    if cfg.greedy:
        return logits.argmax(-1)
    return draw(filtered(logits, cfg), u)


def uniforms(rng: np.random.Generator, rows: int, block: int = 256) -> Iterator[np.ndarray]:
    """Yield (rows, 1) uniforms forever, drawn `block` steps at a time.

    They come out in the same order as one rng.random((rows, 1)) per step, so a whole text and a
    step-by-step session with the same seed write the same characters.
    """
    while True:
        yield from rng.random((block, rows, 1))


Step = Callable[[np.ndarray, object], tuple[np.ndarray, object]]   # (ids (batch,), state) -> (logits, state)
OnIds = Callable[[list[list[int]]], bool | None]   # the ids so far, one list per row -> False to stop


def write(engine, prime_ids: list[int], length: int, cfg: DecodeConfig, rng: np.random.Generator,
          batch: int = 1, on_ids: OnIds | None = None, should_stop: StopCheck | None = None) -> list[list[int]]:
    """Read the prime (at least one id) into `batch` rows and write `length` characters in each.

    `engine`: arrays.ArrayLSTM, or decoding.TorchEngine (its read and step are all this uses). Every whole
    text is written here (Write, the CLI, training's samples, the app's first sample), so a seed gives the
    same text on every path. should_stop: as write_ids.
    """
    logits, state = engine.read(prime_ids, batch)
    return write_ids(engine.step, logits, state, length, cfg, rng, on_ids, should_stop=should_stop)


def write_ids(step: Step, logits: np.ndarray, state, length: int, cfg: DecodeConfig, rng: np.random.Generator,
              on_ids: OnIds | None = None, every: int = 32,
              should_stop: StopCheck | None = None) -> list[list[int]]:
    """The writing loop: pick a character per row, feed it back, repeat `length` times.

    `logits` (batch, vocab) are for the first character. on_ids(ids_so_far) is called every `every`
    characters and at the end; returning False stops early. -> one list of ids per row.
    should_stop() is asked before every character (a window model's step re-reads its whole window):
    True raises workload.Stopped, for work whose visitor has gone, where a partial text is of no use.
    """
    us = None if cfg.greedy else uniforms(rng, logits.shape[0])
    out = [[] for _ in range(logits.shape[0])]
    for i in range(length):
        check(should_stop)
        chosen = pick(logits, cfg, None if us is None else next(us))     # (batch,)
        for row, c in zip(out, chosen.tolist()):
            row.append(c)
        if i + 1 < length:
            logits, state = step(chosen, state)
        if on_ids is not None and ((i + 1) % every == 0 or i + 1 == length):
            if on_ids(out) is False:
                break
    return out
