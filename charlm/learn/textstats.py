"""How repetitive a text is: the share of its n-grams seen before in it, and the share that are distinct.

Both measure a text by its n-grams, the len(text) - n + 1 overlapping strings of n characters. A text
shorter than n has none, and both measures are then nan (undefined), not 0: a page shows a dash.
Every n-gram is either the first of its kind or a repeat, so the two always add up to one.
"""

from __future__ import annotations

import math
import numbers


def ngrams(text: str, n: int) -> list[str]:
    """The text's overlapping n-character strings, in order."""
    _check_n(n)
    return [text[i:i + n] for i in range(len(text) - n + 1)]


def repetition_rate(text: str, n: int = 4) -> float:
    """Share of the text's n-grams that already occurred earlier in it (overlaps count); nan if none."""
    grams = ngrams(text, n)
    if not grams:
        return math.nan
    return (len(grams) - len(set(grams))) / len(grams)


def distinct_ngrams(text: str, n: int) -> float:
    """Distinct n-grams / all n-grams: 1.0 when none repeats; nan when the text is shorter than n."""
    grams = ngrams(text, n)
    if not grams:
        return math.nan
    return len(set(grams)) / len(grams)


def _check_n(n) -> None:
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"n must be a whole number of at least 1; got {n!r}")
