"""One training run in its own process, so its peak memory is its own; prints a JSON summary on stdout.

python bench/train_one.py CORPUS PRESET --minutes M [--out FILE] [--device cpu] [--eval-interval S]
    [--eval-chars N] [--repeat K] [--set key=value ...]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from charlm.config import MODEL_FIELDS  # noqa: E402
from charlm.text.corpus import load_corpus  # noqa: E402
from charlm.nn.device import set_threads  # noqa: E402
from charlm.presets import get_preset  # noqa: E402
from charlm.train.trainer import train  # noqa: E402


def parse_value(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"true": True, "false": False, "none": None}.get(text.lower(), text)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("corpus")
    parser.add_argument("preset")
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--out")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--eval-interval", type=float, default=30.0)
    parser.add_argument("--eval-chars", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=1, help="the corpus this many times over (memory growth)")
    parser.add_argument("--set", nargs="*", default=[], help="model or train overrides, key=value")
    args = parser.parse_args()

    set_threads()
    rss_start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    text = Path(args.corpus).read_bytes() * args.repeat
    corpus = load_corpus(text, name=Path(args.corpus).name)
    del text
    model_over, train_over = {}, {}
    for item in args.set:
        key, value = item.split("=", 1)
        (model_over if key in MODEL_FIELDS else train_over)[key] = parse_value(value)
    train_over.update(minutes=args.minutes, device=args.device, eval_interval_s=args.eval_interval,
                      eval_chars=args.eval_chars, sample_chars=0)
    preset = get_preset(args.preset)
    model_cfg, train_cfg = preset.model_config(len(corpus.vocab), **model_over), preset.train_config(**train_over)
    started = time.perf_counter()
    said = {}   # the last event's arithmetic and why it was chosen
    remember = lambda event: said.update(arithmetic=event.arithmetic, why=event.arithmetic_why)  # noqa: E731
    result = train(corpus, model_cfg, train_cfg, preset=preset.name, out=args.out, on_progress=remember)
    summary = {
        "preset": args.preset, "overrides": args.set, "minutes": args.minutes,
        "best_val_loss": result.best_val_loss, "final_val_loss": result.final_val_loss,
        "steps": result.steps, "chars_seen": result.chars_seen, "elapsed_s": result.elapsed_s,
        "wall_s": time.perf_counter() - started,
        "history": result.history, "corpus_chars": len(corpus.text),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "start_rss_mb": rss_start / 1024, **said,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
