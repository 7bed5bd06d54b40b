"""The Learn section's counting tools, timed on a real corpus: n-gram fits and scores, and the copy index.

    python bench/learn_baselines.py                       # the Nietzsche text in ../shared/data
    python bench/learn_baselines.py --text some.txt --repeats 5

The text is split as training splits it (Corpus.split: the last 10% is validation). Each figure is the
median of a few repeats: the machine is shared and noisy. Prints tables; asserts nothing.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from charlm.learn.baselines import NGram, baseline_name, fit_baselines  # noqa: E402  (charlm first: BLAS threads)
from charlm.learn.copying import CopyIndex  # noqa: E402
from charlm.text.corpus import load_corpus  # noqa: E402

import numpy as np  # noqa: E402

DEFAULT_TEXT = ROOT.parent / "shared" / "data" / "nietzsche.txt"


def median_seconds(fn, repeats: int) -> tuple[float, object]:
    """(median seconds of fn(), its last result)."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def ngram_table(train_ids: np.ndarray, val_ids: np.ndarray, vocab_size: int, repeats: int) -> None:
    print(f"\nn-grams: fit on {len(train_ids):,} characters, score {len(val_ids):,} held out "
          f"(vocab {vocab_size}; medians of {repeats})")
    print(f"{'model':<20}{'fit s':>8}{'score s':>9}{'val nats/char':>15}{'bits/char':>11}{'probs() ms':>12}")
    for order in (0, 1, 2, 3, 4, 5, 6, 7):
        fit_s, model = median_seconds(lambda: NGram.fit(train_ids, vocab_size, order), repeats)
        score_s, nats = median_seconds(lambda: model.nats_per_char(val_ids), repeats)
        context = list(val_ids[:20])
        probs_s, _ = median_seconds(lambda: [model.probs(context) for _ in range(100)], repeats)
        print(f"{baseline_name(order):<20}{fit_s:>8.3f}{score_s:>9.3f}{nats:>15.4f}{nats / np.log(2):>11.4f}"
              f"{probs_s * 10:>12.3f}")
    total_s, baselines = median_seconds(lambda: fit_baselines(train_ids, val_ids, vocab_size), repeats)
    print(f"fit_baselines (orders {', '.join(str(b.order) for b in baselines)}), fit and score: {total_s:.3f} s")
    model = NGram.fit(train_ids, vocab_size, 5)
    write_s, _ = median_seconds(lambda: model.write(list(val_ids[:20]), 300,
                                                    np.random.default_rng(0), temperature=0.8), repeats)
    print(f"5-gram writes 300 characters: {write_s:.3f} s")


def patchwork(train_text: str, n_chars: int, seed: int = 0) -> str:
    """n_chars of pieces of the training text (5-80 characters) between runs of random letters."""
    rng = random.Random(seed)
    parts, size = [], 0
    while size < n_chars:
        if rng.random() < 0.5:
            start = rng.randrange(len(train_text) - 80)
            part = train_text[start:start + rng.randint(5, 80)]
        else:
            part = "".join(rng.choice("abcdefghijklmnop ") for _ in range(rng.randint(5, 40)))
        parts.append(part)
        size += len(part)
    return "".join(parts)[:n_chars]


def copy_table(text: str, repeats: int) -> None:
    query = patchwork(text, 2_000)
    print(f"\ncopied spans: a 2,000-character patchwork against the whole text ({len(text):,} characters; "
          f"medians of {repeats})")
    build_s, index = median_seconds(lambda: CopyIndex(text), max(1, repeats // 2))
    query_s, copy = median_seconds(lambda: index.longest(query), repeats)
    print(f"suffix array built once: {build_s:.3f} s; longest(): {query_s * 1000:.1f} ms -> {copy}")

    def by_substring_search():   # the same growing-best search with `in` on the text: no index at all
        best = 0
        for start in range(len(query)):
            while start + best < len(query) and query[start:start + best + 1] in text:
                best += 1
        return best

    plain_s, best = median_seconds(by_substring_search, repeats)
    print(f"without an index (str `in` for each test): {plain_s * 1000:.1f} ms, longest {best} characters")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text", type=Path, default=DEFAULT_TEXT)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    corpus = load_corpus(args.text.read_bytes(), name=args.text.name)
    train_ids, val_ids = corpus.split()
    ngram_table(train_ids, val_ids, len(corpus.vocab), args.repeats)
    copy_table(corpus.text, args.repeats)


if __name__ == "__main__":
    main()
