"""Training speed through the command line, this checkout against another, in alternate rounds.

Each round trains the default preset for a fixed number of characters (--epochs on a slice of the text) in a
fresh `python -m charlm train` process, in fp32 so a CPU with or without bf16 compares alike, and reads the
training rate the run printed at its last step. The command line is the same in every version, so this times
an older checkout (a flat charlm/) as well as this one. Run by hand:

    python bench/train_speed.py ../shared/data/nietzsche.txt --against /tmp/old-checkout [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RATE = re.compile(r"([\d,]+) chars/s")


def one_round(checkout: Path, text: Path, epochs: float) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        run = subprocess.run([sys.executable, "-m", "charlm", "train", str(text), "--epochs", str(epochs), "--fp32",
                              "--quiet", "--seed", "0", "--out", str(Path(folder) / "m.safetensors")],
                             cwd=checkout, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(checkout)})
        wall = time.perf_counter() - start
    if run.returncode != 0:
        raise SystemExit(f"{checkout}: {run.stderr[-2000:]}")
    rates = [int(found.replace(",", "")) for found in RATE.findall(run.stderr)]
    return {"chars_per_s": rates[-1], "wall_s": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("text", type=Path)
    parser.add_argument("--against", type=Path, required=True, help="another checkout of this project")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--chars", type=int, default=200_000, help="characters of the text to train on")
    parser.add_argument("--epochs", type=float, default=0.5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        text = Path(folder) / "slice.txt"
        text.write_text(args.text.read_text(encoding="utf-8")[:args.chars], encoding="utf-8")
        results = {"this": [], "against": []}
        for _ in range(args.rounds):
            for name, checkout in (("this", ROOT), ("against", args.against.resolve())):
                results[name].append(one_round(checkout, text, args.epochs))
    print("| checkout | chars/s (median) | wall s (median) | rounds |")
    print("|---|---|---|---|")
    for name, rounds in results.items():
        print(f"| {name} | {statistics.median(r['chars_per_s'] for r in rounds):,.0f} "
              f"| {statistics.median(r['wall_s'] for r in rounds):.1f} | {len(rounds)} |")


if __name__ == "__main__":
    main()
