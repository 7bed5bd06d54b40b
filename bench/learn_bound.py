"""The work bound's calibration: charlm.workload's estimate beside the measured time, on this machine.

    python bench/learn_bound.py              # the shipped models and a window model at every cap
    python bench/learn_bound.py --most 20    # measure interactions estimated up to 20 s (default 8)

First the rates: one step of every layer at 1, 5, 16 and 256 rows for a few shapes, in multiply-adds a second
(best of 5, as the machine is shared), beside the rates workload assumes. Then each Learn interaction the
bound covers (Decoding lab strategies, beam search, scoring; the Surprise map's and the guessing game's
scoring, Neuron explorer's ranking and colouring), estimated and measured; one over --most is only
estimated. Prints, asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import charlm  # noqa: E402,F401  (first: it caps numpy's BLAS threads)
import numpy as np  # noqa: E402

from charlm import workload  # noqa: E402
from charlm.modelfile import format as modelfile
from charlm.learn import neurons
from charlm.engine import scoring
from charlm.engine.arrays import ArrayLSTM  # noqa: E402
from charlm.engine.decoding import beam_search  # noqa: E402
from charlm.engine.sampling import DecodeConfig, write  # noqa: E402


def random_engine(layers: int, hidden: int, vocab: int = 85, window: int | None = None) -> ArrayLSTM:
    """An engine of this shape with random weights (the cost does not depend on their values)."""
    rng = np.random.default_rng(0)
    w = {"embed.weight": rng.normal(size=(vocab, 64)), "head.weight": rng.normal(size=(vocab, hidden)),
         "head.bias": np.zeros(vocab)}
    for k in range(layers):
        w[f"lstm.weight_ih_l{k}"] = rng.normal(size=(4 * hidden, 64 if k == 0 else hidden)) * 0.05
        w[f"lstm.weight_hh_l{k}"] = rng.normal(size=(4 * hidden, hidden)) * 0.05
        w[f"lstm.bias_ih_l{k}"] = w[f"lstm.bias_hh_l{k}"] = np.zeros(4 * hidden)
    return ArrayLSTM.from_weights({"hidden_size": hidden, "num_layers": layers}, w, window)


def shipped(name: str) -> tuple[str, ArrayLSTM, list[str]]:
    read = modelfile.read(ROOT / "checkpoints" / f"{name}.safetensors")
    return name, ArrayLSTM.from_weights(read.config.to_dict(), read.weights, read.window), read.vocab


def rates() -> None:
    print(f"rates (multiply-adds a second, best of 5); workload assumes {workload.RATE_ONE:.1e} at 1 row, "
          f"{workload.RATE_FEW:.1e} for a few, {workload.RATE_MANY:.1e} from {workload.MANY_ROWS} rows")
    for layers, hidden in ((1, 256), (1, 384), (3, 512)):
        engine = random_engine(layers, hidden)
        figures = []
        for rows in (1, 5, 16, 256):
            state, ids = engine._zeros(rows), np.zeros(rows, dtype=np.int64)
            best = min(timed(lambda: [engine._layers(ids, state) for _ in range(max(5, 200 // rows))])
                       for _ in range(5)) / max(5, 200 // rows)
            figures.append(f"{rows:>3} rows {rows * 4 * hidden * hidden * (2 * layers - 1) / best:8.2e}")
        print(f"  {layers} x {hidden}: " + "  ".join(figures))


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def interactions(name: str, engine: ArrayLSTM, chars: list[str], most_s: float) -> None:
    shape = workload.Shape.of(engine)
    print(f"\n{name} ({shape.describe()})")
    rng = np.random.default_rng(1)
    for prime_n, length, width in ((4, 200, 5), (500, 600, 16), (500, 20, 5)):
        prime = [int(i) for i in rng.integers(0, len(chars), prime_n)]
        text = "".join(chars[i] for i in prime) + "x" * length
        rows = [
            (f"write {length} after {prime_n}", workload.write_s(shape, prime_n, length),
             lambda: write(engine, prime, length, DecodeConfig("top-p"), np.random.default_rng(0))),
            (f"beam {width}, {length} after {prime_n}", workload.beam_s(shape, prime_n, length, width),
             lambda: beam_search(engine, prime, length, width)),
            (f"score {length} after {prime_n}", workload.score_s(shape, prime_n + length, length),
             lambda: scoring.score_text(engine, chars, text.replace("x", chars[1]), start=prime_n, top=0)),
        ]
        for label, estimate, fn in rows:
            measured = f"{timed(fn):9.3f}" if estimate <= most_s else f"{'-':>9}"
            print(f"  {label:<34} estimate {estimate:9.3f}  measured {measured}  "
                  f"{'within' if estimate <= workload.BUDGET_S else 'over'} the {workload.BUDGET_S:g} s budget")


def readings(engine: ArrayLSTM, chars: list[str], most_s: float) -> None:
    """Reading a whole text: scoring it (Surprise map, Guess the next character) and every unit's state along
    it (Neuron explorer's ranking and colouring), at those pages' sizes."""
    shape = workload.Shape.of(engine)
    rng = np.random.default_rng(2)
    for n in (169, 259, 400, 2_000, 20_000):
        ids = rng.integers(0, len(chars), n)
        text = "".join(chars[i] for i in ids)
        rows = [(f"score a text of {n:,}", workload.score_s(shape, n),
                 lambda: scoring.score_text(engine, chars, text, start=1, top=3)),
                (f"states along {n:,}", workload.states_s(shape, n), lambda: neurons.states(engine, ids))]
        for label, estimate, fn in rows:
            measured = f"{timed(fn):9.3f}" if estimate <= most_s else f"{'-':>9}"
            print(f"  {label:<34} estimate {estimate:9.3f}  measured {measured}  "
                  f"{'within' if estimate <= workload.BUDGET_S else 'over'} the {workload.BUDGET_S:g} s budget")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--most", type=float, default=8.0, help="measure what is estimated at most this (s)")
    args = parser.parse_args()
    rates()
    for name, engine, chars in (shipped("demo"), shipped("python-docs"), shipped("seed-2017")):
        interactions(name, engine, chars, args.most)
        readings(engine, chars, args.most)
    caps = random_engine(3, 512, window=512)
    interactions("a window model at every cap", caps, [chr(33 + i) for i in range(caps.vocab_size)], args.most)
    readings(caps, [chr(33 + i) for i in range(caps.vocab_size)], args.most)
    # A shorter window costs these pages most: each character past the first 128 re-reads 128 (400: ~23 s).
    window_128 = random_engine(3, 512, window=128)
    print(f"\na window model at the caps of size, 128-character window ({workload.Shape.of(window_128).describe()})")
    readings(window_128, [chr(33 + i) for i in range(window_128.vocab_size)], args.most)


if __name__ == "__main__":
    main()
