"""Runs of combining marks, found in linear time: the one thing in a text that NFC normalisation sorts slowly.

NFC puts each run of combining marks into canonical order by sorting it in place, so a run of n marks costs
n squared steps: 80,000 marks after one letter took ten seconds, with the interpreter's lock held. Unicode's
stream-safe form (UAX #15) allows at most 30 in a row, far more than any writing stacks on one letter, and a
text is checked against that before it is normalised. The check reads code points through a lookup table with
numpy, a chunk at a time: 15 ns a character, where a regular expression of the 900 marks took 200.
"""

from __future__ import annotations

import functools
import unicodedata

import numpy as np

MAX_RUN = 30                      # marks in a row that a text may hold (Unicode's stream-safe limit)
_CHUNK_CHARS = 1 << 20            # characters looked up at a time: memory stays flat for a 200 MB text
# Three Tibetan vowel signs have combining class 0 yet decompose into marks that have one, so NFC reorders runs
# of them as slowly; tests/test_hostile_text.py holds this list against unicodedata.
DECOMPOSE_TO_MARKS = "\u0f73\u0f75\u0f81"


@functools.cache   # built on first use, once per process (0.1 s: it asks about all 1.1 million code points)
def _is_mark() -> np.ndarray:
    """(0x110000,) bool: whether each code point is a mark (non-zero combining class, or DECOMPOSE_TO_MARKS)."""
    table = np.zeros(0x110000, dtype=bool)
    table[[code for code in range(0x110000) if unicodedata.combining(chr(code))]] = True
    table[[ord(char) for char in DECOMPOSE_TO_MARKS]] = True
    return table


def long_run(text: str, limit: int = MAX_RUN) -> tuple[int, int] | None:
    """(index of its first mark, its length) of the first run of more than `limit` marks in text, else None."""
    for start in range(0, len(text), _CHUNK_CHARS):
        # Each chunk begins `limit` characters early, so a run across a border is seen whole enough to count.
        first = max(0, start - limit)
        piece = text[first:start + _CHUNK_CHARS]
        if piece.isascii():   # most text: no marks at all, and str knows this without looking again
            continue
        points = np.frombuffer(piece.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        where = np.flatnonzero(_is_mark()[points])   # positions of the marks: few, in most texts
        if len(where) <= limit:
            continue
        run_starts = np.concatenate(([0], np.flatnonzero(np.diff(where) != 1) + 1))
        lengths = np.diff(np.append(run_starts, len(where)))
        too_long = np.flatnonzero(lengths > limit)
        if too_long.size:
            return _whole_run(text, first + int(where[run_starts[too_long[0]]]))
    return None


def _whole_run(text: str, inside: int) -> tuple[int, int]:
    """(first, length) of the run of marks around text[inside]: a chunk may have begun in its middle."""
    is_mark = _is_mark()
    first = inside
    while first and is_mark[ord(text[first - 1])]:   # a few steps: the chunk began at most MAX_RUN early
        first -= 1
    for start in range(inside, len(text), _CHUNK_CHARS):   # the run may be long: look its end up a chunk at a time
        points = np.frombuffer(text[start:start + _CHUNK_CHARS].encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        others = np.flatnonzero(~is_mark[points])
        if others.size:
            return first, start + int(others[0]) - first
    return first, len(text) - first
