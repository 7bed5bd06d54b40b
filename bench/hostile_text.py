"""Seconds to read a hostile text (one letter and long runs of combining marks) against an ordinary one of the
same size: charlm.text.read.read_text as it is now (refused before NFC), and NFC alone on the same characters, which is
what reading cost before runs were refused. Prints one line per case.

    python bench/hostile_text.py            # 160 KB and 400 KB (UTF-8), as in issue 20
    python bench/hostile_text.py --nfc      # and NFC alone on the hostile texts: minutes on a shared CPU
"""

from __future__ import annotations

import sys
import time
import unicodedata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from charlm.text.read import CorpusError, read_text   # noqa: E402

SENTENCE = "An ordinary sentence, of the kind a text is made of. "


def hostile(size_bytes: int) -> bytes:
    """'a' then marks of two classes (U+0301 is 230, U+0316 is 220, two bytes each), so NFC has to reorder them."""
    half = (size_bytes - 1) // 4
    return ("a" + "\u0301" * half + "\u0316" * half).encode()


def ordinary(size_bytes: int) -> bytes:
    return (SENTENCE * (size_bytes // len(SENTENCE) + 1)).encode()[:size_bytes]


def seconds(action) -> tuple[float, str]:
    start = time.perf_counter()
    try:
        action()
        outcome = "read"
    except CorpusError as err:
        outcome = "refused: " + str(err)[:60] + "..."
    return time.perf_counter() - start, outcome


def main(with_nfc: bool) -> None:
    read_text("warm up the table of marks: café " * 50)   # the first non-ASCII text builds it (about 0.1 s)
    for size in (160_000, 400_000):
        for kind, data in (("hostile", hostile(size)), ("ordinary", ordinary(size))):
            took, outcome = seconds(lambda: read_text(data))
            print(f"{size // 1000} KB {kind:8}  read_text {took:7.3f} s  ({outcome})")
        if not with_nfc:
            continue
        took, _ = seconds(lambda: unicodedata.normalize("NFC", hostile(size).decode()))
        print(f"{size // 1000} KB hostile   NFC alone {took:7.3f} s  (what reading cost before the refusal)")


if __name__ == "__main__":
    main(with_nfc="--nfc" in sys.argv[1:])
