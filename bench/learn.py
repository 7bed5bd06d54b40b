"""Every Learn interaction's computation, timed with the shipped model on this machine: the 1-second target.

    python bench/learn.py                      # the demo model, the Nietzsche text in ../shared/data
    python bench/learn.py --repeats 7 --model checkpoints/seed-2017.safetensors

What a visitor's click costs in charlm (the page's own drawing comes on top: see --pages). Medians of a
few repeats, as this machine is shared and noisy; prints a table and the CPU's flags, asserts nothing.
With --pages it also times each Learn page's first run and a rerun in Streamlit's AppTest.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import charlm  # noqa: E402,F401  (first: it caps numpy's BLAS threads)
import numpy as np  # noqa: E402

from bench.learn_baselines import DEFAULT_TEXT, median_seconds, patchwork  # noqa: E402
from charlm.modelfile import format as modelfile  # noqa: E402
from charlm.learn import cell, charmap, influence, neurons, textstats  # noqa: E402
from charlm.engine import scoring  # noqa: E402
from charlm.engine.arrays import ArrayLSTM  # noqa: E402
from charlm.learn.baselines import fit_baselines  # noqa: E402
from charlm.learn.copying import CopyIndex  # noqa: E402
from charlm.engine.sampling import DecodeConfig, write  # noqa: E402
from charlm.text.read import decode_bytes  # noqa: E402

TARGET_S = 1.0
# What the pages read (app/learn/surprise_map.py, neuron_explorer.py): a window model (the 2017 design)
# re-reads its window for every character, so its pages read 400 characters where the others read 2,000
# (shown) and 20,000 (ranked).
SHOWN, RANKED, WINDOW_CHARS = 2_000, 20_000, 400


def cpu_line() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or "unknown CPU"
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    flags = set(fields.get("Flags", "").split())
    shown = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags]
    return f"{fields.get('Model name', '?').strip()}, {fields.get('CPU(s)', '?').strip()} CPUs, flags: {' '.join(shown)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "checkpoints" / "demo.safetensors")
    parser.add_argument("--text", type=Path, default=DEFAULT_TEXT, help="the model's training text")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--pages", action="store_true", help="also time the Learn pages in AppTest")
    args = parser.parse_args()

    read = modelfile.read(args.model)
    engine = ArrayLSTM.from_weights(read.config.to_dict(), read.weights, read.window)
    chars = read.vocab
    text, _, _ = decode_bytes(args.text.read_bytes())
    cut = len(text) - round(len(text) * read.meta.get("info", {}).get("val_fraction", 0.1))
    train_text, val_text = text[:cut], text[cut:]
    index = {c: i for i, c in enumerate(chars)}
    ids = lambda s: np.array([index[c] for c in s if c in index])   # noqa: E731
    shown, ranked = (WINDOW_CHARS, WINDOW_CHARS) if read.window else (SHOWN, RANKED)
    passage, long_passage = val_text[:shown], val_text[:ranked]
    generated = patchwork(train_text, 2_000)
    prime = "The philosopher "
    rng = lambda: np.random.default_rng(0)   # noqa: E731
    logits, _ = engine.read(list(ids(prime)))
    unit = neurons.rank_units(engine, chars, long_passage, "start of a word", top=1)[0]

    train_ids, val_ids = ids(train_text), ids(val_text)
    first_fit_s, _ = median_seconds(lambda: fit_baselines(train_ids, val_ids, len(chars)), 1)
    first_index_s, copies = median_seconds(lambda: CopyIndex(train_text), 1)

    strategies = [DecodeConfig("greedy"), DecodeConfig("sample"), DecodeConfig("top-k"), DecodeConfig("top-p"),
                  DecodeConfig("min-p")]

    def decoding_lab():   # five strategies, 300 characters each, and each text's measures
        for cfg in strategies:
            out = "".join(chars[i] for i in write(engine, list(ids(prime)), 300, cfg, rng())[0])
            scoring.score_text(engine, chars, prime + out, start=len(prime))
            textstats.repetition_rate(out), textstats.distinct_ngrams(out, 3), copies.longest(out)

    def guess_reveal():   # the model's distribution after a 300-character passage, as a guess is revealed
        lg, _ = engine.read(list(ids(passage[:300])))
        return scoring.distributions(lg[0], 1.0, 20, 0.9, 0.05)

    line_end = passage.find("\n", 300)   # a newline that ends a line: the looked-back part's opening case
    at = line_end if line_end > 0 else len(passage) - 1
    gate_text = passage[:500]
    vectors = charmap.engine_vectors(engine, chars)

    def character_map():   # both projections and one character's neighbours
        charmap.char_map(vectors, "pca"), charmap.char_map(vectors, "mds")
        return charmap.neighbours(vectors, chars[len(chars) // 2])

    rows = [
        ("Next-character distribution: read a prime, reshape", lambda: (
            engine.read(list(ids(prime))), scoring.distributions(logits[0], 0.8, 20, 0.9, 0.05))),
        (f"Surprise map: {shown:,} characters", lambda: scoring.score_text(engine, chars, passage)),
        (f"Neuron explorer: colour {shown:,} characters", lambda: neurons.activations(engine, ids(passage), "h")),
        (f"Neuron explorer: rank units over {ranked:,}", lambda: neurons.rank_units(
            engine, chars, long_passage, "start of a word")),
        ("Neuron explorer: write 300 with a unit held", lambda: neurons.clamped_write(
            engine, list(ids(prime)), 300, DecodeConfig(), rng(), {(unit.layer, unit.unit): 1.0})),
        (f"Looked back: {influence.BACK} earlier characters", lambda: influence.influence(
            engine, chars, passage, at)),
        ("Inside the cell: gates over 500 characters", lambda: cell.gates(engine, ids(gate_text))),
        ("Character map: PCA, cosine map, neighbours", character_map),
        ("Baselines: longest copy, 2,000 vs whole text", lambda: copies.longest(generated)),
        ("Decoding lab: 5 strategies x 300 + measures", decoding_lab),
        ("Guess: reveal after a 300-character passage", guess_reveal),
    ]
    print(f"{args.model.name} ({read.config.num_layers} x {read.config.hidden_size}, vocab {len(chars)}"
          f"{f', window {read.window}' if read.window else ''}) on {cpu_line()}")
    print(f"medians of {args.repeats}; target {TARGET_S:g} s per interaction\n")
    print(f"{'interaction':<50}{'seconds':>9}  ")
    for label, fn in rows:
        seconds, _ = median_seconds(fn, args.repeats)
        print(f"{label:<50}{seconds:>9.3f}  {'ok' if seconds < TARGET_S else 'OVER'}")
    print(f"{'Baselines: n-gram fit, first time (then cached)':<50}{first_fit_s:>9.3f}  "
          f"{'ok' if first_fit_s < TARGET_S else 'OVER'}")
    print(f"{'Baselines: copy index build, first time (cached)':<50}{first_index_s:>9.3f}  "
          f"{'ok' if first_index_s < TARGET_S else 'OVER'}")
    if args.pages:
        time_pages(args.repeats)


def time_pages(repeats: int) -> None:
    """Each Learn page's first run and a rerun, in AppTest (Streamlit's own script running, no browser)."""
    from streamlit.testing.v1 import AppTest

    from app.learn import LEARN_PAGES

    print(f"\nLearn pages in AppTest (medians of {repeats}): first run, rerun")
    for module, title, _, _ in LEARN_PAGES:
        firsts, reruns = [], []
        for _ in range(repeats):
            at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120)
            at.run()
            start = time.perf_counter()
            at.switch_page(f"app/pages/learn/{module}.py").run()
            firsts.append(time.perf_counter() - start)
            start = time.perf_counter()
            at.run()
            reruns.append(time.perf_counter() - start)
            if at.exception:
                print(f"  {title}: exception {at.exception[0].value}")
                break
        print(f"{title:<50}{np.median(firsts):>9.3f}{np.median(reruns):>9.3f}")


if __name__ == "__main__":
    main()
