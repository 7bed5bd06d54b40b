"""Single units of the LSTM: what each holds over a text, which ones follow a feature of the text (quotes,
brackets, the position in a line), and writing with chosen units held. numpy only.

Alignment, everywhere here: the value at character t is the state after the model has read t. A
feature at t says what a reader knows having read t (an opening quote mark is inside the quotation;
its closing mark is not), so a unit that tracks the feature can do so from what it has read.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from charlm.engine.arrays import ArrayLSTM, Clamp
from charlm.engine.sampling import DecodeConfig, write_ids
from charlm.text.corpus import Vocab
from charlm.workload import StopCheck

FEATURES: dict[str, str] = {
    "inside quotes": 'inside a quotation: from an opening double quote (" or “) up to, not including, its closing '
                     'one (" or ”); each straight " opens or closes',
    "inside brackets": "inside (), [] or {}, nested or not: from an opening bracket up to, not including, the "
                       "bracket that closes the last one open",
    "position in line": "characters read since the last line break (0 on the line break itself)",
    "start of a word": "a letter right after something that is not a letter (a space, a quote, the text's start)",
    "inside a number": "a digit (0-9, or a digit of another script)",
}
KINDS = ("h", "c", "both")   # a unit's output h, its cell c, or both ranked together

_EXACT_CHARS = 4096   # a text up to this long is read as one stream, exactly as the model reads it
# Longer ones are cut into rows, each first reading this many characters before its part. 128 was enough for
# the demo model before weight drop; the one trained with it remembers further back (a row's states were off by
# up to 0.04 after 128, by 3e-6 after 256).
_WARM_UP = 256
_ROWS = 32            # rows at most (one matrix product per step serves them all)
_ROW_CHARS = 256      # fewest characters a row keeps


def text_features(text: str) -> dict[str, np.ndarray]:
    """Each feature of FEATURES as one float per character, the value once that character has been read."""
    n = len(text)
    quotes, brackets, column = np.zeros(n), np.zeros(n), np.zeros(n)
    word_starts, digits = np.zeros(n), np.zeros(n)
    in_quote, depth, col, after_letter = False, 0, 0, False
    for t, char in enumerate(text):
        if char == '"':
            in_quote = not in_quote
        elif char == "“":
            in_quote = True
        elif char == "”":
            in_quote = False
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth = max(0, depth - 1)   # a stray closer does not open anything
        col = 0 if char == "\n" else col + 1
        letter = char.isalpha()
        quotes[t], brackets[t], column[t] = in_quote, depth > 0, col
        word_starts[t], digits[t] = letter and not after_letter, char.isdecimal()
        after_letter = letter
    return {"inside quotes": quotes, "inside brackets": brackets, "position in line": column,
            "start of a word": word_starts, "inside a number": digits}


def activations(engine: ArrayLSTM, ids, kind: str = "h", should_stop: StopCheck | None = None) -> np.ndarray:
    """Every unit's h (its output) or c (its cell) after each character: (T, layers, hidden) float32.

    A carried model reads a text of up to 4,096 characters as one stream from a zero state (exact).
    A longer one is cut into up to 32 rows stepped together, one matrix product per step for all of
    them (the shipped model: 20,000 characters in about 0.5 s, against 1 s read whole). Each row first
    reads the 256 characters before its part and drops what it holds for them, so it starts its part
    as the whole text's reader would but for what that reader still remembers from further back (for
    the shipped model on a 9,000-character passage of its text: states within 1e-5 of the whole read's). A window model's state at t is the one it reaches re-reading
    the window that ends at t, as when it predicts the next character: `window` steps per character.
    should_stop() is asked every 16 steps; True raises workload.Stopped (workload.states_s estimates the cost).
    """
    if kind not in ("h", "c"):
        raise ValueError(f"kind must be 'h' (a unit's output) or 'c' (its cell); got {kind!r}")
    h, c = states(engine, ids, should_stop)
    return h if kind == "h" else c


def states(engine: ArrayLSTM, ids, should_stop: StopCheck | None = None) -> tuple[np.ndarray, np.ndarray]:
    """-> h and c, each (T, layers, hidden): activations() for both at once."""
    ids = np.asarray(ids, dtype=np.int64)
    T, L, H = len(ids), len(engine.w_hh), engine.hidden_size
    if T == 0:
        return np.zeros((0, L, H), dtype=np.float32), np.zeros((0, L, H), dtype=np.float32)
    if engine.window:
        return _window_states(engine, ids, should_stop)
    if T <= _EXACT_CHARS:
        _, h, c = engine.trace(ids, should_stop=should_stop)
        return h, c
    rows = max(1, min(_ROWS, (T - _WARM_UP) // _ROW_CHARS))
    kept = -(-(T - _WARM_UP) // rows)                          # characters each row keeps (the first keeps more)
    # Row r reads ids[r * kept : r * kept + _WARM_UP + kept]; the first keeps all of it, the others their last `kept`.
    padded = np.concatenate([ids, np.zeros(_WARM_UP + rows * kept - T, dtype=np.int64)])
    matrix = np.lib.stride_tricks.sliding_window_view(padded, _WARM_UP + kept)[::kept][:rows]
    _, h, c = engine.trace(matrix, should_stop=should_stop)    # (rows, _WARM_UP + kept, layers, hidden)
    joined = lambda x: np.concatenate([x[0], x[1:, _WARM_UP:].reshape(-1, L, H)])[:T]
    return joined(h), joined(c)


def _window_states(engine: ArrayLSTM, ids: np.ndarray,
                   should_stop: StopCheck | None) -> tuple[np.ndarray, np.ndarray]:
    W = engine.window
    # The windows that begin at the text's first character: one stream.
    _, h, c = engine.trace(ids[:W], should_stop=should_stop)
    if len(ids) <= W:
        return h, c
    windows = np.lib.stride_tricks.sliding_window_view(ids, W)[1:]               # row j: the window ending at W + j
    _, state = engine.reread(windows, should_stop=should_stop)
    return (np.concatenate([h, np.stack([h for h, _ in state], axis=1)]),
            np.concatenate([c, np.stack([c for _, c in state], axis=1)]))


@dataclass(frozen=True)
class RankedUnit:
    layer: int
    unit: int
    kind: str            # "h" (the unit's output) or "c" (its cell)
    correlation: float   # Pearson r between its value after each character and the feature there


def rank_units(engine: ArrayLSTM, chars: list[str], text: str, feature: str, kind: str = "h",
               top: int = 10, should_stop: StopCheck | None = None) -> list[RankedUnit]:
    """The `top` units whose value follows `feature` (one of FEATURES) most closely over `text`, by |r|.

    r is Pearson's correlation, over the characters the model reads (see scoring.reading), between a
    unit's value after reading character t and the feature at t. A unit that never moves has r = 0.
    should_stop: as activations.
    """
    if feature not in FEATURES:
        raise ValueError(f"unknown feature {feature!r}; choose one of: {', '.join(FEATURES)}")
    ranked = rank_features(engine, chars, text, kind, top, should_stop, features=(feature,))
    if feature not in ranked:
        raise ValueError(f"'{feature}' does not change over this text, so no unit can follow it; "
                         "give a longer text, or one that has it")
    return ranked[feature]


def rank_features(engine: ArrayLSTM, chars: list[str], text: str, kind: str = "h", top: int = 10,
                  should_stop: StopCheck | None = None,
                  features: tuple[str, ...] = tuple(FEATURES)) -> dict[str, list[RankedUnit]]:
    """rank_units for each of `features` that changes over `text` (one that does not is left out), reading the
    text once for all of them."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
    ids, positions = Vocab.from_list(chars).read(text)
    every = text_features(text)
    wanted = {name: every[name][positions] for name in features}
    wanted = {name: values for name, values in wanted.items() if len(values) >= 2 and values.min() < values.max()}
    if not wanted:
        return {}
    h, c = states(engine, ids, should_stop)
    out = {}
    for feature, values in wanted.items():
        ranked = []
        for name, acts in (("h", h), ("c", c)):
            if kind in (name, "both"):
                r = correlations(acts.reshape(len(ids), -1), values)
                ranked += [RankedUnit(int(i) // engine.hidden_size, int(i) % engine.hidden_size, name, float(r[i]))
                           for i in np.argsort(-np.abs(r), kind="stable")[:top]]
        out[feature] = sorted(ranked, key=lambda unit: -abs(unit.correlation))[:top]
    return out


def clearest_feature(ranked: dict[str, list[RankedUnit]], passage: str) -> str | None:
    """Of the features ranked (rank_features), the one whose best unit follows it most closely (largest |r|)
    among those that change over `passage` (the text a visitor will watch the unit along): a feature the
    passage never shows cannot be seen there. None when no ranked feature changes over the passage."""
    shown = {name for name, values in text_features(passage).items() if len(values) and values.min() < values.max()}
    candidates = [(abs(units[0].correlation), name) for name, units in ranked.items() if units and name in shown]
    return max(candidates, key=lambda pair: pair[0])[1] if candidates else None


def correlations(acts: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Pearson r of each column of (T, units) with (T,) values; 0 for a column (or values) that never moves."""
    centred = acts.astype(np.float64)
    centred -= centred.mean(axis=0)
    values = values - values.mean()
    norms = np.sqrt(np.einsum("tu,tu->u", centred, centred) * (values @ values))
    return np.divide(values @ centred, norms, out=np.zeros(acts.shape[1]), where=norms > 0)


def clamped_write(engine: ArrayLSTM, prime_ids: list[int], length: int, cfg: DecodeConfig,
                  rng: np.random.Generator, clamp: Clamp, should_stop: StopCheck | None = None) -> list[int]:
    """sampling.write for one text, with the units in `clamp` ({(layer, unit): value}) held at their
    values (their output h) while the prime is read and at every step. With no units held, it writes
    what sampling.write writes from the same seed. should_stop() is asked before every character (a window
    model re-reads its window for each); True raises workload.Stopped."""
    if not prime_ids:
        raise ValueError("the model needs at least one character to read before it writes")
    for (layer, unit), value in clamp.items():
        whole = all(isinstance(n, numbers.Integral) and not isinstance(n, bool) for n in (layer, unit))
        if not (whole and 0 <= layer < len(engine.w_hh) and 0 <= unit < engine.hidden_size):
            raise ValueError(f"the model has no unit {unit!r} in layer {layer!r} "
                             f"({len(engine.w_hh)} layer(s) of {engine.hidden_size} units, counted from 0)")
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise ValueError(f"a held unit's value must be a finite number; got {value!r}")
    logits, state = engine.read(prime_ids, 1, clamp=clamp)
    step = lambda ids, state: engine.step(ids, state, clamp)
    return write_ids(step, logits, state, length, cfg, rng, should_stop=should_stop)[0]
