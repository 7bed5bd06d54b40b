"""Scoring a text character by character: the model's surprise at each one, what it expected instead,
and how each decoding setting reshapes one prediction. numpy only (the Learn pages need no torch).

Surprise is -ln p(character | the text before it), in nats; its mean over a text is the cross-entropy
that charlm.train.evaluate reports. A model with carried state (every preset but the 2017 one) reads the text
from a zero state, as evaluate reads one stream; a window model predicts each character from the
`window` characters before it (fewer at the start of the text), as it does when it writes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from charlm.engine.arrays import ArrayLSTM
from charlm.text.corpus import Vocab
from charlm.engine.sampling import DecodeConfig, filtered, log_softmax, min_p_filter, top_k_filter, top_p_filter
from charlm.units import LN2
from charlm.errors import UserError
from charlm.workload import StopCheck, check

_ROWS_AT_ONCE = 1 << 16   # positions whose float64 log-probabilities are held at once


@dataclass(frozen=True)
class Scored:
    text: str                            # the whole text read
    start: int                           # first scored position (>= 1: the first character has nothing before it)
    surprise: np.ndarray                 # (len(text) - start,) float64 nats, -ln p(text[i] | text[:i]); NaN: not scored
    top: list[list[tuple[str, float]]]   # per scored position: the likeliest characters there, probability, best first

    @property
    def scored_count(self) -> int:
        """Characters scored: those the model knows, with something read before them."""
        return int(np.count_nonzero(~np.isnan(self.surprise)))

    @property
    def mean_nats(self) -> float:
        """Mean surprise over the scored characters (nats/char); NaN when none was scored."""
        return float(np.nanmean(self.surprise)) if self.scored_count else float("nan")

    @property
    def mean_bits(self) -> float:
        return self.mean_nats / LN2


def score_text(engine: ArrayLSTM, chars: list[str], text: str, start: int = 1, top: int = 3,
               should_stop: StopCheck | None = None) -> Scored:
    """The model's surprise at each character of text[start:], given everything before it, and its `top` guesses.

    `chars`: the model's vocabulary, index -> character. A character outside it is read as Vocab.read()
    says, and is not scored (its surprise is NaN, left out of the means); so is a character with nothing
    read before it. The text before `start` is read as context only. should_stop: as predictions.
    """
    if len(chars) != engine.vocab_size:
        raise ValueError(f"the vocabulary has {len(chars)} characters but the model predicts {engine.vocab_size}")
    if not 1 <= start <= len(text):
        raise UserError(f"the first scored position must lie in [1, {len(text)}] for this text; got {start}")
    if top < 0:
        raise UserError(f"top must be 0 or more; got {top}")
    ids, positions = Vocab.from_list(chars).read(text)
    # The prediction for text[i] is the one made after the last character read before i (-1: none yet).
    last_read = np.searchsorted(positions, np.arange(start, len(text))) - 1          # (scored,)
    predicted = last_read >= 0
    logits = predictions(engine, ids, np.unique(last_read[predicted]), should_stop)
    index = {char: i for i, char in enumerate(chars)}
    targets = np.array([index.get(char, -1) for char in text[start:]], dtype=np.int64)
    surprise = np.full(len(targets), np.nan)
    guesses: list[list[tuple[str, float]]] = []
    for begin in range(0, len(targets), _ROWS_AT_ONCE):      # float64 log-probabilities for a chunk at a time
        rows = slice(begin, begin + _ROWS_AT_ONCE)
        log_probs = log_softmax(logits[np.maximum(last_read[rows], 0)])           # (chunk, vocab)
        picked = np.take_along_axis(log_probs, np.maximum(targets[rows], 0)[:, None], axis=1)[:, 0]
        surprise[rows] = np.where(predicted[rows] & (targets[rows] >= 0), -picked, np.nan)
        best = np.argsort(-log_probs, axis=1, kind="stable")[:, :top]
        probs = np.exp(np.take_along_axis(log_probs, best, axis=1))
        guesses += [[(chars[j], p) for j, p in zip(best[row].tolist(), probs[row].tolist())] if known else []
                    for row, known in enumerate(predicted[rows])]
    return Scored(text=text, start=start, surprise=surprise, top=guesses)


def predictions(engine: ArrayLSTM, ids: np.ndarray, after: np.ndarray,
                should_stop: StopCheck | None = None) -> np.ndarray:
    """Logits (len(ids), vocab) for the character after each id; the rows named in `after` (sorted) are filled.

    A carried model reads ids[:after[-1] + 1] once, from a zero state. A window model predicts after
    ids[j] from the window ending there: the windows still shorter than `window` are the text's start,
    read once as a stream; the full ones are re-read from zero, many at a time (ArrayLSTM.reread).
    should_stop() is asked every few dozen characters (every 16 steps of a re-read); True raises workload.Stopped.
    """
    logits = np.zeros((max(len(ids), 1), engine.vocab_size), dtype=np.float32)   # a row even when nothing is read
    if len(after) == 0:
        return logits
    end = int(after[-1]) + 1
    if not engine.window:
        state = engine.init_state(1)
        for j in range(end):                      # step by step: a trace would keep every state too
            if j % 32 == 0:
                check(should_stop)
            logits[j], state = engine.step(ids[j:j + 1], state)
        return logits
    head = min(engine.window, end)           # windows that begin at the text's first character
    logits[:head] = engine.trace(ids[:head], should_stop=should_stop)[0]
    full = after[after >= head]
    if len(full):
        windows = np.lib.stride_tricks.sliding_window_view(ids, engine.window)      # row j - window + 1: ends at j
        logits[full] = engine.reread(windows[full - engine.window + 1], should_stop=should_stop)[0]
    return logits


def distributions(logits: np.ndarray, temperature: float, top_k: int, top_p: float,
                  min_p: float) -> list[tuple[str, np.ndarray]]:
    """One prediction (vocab,) as the model gives it and as each decoding setting leaves it; each sums to 1.

    -> [("model", p), ("temperature T", p), ("top-k K", p), ("top-p P", p), ("min-p M", p)]: the filters
    apply to the tempered logits, as sampling does (temperature 0 leaves only the likeliest character).
    """
    DecodeConfig("sample", temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p)   # checks the values
    row = np.asarray(logits, dtype=np.float64).reshape(1, -1)
    tempered = filtered(row, DecodeConfig("sample", temperature=temperature))
    probs = lambda x: np.exp(log_softmax(x))[0]
    return [
        ("model", probs(row)),
        (f"temperature {temperature:g}", probs(tempered)),
        (f"top-k {top_k}", probs(top_k_filter(tempered, top_k))),
        (f"top-p {top_p:g}", probs(top_p_filter(tempered, top_p))),
        (f"min-p {min_p:g}", probs(min_p_filter(tempered, min_p))),
    ]
