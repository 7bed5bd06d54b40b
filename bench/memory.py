"""Peak training memory: every preset on Nietzsche, and how memory grows with the corpus.

Each figure is the peak resident memory of a fresh training process (bench/train_one.py) that runs a
few steps; the peak comes from the first steps, when activations and optimizer state are allocated.

    python bench/memory.py [--steps 5] [--repeat 30]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from charlm.presets import DEFAULT_PRESET, PRESETS  # noqa: E402

DEFAULT_CORPUS = ROOT.parent / "shared" / "data" / "nietzsche.txt"


def peak(corpus: Path, preset: str, steps: int, repeat: int = 1) -> dict:
    cmd = [sys.executable, str(ROOT / "bench" / "train_one.py"), str(corpus), preset, "--minutes", "10",
           "--repeat", str(repeat), "--eval-chars", "2000", "--set", f"max_steps={steps}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=60, help="the corpus this many times over, for growth (against a sixth of it)")
    args = parser.parse_args()

    print("| preset | peak RSS MB (training on Nietzsche) |\n|---|---|")
    for name in PRESETS:
        print(f"| {name} | {peak(args.corpus, name, args.steps)['peak_rss_mb']:.0f} |", flush=True)
    # Growth is measured between two corpora both well past the chunk size of encoding (1 M characters),
    # whose fixed buffers would otherwise count as growth.
    small = peak(args.corpus, DEFAULT_PRESET, args.steps, args.repeat // 6)
    large = peak(args.corpus, DEFAULT_PRESET, args.steps, args.repeat)
    grown = (large["peak_rss_mb"] - small["peak_rss_mb"]) * 2 ** 20
    extra_chars = large["corpus_chars"] - small["corpus_chars"]
    print(f"\n{DEFAULT_PRESET}: {small['corpus_chars']:,} chars -> {small['peak_rss_mb']:.0f} MB; "
          f"{large['corpus_chars']:,} chars -> {large['peak_rss_mb']:.0f} MB: "
          f"{grown / extra_chars:.2f} bytes per extra corpus character")


if __name__ == "__main__":
    main()
