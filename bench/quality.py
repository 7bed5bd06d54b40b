"""Quality per minute, side by side in one run: the default before issue 13 against the default now, with and
without bf16 autocast where this CPU has it natively; three seeds each, interleaved so a busy spell on a shared
machine falls on every variant alike. Prints each run, the medians, and this CPU's flags.

    python bench/quality.py                          # Nietzsche, 5 minutes, seeds 0 1 2 (about 50 minutes)
    python bench/quality.py --minutes 1 --seeds 0    # a quick look

The default is run exactly as a person runs it: `python -m charlm train TEXT --minutes 5 --seed S`.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from charlm.train import precision  # noqa: E402
from charlm.nn.device import cpu_cores  # noqa: E402
from charlm.units import LN2  # noqa: E402

DEFAULT_CORPUS = ROOT.parent / "shared" / "data" / "nietzsche.txt"
LOG = ROOT / "bench" / "quality.jsonl"

# The cpu-fast recipe as it was before issue 13 (BENCHMARKS.md: 1.2873-1.2933 nats/char in 5 minutes):
# every setting issue 13 changed, at its old value; fp32, as the trainer then always used on a CPU.
BEFORE = ["hidden_size=384", "dropout=0.1", "weight_drop=0.0", "embed_drop=0.0", "average_from=none", "amp=false",
          "lr=0.008", "batch_size=32", "seq_len=64", "weight_decay=0.1", "warmup_steps=10", "grad_clip=5.0"]


def cpu_description() -> str:
    """The CPU's model, its cores here and the flags that decide the arithmetic, as lscpu would name them."""
    model = "unknown CPU"
    try:
        model = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "avx512_vnni", "fma")
    flags = " ".join(flag for flag in wanted if flag in precision.cpu_flags()) or "none of " + " ".join(wanted)
    return f"{model}, {cpu_cores()} cores here; flags: {flags}; native bf16: {precision.native_bf16()}"


def run_before(corpus: Path, minutes: float, seed: int) -> dict:
    cmd = [sys.executable, str(ROOT / "bench" / "train_one.py"), str(corpus), "cpu-fast", "--minutes", str(minutes),
           "--set", *BEFORE, f"seed={seed}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=True)
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    last = summary["history"][-1]
    return {"val_loss": summary["best_val_loss"], "chars_seen": summary["chars_seen"],
            "chars_per_s": summary["chars_seen"] / last["train_s"], "arithmetic": summary.get("arithmetic"),
            "why": summary.get("why"), "val_loss_trained": None}


def run_now(corpus: Path, minutes: float, seed: int, fp32: bool, keep: Path | None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = (keep or Path(tmp)) / f"now-seed{seed}{'-fp32' if fp32 else ''}.safetensors"
        cmd = [sys.executable, "-m", "charlm", "train", str(corpus), "--minutes", str(minutes), "--seed", str(seed),
               "--out", str(out), "--quiet"] + (["--fp32"] if fp32 else [])
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=True)
        from charlm.modelfile import checkpoint
        saved = checkpoint.load(out)
    said = re.search(r"computing in (.+?) \((.*)\)\n", proc.stderr)
    best = float(re.search(r"best validation loss ([0-9.]+) nats/char", proc.stderr).group(1))
    last = saved.history[-1]
    return {"val_loss": best, "chars_seen": saved.progress["chars_seen"],
            "chars_per_s": saved.progress["chars_seen"] / last["train_s"],
            "arithmetic": said.group(1) if said else None, "why": said.group(2) if said else None,
            "val_loss_trained": last.get("val_loss_trained")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--note", default="")
    parser.add_argument("--keep", type=Path, help="keep the default's models (and their resume files) in this folder")
    args = parser.parse_args()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)

    variants = {"before (issue 12's default, fp32)": lambda seed: run_before(args.corpus, args.minutes, seed),
                "now (the probe chooses)": lambda seed: run_now(args.corpus, args.minutes, seed, False, args.keep)}
    if precision.native_bf16():
        variants["now, --fp32"] = lambda seed: run_now(args.corpus, args.minutes, seed, True, args.keep)
    print(cpu_description(), flush=True)
    results = {name: [] for name in variants}
    for seed in args.seeds:
        for name, run in variants.items():
            started = time.strftime("%Y-%m-%d %H:%M")
            row = run(seed)
            results[name].append(row)
            trained = f"  (weights as trained {row['val_loss_trained']:.4f})" if row["val_loss_trained"] else ""
            print(f"seed {seed}  {name:36s} {row['val_loss']:.4f} nats/char  {row['chars_seen']:>10,} chars  "
                  f"{row['chars_per_s']:>7,.0f} chars/s  {row['arithmetic']} ({row['why']}){trained}", flush=True)
            with LOG.open("a") as f:
                f.write(json.dumps({"variant": name, "seed": seed, "minutes": args.minutes, "when": started,
                                    "corpus": args.corpus.name, "note": args.note, **row}) + "\n")
    print("\n| variant | median nats/char (bits) | each seed | median chars/s |\n|---|---|---|---|")
    for name, rows in results.items():
        median = statistics.median(r["val_loss"] for r in rows)
        each = ", ".join(f"{r['val_loss']:.4f}" for r in rows)
        speed = statistics.median(r["chars_per_s"] for r in rows)
        print(f"| {name} | {median:.4f} ({median / LN2:.3f}) | {each} | {speed:,.0f} |")


if __name__ == "__main__":
    main()
