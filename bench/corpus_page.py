"""Seconds the Corpus page spends on a text at the server's cap (5 million characters), by step, for an ordinary
text and for texts built to make one step slow; and the longest the interpreter's lock was held in each step,
which is how long every other visitor (and the health check) waits. Prints one line per text and step.

    python bench/corpus_page.py                 # every text at 5,000,000 characters
    python bench/corpus_page.py --chars 1000000 # another size: a cost that grows faster than the text shows here
    python bench/corpus_page.py --app           # and the whole page, a paste submitted in Streamlit's AppTest

Steps: read (load_corpus of a paste: size check, newlines, mark runs, NFC, counts, vocabulary, encoding), stats
(Corpus.stats: counts, words, split, preview), chart (the frequency chart, as Streamlit serialises it).
"Lock held" is the longest a thread asking every millisecond waited: on a shared machine it counts other
processes' use of the CPU too, so compare it across texts within one run.
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app import charts   # noqa: E402
from charlm.text.corpus import CorpusError, load_corpus   # noqa: E402

WORDS = ("the of and to in that is was he for it with as his on be at by had not are but from or have an they "
         "which one you were all her she there would their we him been has when who will more no if out so said "
         "what up its about into than them can only other new some could time these two may then do first any "
         "my now such like our over man me even most made after also did many before must through back years "
         "where much your way well down should because each just those people how too little state good very "
         "make world still own see men work long get here between both life being under never day same another "
         "know while last might us great old year off come since against go came right used take three").split()


def ordinary(chars: int, rng: random.Random, newline_every: int | None = 70) -> str:
    """Words, commas and full stops, a newline about every `newline_every` characters (None: one line)."""
    parts, size, line = [], 0, 0
    while size < chars:
        word = rng.choice(WORDS) + rng.choice(("", "", "", "", ",", "."))
        line += len(word) + 1
        sep = "\n" if newline_every and line > newline_every else " "
        line = 0 if sep == "\n" else line
        parts.append(word + sep)
        size += len(word) + 1
    return "".join(parts)[:chars]


def distinct(chars: int, rng: random.Random, kinds: int, base: int = 0x4E00) -> str:
    """`kinds` distinct CJK ideographs, each about equally often, in random order."""
    points = [base + rng.randrange(kinds) for _ in range(chars)]
    return "".join(map(chr, points))


def texts(chars: int) -> dict[str, str]:
    rng = random.Random(0)
    prose = ordinary(chars, rng)
    rare = distinct(chars // 5, rng, 20_000)   # 20,000 kinds, ~50 times each: all but 1,023 fall outside the vocab
    return {
        "ordinary prose": prose,
        "one line": ordinary(chars, rng, newline_every=None),
        "1,024 distinct": distinct(chars, rng, 1024),
        "20,000 rare distinct": prose[:chars - len(rare)] + rare,
        "newlines only (+ prose)": "\n" * (chars - 2000) + prose[:2000],
        "\\r\\n line ends": prose.replace("\n", "\r\n")[:chars],
        "one long word": "x" * (chars - 1) + "y",
        "mark runs of 30": ("a" + "\u0301" * 15 + "\u0316" * 15) * (chars // 31),
    }


class LockWatch:
    """A thread that asks for the interpreter every millisecond; the longest wait is how long the lock was held."""

    def __init__(self):
        self.longest, self._stop = 0.0, threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        last = time.perf_counter()
        while not self._stop.wait(0.001):
            now = time.perf_counter()
            self.longest = max(self.longest, now - last - 0.001)
            last = now

    def __enter__(self) -> LockWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def timed(action):
    """(result or the CorpusError, seconds, longest lock hold in seconds)."""
    with LockWatch() as watch:
        start = time.perf_counter()
        try:
            result = action()
        except CorpusError as err:
            result = err
        took = time.perf_counter() - start
    return result, took, watch.longest


def app_paste(text: str) -> float:
    """Seconds for the Corpus page to answer a pasted text in AppTest (the estimate already measured once)."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "streamlit_app.py"), default_timeout=600)
    at.run()
    at.switch_page("app/pages/corpus.py").run()
    at.text_area(key="paste_text").input(text)
    start = time.perf_counter()
    at.button(key="FormSubmitter:paste_form-Use this text").click().run()
    took = time.perf_counter() - start
    if at.exception:
        raise RuntimeError(at.exception[0].value)
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chars", type=int, default=5_000_000)
    parser.add_argument("--app", action="store_true", help="also time the whole page in AppTest")
    args = parser.parse_args()
    warm = load_corpus("warm up the lookup tables and the chart's imports. " * 100, max_chars=args.chars)
    charts.frequency_chart(warm.stats().frequencies, len(warm.text)).to_dict()
    if args.app:
        app_paste("warm up the training-time estimate. " * 100)
    print(f"{'text':26} {'step':6} {'seconds':>8} {'lock held':>10}  outcome")
    for name, text in texts(args.chars).items():
        corpus, took, held = timed(lambda: load_corpus(text, name="bench", max_chars=args.chars))
        outcome = f"refused: {str(corpus)[:50]}" if isinstance(corpus, CorpusError) else \
            f"{len(corpus.text):,} chars, {len(corpus.vocab):,} in the vocabulary"
        print(f"{name:26} {'read':6} {took:8.3f} {held:10.3f}  {outcome}", flush=True)
        if isinstance(corpus, CorpusError):
            continue
        stats, took, held = timed(corpus.stats)
        print(f"{name:26} {'stats':6} {took:8.3f} {held:10.3f}  {stats.distinct:,} distinct, {stats.lines:,} lines, "
              f"{stats.words:,} words", flush=True)
        _, took, held = timed(lambda: charts.frequency_chart(stats.frequencies, stats.chars).to_dict())
        print(f"{name:26} {'chart':6} {took:8.3f} {held:10.3f}", flush=True)
        if args.app:
            print(f"{name:26} {'page':6} {app_paste(text):8.3f} {'':>10}  a paste submitted in AppTest", flush=True)


if __name__ == "__main__":
    main()
