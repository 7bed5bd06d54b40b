"""Numbers for people: losses in bits beside nats, and durations in words; no torch here."""

from __future__ import annotations

import math

LN2 = math.log(2)   # nats per bit: every loss here is in nats per character, bits/char = nats / LN2


def plural(n: float, noun: str, nouns: str | None = None) -> str:
    """'1 character', '2,000 characters', '0 runs', '2.5 minutes': a number with its noun, singular for exactly 1."""
    number = f"{n:,}" if isinstance(n, int) else f"{n:g}"
    return f"{number} {noun if n == 1 else nouns or noun + 's'}"


def format_duration(seconds: float | None) -> str:
    """'under a second', '42 s', '3 min 07 s', '2 h 05 min'; '–' when there is no figure (yet)."""
    if seconds is None or not math.isfinite(seconds):
        return "–"
    if seconds < 1:
        return "under a second"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def format_fixed(value: float | None, digits: int = 2) -> str:
    """'0.00', '1.25': a number to `digits` places that never reads '-0.00' (a sum of zeros, or a tiny negative
    rounded away, can carry a minus sign to the page); '–' when there is no figure."""
    if value is None or not math.isfinite(value):
        return "–"
    return f"{round(value, digits) + 0.0:.{digits}f}"   # + 0.0 turns -0.0 into 0.0
