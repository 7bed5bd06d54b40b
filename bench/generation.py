"""Generation speed alone, repeated: medians over several rounds, optionally against another checkout.

bench/run.py times generation once per preset after training; this script times only generation,
in alternating rounds, so two versions of the code can be compared side by side on a noisy machine:

    python bench/generation.py checkpoints/demo.pt --rounds 5
    python bench/generation.py checkpoints/demo.pt --against /tmp/old-checkout   # that checkout's charlm too
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# One round in a fresh process, importing charlm (and bench/run.py's timing) from the given checkout.
ROUND = """
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import charlm.checkpoint, charlm.decoding  # from the checkout under test, before run.py puts its own first
sys.path.insert(0, sys.argv[2])
import run
print(json.dumps(run.generation_speeds(Path(sys.argv[3]), int(sys.argv[4]))))
"""


def one_round(code_root: Path, checkpoint: Path, length: int) -> dict:
    out = subprocess.run([sys.executable, "-c", ROUND, str(code_root), str(ROOT / "bench"), str(checkpoint),
                          str(length)], capture_output=True, text=True, check=True, cwd=code_root)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--length", type=int, default=2000)
    parser.add_argument("--against", type=Path, help="another checkout of this project, timed in alternate rounds")
    args = parser.parse_args()
    checkouts = {"this": ROOT} | ({"against": args.against.resolve()} if args.against else {})
    results = {name: [] for name in checkouts}
    for _ in range(args.rounds):
        for name, root in checkouts.items():
            results[name].append(one_round(root, args.checkpoint.resolve(), args.length))
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
