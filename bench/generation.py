"""Generation speed alone, repeated: medians over several rounds, optionally against another checkout.

bench/run.py times generation once per preset after training; this script times only generation,
in alternating rounds, so two versions of the code can be compared side by side on a noisy machine
(each round a fresh process importing that checkout's charlm, timed by the code below):

    python bench/generation.py checkpoints/demo.safetensors --rounds 5
    python bench/generation.py checkpoints/demo.safetensors --against /tmp/old-checkout \
        --against-model /tmp/old-checkout/checkpoints/demo.pt   # that checkout's charlm, on a file it reads

Both sides time the same weights when the two files hold the same model (a .pt from an older checkout
is read by this one too, so passing that one file as both works).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRIME = "The philosopher "


def chars_per_sec(fn, chars: int, repeats: int = 5) -> float:
    """Median over a few runs: this machine is shared and noisy."""
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        rates.append(chars / (time.perf_counter() - start))
    return statistics.median(rates)


def generation_speeds(path: Path, length: int, repeats: int = 5, device: str = "cpu") -> dict:
    """Characters per second of each way of writing, and a Step click's latency, with whichever charlm is first
    on sys.path. Only what every version has is used (checkpoint.load, the model built from it, generate,
    StepSession), from either layout (packages by role since issue 21, flat before), so this same code times an
    older checkout too."""
    try:                        # first: importing charlm caps numpy's BLAS threads before numpy loads
        from charlm.engine.decoding import DecodeConfig, StepSession, generate
        from charlm.modelfile import checkpoint
        from charlm.nn.model import CharLSTM
        build = CharLSTM.from_checkpoint
    except ImportError:         # the flat layout
        from charlm import checkpoint
        from charlm.decoding import DecodeConfig, StepSession, generate
        build = checkpoint.Checkpoint.build_model
    import torch

    torch.set_num_threads(1)   # as the CLI does: batch-1 stepping is latency-bound
    ckpt = checkpoint.load(path)
    model, vocab, window = build(ckpt, device), ckpt.get_vocab(), ckpt.window

    def write(chars: int, cfg: DecodeConfig, window: int | None = window):
        return lambda: generate(model, vocab, PRIME, chars, cfg, seed=0, window=window)

    beam_len, reread_len = max(50, length // 5), max(50, length // 10)
    speeds = {"greedy": chars_per_sec(write(length, DecodeConfig("greedy")), length, repeats),
              "top_p": chars_per_sec(write(length, DecodeConfig("top-p")), length, repeats),
              "beam5": chars_per_sec(write(beam_len, DecodeConfig("beam", beam_width=5)), beam_len, repeats),
              # The 2017 way for the same model: re-read a 100-character window for every new character.
              "greedy_reread100": chars_per_sec(write(reread_len, DecodeConfig("greedy"), window=100), reread_len,
                                                repeats)}
    session = StepSession(model, vocab, PRIME, DecodeConfig("top-p"), window=window)
    latencies = []
    for _ in range(50):
        start = time.perf_counter()
        session.step()
        session.candidates(10)
        latencies.append((time.perf_counter() - start) * 1000)
    speeds["step_ms"] = statistics.median(latencies)
    return speeds


def one_round(code_root: Path, checkpoint: Path, length: int) -> dict:
    """One round in a fresh process, importing charlm from the given checkout."""
    out = subprocess.run([sys.executable, __file__, "--round", str(code_root), str(checkpoint), "--length",
                          str(length)], capture_output=True, text=True, check=True, cwd=code_root,
                         env={**os.environ, "PYTHONPATH": str(code_root)})
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--length", type=int, default=2000)
    parser.add_argument("--against", type=Path, help="another checkout of this project, timed in alternate rounds")
    parser.add_argument("--against-model", type=Path,
                        help="the model file the other checkout reads (default: the same checkpoint)")
    parser.add_argument("--round", type=Path, metavar="CHECKOUT", help=argparse.SUPPRESS)   # one_round's process
    args = parser.parse_args()
    if args.round:
        sys.path.insert(0, str(args.round))
        print(json.dumps(generation_speeds(args.checkpoint, args.length)))
        return
    checkouts = {"this": (ROOT, args.checkpoint)}
    if args.against:
        checkouts["against"] = (args.against.resolve(), args.against_model or args.checkpoint)
    results = {name: [] for name in checkouts}
    for _ in range(args.rounds):
        for name, (root, model) in checkouts.items():
            results[name].append(one_round(root, model.resolve(), args.length))
    keys = list(results["this"][0])
    print(f"medians of {args.rounds} rounds (each itself a median of 5 runs), {args.checkpoint.name}, batch 1")
    print("| checkout | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 1) + "|")
    for name, rows in results.items():
        cells = [statistics.median(r[k] for r in rows) for k in keys]
        print(f"| {name} | " + " | ".join(f"{c:,.2f}" if c < 10 else f"{c:,.0f}" for c in cells) + " |")
    if args.against:
        ratios = [statistics.median(r[k] for r in results["this"]) / statistics.median(r[k] for r in results["against"])
                  for k in keys]
        print("| ratio | " + " | ".join(f"{r:.2f}x" for r in ratios) + " |")


if __name__ == "__main__":
    main()
