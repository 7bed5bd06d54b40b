"""Shannon's guessing game, scored: a person and the model guess the next character of the same text.

Shannon (1951, "Prediction and Entropy of Printed English") had people guess each next letter until
right and counted the guesses. If q_i is the share of characters that took i guesses, the text's
entropy lies between two bounds in bits per character:

    lower = sum_i i * (q_i - q_{i+1}) * log2(i)        upper = sum_i -q_i * log2(q_i)

The upper bound holds because the guess counts, read with the guesser's ranking, give back the text:
it cannot hold more information than they do. The model's rank of the true character (1 = its top
choice) is its guess count in the same game, so the same bounds apply to it, on the same characters;
its probability gives its real cost, -log2 p.

A visitor may give up. A give-up counts as needing every guess the vocabulary allows (vocab_size, its
own bucket for the bounds, though a visitor who needed exactly vocab_size shares it) and as
vocab_size guesses in the mean.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Guess:
    guesses: int | None   # guesses the visitor needed, 1 = right first time; None = gave up
    model_rank: int       # the true character's place in the model's ranking, 1 = its top choice
    model_prob: float     # the model's probability of the true character


def model_rank(probs: np.ndarray, true_id: int) -> int:
    """Where true_id stands when the model guesses likeliest first: 1 + how many are strictly likelier
    (a tie goes in the model's favour)."""
    probs = np.asarray(probs, dtype=np.float64)
    return 1 + int(np.count_nonzero(probs > probs[true_id]))


def shannon_bounds(guess_counts) -> tuple[float, float]:
    """(lower, upper) bits per character from the guess count of each character (each >= 1).

    The upper bound is the entropy of the counts' distribution: it depends on how often each count occurs,
    not on the counts themselves, so [7, 7] and [4, 4] both give 0 bits, and [7, 1] the same 1 bit as [4, 1]."""
    counts = np.asarray(guess_counts, dtype=np.int64)
    if counts.size == 0:
        return math.nan, math.nan
    q = np.bincount(counts)[1:] / counts.size          # q[i - 1]: share that needed i guesses
    used = q[q > 0]
    upper = float(-(used * np.log2(used)).sum()) + 0.0   # + 0.0: one count alone gives 0, not -0.0
    i = np.arange(1, len(q) + 1)
    lower = float((i * (q - np.append(q[1:], 0.0)) * np.log2(i)).sum())
    return lower, upper


class GuessScore:
    """One game's record: add() a Guess per character; the properties score it (nan before any)."""

    def __init__(self, vocab_size: int, records: list[Guess] | None = None):
        if isinstance(vocab_size, bool) or not isinstance(vocab_size, numbers.Integral) or vocab_size < 1:
            raise ValueError(f"vocab_size must be a whole number of at least 1; got {vocab_size!r}")
        self.vocab_size = int(vocab_size)
        self.records: list[Guess] = []
        for record in records or []:
            self.add(record.guesses, record.model_rank, record.model_prob)

    def add(self, guesses: int | None, model_rank: int, model_prob: float) -> Guess:
        """Record one character: the visitor's guess count (None = gave up), the model's rank and probability."""
        if guesses is not None:
            self._check_count("guesses", guesses)
        self._check_count("model_rank", model_rank)
        if isinstance(model_prob, bool) or not isinstance(model_prob, numbers.Real) or not 0 < model_prob <= 1:
            raise ValueError(f"model_prob must be a probability above 0 and at most 1; got {model_prob!r}")
        record = Guess(None if guesses is None else int(guesses), int(model_rank), float(model_prob))
        self.records.append(record)
        return record

    @property
    def count(self) -> int:
        return len(self.records)

    @property
    def gave_up(self) -> int:
        return sum(record.guesses is None for record in self.records)

    @property
    def visitor_guesses(self) -> list[int]:
        """Guesses per character, a give-up counted as vocab_size."""
        return [self.vocab_size if r.guesses is None else r.guesses for r in self.records]

    @property
    def model_ranks(self) -> list[int]:
        return [record.model_rank for record in self.records]

    @property
    def visitor_bits(self) -> float:
        """Shannon's upper bound on the entropy, bits/char, from the visitor's guess counts."""
        return shannon_bounds(self.visitor_guesses)[1]

    @property
    def visitor_lower_bits(self) -> float:
        return shannon_bounds(self.visitor_guesses)[0]

    @property
    def model_rank_bits(self) -> float:
        """The same upper bound from the model's ranks on the same characters."""
        return shannon_bounds(self.model_ranks)[1]

    @property
    def model_rank_lower_bits(self) -> float:
        return shannon_bounds(self.model_ranks)[0]

    @property
    def model_bits(self) -> float:
        """The model's mean surprise, -log2 p, bits/char."""
        if not self.records:
            return math.nan
        return float(-np.mean(np.log2([record.model_prob for record in self.records]))) + 0.0   # never -0.0

    @property
    def visitor_mean_guesses(self) -> float:
        return float(np.mean(self.visitor_guesses)) if self.records else math.nan

    @property
    def model_mean_guesses(self) -> float:
        return float(np.mean(self.model_ranks)) if self.records else math.nan

    def to_dict(self) -> dict:
        """Plain lists and numbers (JSON-ready), for session state; from_dict reads it back."""
        return {"vocab_size": self.vocab_size,
                "guesses": [record.guesses for record in self.records],
                "model_ranks": self.model_ranks,
                "model_probs": [record.model_prob for record in self.records]}

    @classmethod
    def from_dict(cls, data: dict) -> GuessScore:
        try:
            rows = list(zip(data["guesses"], data["model_ranks"], data["model_probs"], strict=True))
            vocab_size = data["vocab_size"]
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"not a saved guessing game: {error}") from None
        return cls(vocab_size, [Guess(*row) for row in rows])

    def _check_count(self, label: str, value) -> None:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 1 <= value <= self.vocab_size:
            raise ValueError(f"{label} must be a whole number from 1 to {self.vocab_size}; got {value!r}")
