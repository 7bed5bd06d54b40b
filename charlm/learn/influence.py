"""What a prediction looked back at: how much each earlier character mattered to it, by occlusion. numpy only.

For position N of a text, the model's log-probability of the character actually at N is read once as the
text stands, and once more for each earlier character j with j left out (or, given a substitute, with j
replaced by it). A character's influence is the drop: ln p(text[N] | text[:N]) - ln p(text[N] | the text
with j occluded). It is the model's own change, computed by the same engine that writes, with no
approximation (a gradient only says what a small nudge of j's input would do; a character is never nudged).

Leaving a character out rather than replacing it is the default: a replacement is itself a character,
and every character equal to it reads zero (a space, replaced by a space, never seems to matter).

All the variants are read together. They share the text before j, so it is read once; each variant
branches from that shared state where its character is occluded and the batch grows by one row each
step (half the work of reading every variant from the start of the window). A window model (the 2017
preset) re-reads its last `window` characters for each prediction: a character further back cannot
matter (its influence is exactly 0) and the variants within the window are re-read together.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from charlm.engine.arrays import ArrayLSTM, ArrayState
from charlm.engine.sampling import log_softmax
from charlm.errors import UserError
from charlm.text.corpus import Vocab
from charlm.workload import StopCheck, check

BACK = 200   # earlier characters measured by default: the "200 earlier characters within a second"


@dataclass(frozen=True)
class Influence:
    at: int                   # the position predicted, in the text
    char: str                 # the character actually there
    logprob: float            # ln p(char | the text before it), nats
    distances: np.ndarray     # (k,) int: how far back each earlier character measured lies, nearest first
    chars: list[str]          # (k,) those characters
    influence: np.ndarray     # (k,) float64 nats: logprob minus logprob with that character occluded

    def ranked(self) -> np.ndarray:
        """Indexes into distances/chars, the largest influence (either sign) first."""
        return np.argsort(-np.abs(self.influence), kind="stable")


def influence(engine: ArrayLSTM, chars: list[str], text: str, at: int, back: int = BACK,
              substitute: str | None = None, should_stop: StopCheck | None = None) -> Influence:
    """How much each of the `back` characters before text[at] mattered to the model's ln p(text[at]).

    `chars`: the model's vocabulary, index -> character; the text is read as Vocab.read reads it (a
    character the model skips is not measured). `substitute`: None leaves each character out; a
    character of the vocabulary replaces each by it instead.
    """
    if len(chars) != engine.vocab_size:
        raise ValueError(f"the vocabulary has {len(chars)} characters but the model predicts {engine.vocab_size}")
    if not 1 <= at < len(text):
        raise UserError(f"the position must lie in [1, {len(text) - 1}] for this text of {len(text):,} "
                        f"characters (the first has nothing before it); got {at}")
    if back < 1:
        raise UserError(f"back must be at least 1; got {back}")
    vocab = Vocab.from_list(chars)
    index = {char: i for i, char in enumerate(chars)}
    if text[at] not in index:
        raise UserError(f"the character at {at} ({text[at]!r}) is not one this model knows; it predicts none there")
    if substitute is not None and substitute not in index:
        raise UserError(f"the substitute {substitute!r} is not a character this model knows")
    ids, positions = vocab.read(text[:at])
    if not len(ids):
        raise UserError(f"none of the characters before position {at} is one this model knows")
    first = max(0, len(ids) - back)                  # the first id occluded
    sub = None if substitute is None else index[substitute]
    if engine.window:
        logprobs = _windowed(engine, ids, first, sub, index[text[at]], should_stop)
    else:
        logprobs = _carried(engine, ids, first, sub, index[text[at]], should_stop)
    base, occluded = logprobs[0], logprobs[1:]       # occluded[r]: id first + r occluded
    return Influence(at=at, char=text[at], logprob=float(base), distances=(at - positions[first:])[::-1].copy(),
                     chars=[text[p] for p in positions[first:][::-1]], influence=(base - occluded)[::-1].copy())


def _carried(engine: ArrayLSTM, ids: np.ndarray, first: int, sub: int | None, target: int,
             should_stop: StopCheck | None) -> np.ndarray:
    """ln p(target) as read (row 0) and with each of ids[first:] occluded (rows 1...), for a carried model.

    The text before `first` is read once. Row 0 reads on as written; at each step the state row 0 had
    before it (dropping: before the step before) joins the batch as the variant occluding that id.
    """
    state = engine.init_state(1)
    for t in range(first):
        if t % 32 == 0:
            check(should_stop)
        _, state = engine.step(ids[t:t + 1], state)
    rows: ArrayState = state
    previous = state                                 # row 0's state before the id before this step
    for t in range(first, len(ids)):
        if t % 16 == 0:
            check(should_stop)
        before = _rows(rows, [0])
        if sub is not None:                          # the variant replacing ids[t] reads sub here
            rows = _joined(rows, before)
            step_ids = np.full(_count(rows), ids[t])
            step_ids[-1] = sub
        else:                                        # the variant dropping ids[t - 1] reads ids[t] after ids[t - 2]
            rows = _joined(rows, previous) if t > first else rows
            step_ids = np.full(_count(rows), ids[t])
        logits, rows = engine.step(step_ids, rows)
        previous = before
    if sub is None:                                  # dropping the last id: the prediction made before reading it
        logits = np.concatenate([logits, _head(engine, previous)])
    return log_softmax(logits)[:, target]


def _head(engine: ArrayLSTM, state: ArrayState) -> np.ndarray:
    """The logits a carried state predicts (the head of its top layer's output), (rows, vocab)."""
    return state[-1][0] @ engine.head_w + engine.head_b


def _unread(engine: ArrayLSTM) -> np.ndarray:
    """The logits before any character is read: the head of a zero state, (1, vocab)."""
    return engine.head_b[None].astype(np.float32)


def _windowed(engine: ArrayLSTM, ids: np.ndarray, first: int, sub: int | None, target: int,
              should_stop: StopCheck | None) -> np.ndarray:
    """As _carried, for a window model: only ids within its last window change what it re-reads."""
    window = engine.window
    base = log_softmax(engine.reread(ids[None, -window:])[0])[0, target]
    logprobs = np.full(1 + len(ids) - first, base)              # occluding an id beyond the window changes nothing
    tail = ids[-window - 1:]                                    # dropping an id lets the one before the window in
    inside = np.arange(max(first, len(ids) - window), len(ids)) - (len(ids) - len(tail))   # ids occluded, in tail
    variants = []
    for j in inside:
        changed = tail.copy() if sub is not None else np.delete(tail, j)
        if sub is not None:
            changed[j] = sub
        variants.append(changed[-window:])
    if variants and len(variants[0]):
        logits = engine.reread(np.stack(variants), should_stop=should_stop)[0]
    else:                                                       # the only id dropped: nothing is left to read
        logits = np.repeat(_unread(engine), len(variants), axis=0)
    logprobs[len(logprobs) - len(variants):] = log_softmax(logits)[:, target]
    return logprobs


def _count(state: ArrayState) -> int:
    return state[0][0].shape[0]


def _rows(state: ArrayState, rows: list[int]) -> ArrayState:
    return [(h[rows], c[rows]) for h, c in state]


def _joined(state: ArrayState, more: ArrayState) -> ArrayState:
    """The rows of `more` appended below those of `state`, layer by layer."""
    return [(np.concatenate([h, h2]), np.concatenate([c, c2])) for (h, c), (h2, c2) in zip(state, more)]
