"""Tuning runs for the default preset: each config trained in its own process, results appended to a log.

This machine is shared, so wall-clock budgets are noisy while other work runs; a config can instead be
given a budget in characters (`--chars`, converted to optimizer steps), which gives the same result
however busy the machine is. Throughput is measured separately (bench/run.py) on a quiet machine.

    python bench/tune.py --chars 3800000 "hidden_size=256 num_layers=2 batch_size=64 seq_len=128" ...
    python bench/tune.py --minutes 5 "hidden_size=256 num_layers=2"
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = ROOT.parent / "shared" / "data" / "nietzsche.txt"
LOG = ROOT / "bench" / "tuning.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("configs", nargs="+", help='overrides as one quoted string each, "key=value key=value"')
    parser.add_argument("--preset", default="cpu-fast")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    budget = parser.add_mutually_exclusive_group(required=True)
    budget.add_argument("--chars", type=int, help="training characters (targets) per config")
    budget.add_argument("--minutes", type=float)
    parser.add_argument("--note", default="")
    args = parser.parse_args()

    for config in args.configs:
        settings = dict(item.split("=", 1) for item in config.split())
        sets = config.split()
        minutes = args.minutes or 60.0
        if args.chars:
            # The step budget that covers the characters; batch and sequence come from the config or preset.
            sys.path.insert(0, str(ROOT))
            from charlm.presets import get_preset
            recipe = get_preset(args.preset).train
            per_step = int(settings.get("batch_size", recipe.batch_size)) * int(settings.get("seq_len", recipe.seq_len))
            sets.append(f"max_steps={max(1, args.chars // per_step)}")
        extra = ["--set", *sets, "--eval-interval", "600"]
        cmd = [sys.executable, str(ROOT / "bench" / "train_one.py"), str(args.corpus), args.preset,
               "--minutes", str(minutes), *extra]
        started = time.time()
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        if proc.returncode != 0:
            print(f"{config}: failed\n{proc.stderr[-2000:]}", flush=True)
            continue
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        row = {"config": config, "preset": args.preset, "chars_budget": args.chars, "minutes_budget": args.minutes,
               "val_loss": result["best_val_loss"], "steps": result["steps"], "chars_seen": result["chars_seen"],
               "train_s": result["history"][-1]["train_s"], "peak_rss_mb": result["peak_rss_mb"],
               "val_loss_trained": result["history"][-1].get("val_loss_trained"),
               "arithmetic": result.get("arithmetic"), "why": result.get("why"),
               "when": time.strftime("%Y-%m-%d %H:%M", time.localtime(started)), "note": args.note}
        with LOG.open("a") as f:
            f.write(json.dumps(row) + "\n")
        trained = f" (as trained {row['val_loss_trained']:.4f})" if row["val_loss_trained"] else ""
        print(f"{row['val_loss']:.4f} nats/char{trained} {row['arithmetic']}  {row['chars_seen']:>9,} chars  {row['train_s']:6.0f} s  "
              f"{row['chars_seen'] / row['train_s']:8,.0f} chars/s  | {config}", flush=True)


if __name__ == "__main__":
    main()
