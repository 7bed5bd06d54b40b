"""The hosted demo's first minute: what a visitor sees who presses Start on the Train page with the defaults.

The app's default preset on the built-in Python documentation, with the Train page's default budget and its
evaluation schedule, on one thread (a shared server gives each job one). Prints every evaluation: when it
came, its validation loss, and the sample written there; then the loss at 60 s and the first sample.

    python bench/hosted_minute.py                 # the Train page's defaults
    python bench/hosted_minute.py --minutes 2 --preset tiny
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("CHARLM_THREADS", "1")

from app.train_settings import DEFAULT_MINUTES, eval_interval_s  # noqa: E402
from charlm.text import datasets  # noqa: E402
from charlm.text.corpus import load_corpus  # noqa: E402
from charlm.nn.device import set_threads  # noqa: E402
from charlm.presets import DEFAULT_PRESET, get_preset  # noqa: E402
from charlm.train.trainer import train  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default=DEFAULT_PRESET)
    parser.add_argument("--minutes", type=float, default=DEFAULT_MINUTES)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fp32", action="store_true", help="as on a server whose CPU has no native bf16")
    args = parser.parse_args()
    set_threads()
    import torch
    corpus = load_corpus(datasets.python_docs(), name="python-docs.txt")
    preset = get_preset(args.preset)
    cfg = preset.train_config(minutes=args.minutes, eval_interval_s=eval_interval_s(args.minutes), seed=args.seed,
                              amp=not args.fp32)
    evals, said = [], {}

    def on_progress(event):
        said.update(arithmetic=event.arithmetic, why=event.arithmetic_why, speed=event.chars_per_sec)
        if event.kind == "eval":
            evals.append(event)
            print(f"\n{event.elapsed_s:5.1f} s  step {event.step:4d}  val {event.val_loss:.4f} nats/char "
                  f"({event.val_bits:.3f} bits)\n    " + (event.sample or "").replace("\n", "\n    "), flush=True)

    print(f"{args.preset} on python-docs.txt ({len(corpus.text):,} characters), {args.minutes:g} min, "
          f"an evaluation every {cfg.eval_interval_s:g} s, {torch.get_num_threads()} thread(s)", flush=True)
    train(corpus, preset.model_config(len(corpus.vocab)), cfg, preset=preset.name, on_progress=on_progress)
    at_minute = [e for e in evals if e.elapsed_s <= 61.0]
    print(f"\ncomputing in {said['arithmetic']} ({said['why']}), {said['speed']:,.0f} chars/s")
    if at_minute:
        e = at_minute[-1]
        print(f"validation loss by 60 s: {e.val_loss:.4f} nats/char ({e.val_bits:.3f} bits) at {e.elapsed_s:.1f} s")
    first = evals[0]
    print(f"first evaluation, at {first.elapsed_s:.1f} s ({first.val_loss:.4f} nats/char):\n    "
          + (first.sample or "").replace("\n", "\n    "))


if __name__ == "__main__":
    main()
