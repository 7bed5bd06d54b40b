"""Copied spans: the longest stretch of a text that occurs word for word in the training text.

A model that writes a long passage it read in training has memorised it, not composed it. CopyIndex
sorts every suffix of the training text once (a suffix array, built with numpy by prefix doubling);
then a string occurs in the training text exactly when a binary search of the sorted suffixes finds
one starting with it. The longest copied span is found by growing the best length so far: at each
position of the text we only ask whether one character more than the best so far also occurs, so a
text of n characters needs under 2n searches of about log2(len(train)) string comparisons each.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Copy:
    start: int          # where the span starts in the text searched
    length: int         # characters
    source_start: int   # where it first occurs in the training text

    @property
    def end(self) -> int:
        return self.start + self.length


class CopyIndex:
    """The training text's suffixes, sorted; build it once per training text and keep it."""

    def __init__(self, train_text: str):
        if not isinstance(train_text, str):
            raise ValueError(f"the training text must be a str; got {type(train_text).__name__}")
        self.train_text = train_text
        self._suffixes = suffix_array(train_text)              # (len(train_text),) int32 starts, in order
        self._sorted = memoryview(self._suffixes)              # indexing gives Python ints, quickly

    def __len__(self) -> int:
        return len(self.train_text)

    def find(self, needle: str) -> int | None:
        """The first position of needle in the training text, or None (an empty needle is at 0)."""
        if not needle:
            return 0
        low, high = self._block(needle)
        return int(self._suffixes[low:high].min()) if high > low else None

    def longest(self, text: str) -> Copy | None:
        """The longest span of text found verbatim in the training text (the first such, if several are
        equally long); None when no character of text occurs there at all (or text is empty)."""
        if not isinstance(text, str):
            raise ValueError(f"the text to search must be a str; got {type(text).__name__}")
        best_start, best = 0, 0
        for start in range(len(text)):
            # Only a span longer than the best so far matters; if text[start:start + best + 1] is not in
            # the training text, no longer span starting here is either.
            while start + best < len(text) and self._occurs(text[start:start + best + 1]):
                best_start, best = start, best + 1
        if best == 0:
            return None
        return Copy(best_start, best, self.find(text[best_start:best_start + best]))

    def _occurs(self, needle: str) -> bool:
        low = self._lower(needle)
        return low < len(self._sorted) and self._prefix(self._sorted[low], len(needle)) == needle

    def _block(self, needle: str) -> tuple[int, int]:
        """[low, high): the sorted suffixes that start with needle."""
        low = self._lower(needle)
        high = bisect.bisect_right(self._sorted, needle, lo=low, key=lambda s: self._prefix(s, len(needle)))
        return low, high

    def _lower(self, needle: str) -> int:
        return bisect.bisect_left(self._sorted, needle, key=lambda s: self._prefix(s, len(needle)))

    def _prefix(self, start: int, length: int) -> str:
        return self.train_text[start:start + length]


def suffix_array(text: str) -> np.ndarray:
    """(len(text),) int32: the start of every suffix of text, in the order Python sorts strings.

    Prefix doubling: after the round with width w, rank[i] orders the suffixes by their first 2w
    characters; ranks that are all different mean the order is final. Each round is one argsort, and
    there are about log2 of the longest repeated substring's length of them.
    """
    n = len(text)
    if n == 0:
        return np.zeros(0, dtype=np.int32)
    codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    _, rank = np.unique(codes, return_inverse=True)           # rank by first character, 0-based, dense
    rank = rank.astype(np.int64)
    width = 1
    while True:
        # The rank of the suffix `width` on, +1 so that running off the end (0) sorts first, as a
        # shorter string does in Python.
        after = np.zeros(n, dtype=np.int64)
        after[:n - width] = rank[width:] + 1
        keys = rank * (n + 1) + after
        order = np.argsort(keys)  # ties share a rank, so their order does not matter
        sorted_keys = keys[order]
        new_rank = np.empty(n, dtype=np.int64)
        new_rank[order] = np.concatenate(([0], np.cumsum(sorted_keys[1:] != sorted_keys[:-1])))
        rank = new_rank
        if rank.max() == n - 1 or width >= n:
            return order.astype(np.int32)
        width *= 2
