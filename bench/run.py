"""The benchmark table: quality per minute, training speed, generation speed, memory and start-up.

Every figure for every preset comes from the same run of this script, one process at a time, so the
rows compare side by side. Run by hand (it takes about (minutes + 1) x presets):

    python bench/run.py                                  # 5 minutes each, default preset vs seed-2017
    python bench/run.py --minutes 1 --presets cpu-fast   # a quicker look
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from charlm.modelfile import checkpoint  # noqa: E402
from charlm.nn.device import cpu_cores  # noqa: E402
from charlm.presets import DEFAULT_PRESET  # noqa: E402
from charlm.units import LN2  # noqa: E402
from generation import generation_speeds  # noqa: E402  (bench/ is this script's folder: one copy of the timing)
DEFAULT_CORPUS = ROOT.parent / "shared" / "data" / "nietzsche.txt"


def matmul_peak(dtype: torch.dtype, n: int = 1024, seconds: float = 2.0) -> float:
    """Achieved GFLOP/s of a square matrix multiply: the ceiling training is measured against."""
    a = torch.randn(n, n).to(dtype)
    b = torch.randn(n, n).to(dtype)
    for _ in range(3):
        a @ b
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        count += 1
    return 2 * n ** 3 * count / (time.perf_counter() - start) / 1e9


def train_flops_per_char(cfg: dict) -> float:
    """Multiply-adds per character of the LSTM layers and head, x2 for FLOPs, x3 for forward + backward."""
    hidden, layers, vocab = cfg["hidden_size"], cfg["num_layers"], cfg["vocab_size"]
    first_input = cfg["embed_dim"] if cfg["input_mode"] == "embedding" else 1
    macs = 4 * hidden * (first_input + hidden) + (layers - 1) * 4 * hidden * 2 * hidden + hidden * vocab
    return 6 * macs


def run_training(corpus: Path, preset: str, minutes: float, out: Path | None, extra: list[str], device: str) -> dict:
    cmd = [sys.executable, str(ROOT / "bench" / "train_one.py"), str(corpus), preset, "--minutes", str(minutes),
           "--device", device, *extra]
    if out:
        cmd += ["--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"training {preset} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def time_to(history: list[dict], target: float) -> float | None:
    """Training seconds (evaluations excluded) until the validation loss first reached target."""
    for row in history:
        if row["val_loss"] <= target:
            return row.get("train_s", row["elapsed_s"])
    return None


def first_char_seconds(path: Path, repeats: int = 3) -> float:
    """Median seconds from starting `python -m charlm generate` to its first character on stdout."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "charlm", "generate", str(path), "--length", "200"],
                                stdout=subprocess.PIPE, cwd=ROOT)
        proc.stdout.read(1)
        times.append(time.perf_counter() - start)
        proc.communicate()
    return statistics.median(times)


def fmt(value, spec: str, missing: str = "-") -> str:
    return missing if value is None else format(value, spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--presets", default=f"{DEFAULT_PRESET},seed-2017")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--gen-length", type=int, default=2000)
    parser.add_argument("--gen-device", default="cpu", help="where generation is timed (a GPU model loads on CPU too)")
    parser.add_argument("--gen-repeats", type=int, default=5, help="generation timings are the median of this many")
    parser.add_argument("--workdir", type=Path, default=ROOT / "runs" / "bench")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args()
    if not args.corpus.is_file():
        raise SystemExit(f"no corpus at {args.corpus}; pass --corpus PATH")
    args.workdir.mkdir(parents=True, exist_ok=True)

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"device {args.device}", flush=True)
    peaks = {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16)}
    print(f"matmul peak: fp32 {peaks['fp32']:.0f} GFLOP/s, bf16 {peaks['bf16']:.0f} GFLOP/s", flush=True)

    rows = []
    for preset in args.presets.split(","):
        out = args.workdir / f"{preset}.pt"
        print(f"\n== {preset}: {args.minutes} min training ...", flush=True)
        full = run_training(args.corpus, preset, args.minutes, out, [], args.device)
        # A short run with dense, smaller evaluations times the first few seconds precisely.
        early = run_training(args.corpus, preset, min(0.5, args.minutes), None,
                             ["--eval-interval", "1", "--eval-chars", "20000"], args.device)
        ckpt = checkpoint.load(out)
        cfg = ckpt.model_config
        cps = full["chars_seen"] / max(full["history"][-1]["train_s"], 1e-9)
        flops = train_flops_per_char(cfg) * cps / 1e9
        speeds = generation_speeds(out, args.gen_length, args.gen_repeats, args.gen_device)
        torch.set_num_threads(cpu_cores())   # generation_speeds used one thread, as the CLI does
        row = {
            "preset": preset, "params": sum(v.numel() for v in ckpt.state_dict.values()),
            "val_loss": full["best_val_loss"], "chars_per_sec": cps, "gflops": flops,
            "fp32_share": flops / peaks["fp32"], "bf16_share": flops / peaks["bf16"],
            "to_2_80_s": time_to(early["history"], 2.80) or time_to(full["history"], 2.80),
            "to_1_25_s": time_to(full["history"], 1.25),
            "peak_rss_mb": full["peak_rss_mb"], "first_char_s": first_char_seconds(out), **speeds,
            "history": full["history"], "steps": full["steps"],
        }
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "history"}), flush=True)

    print(f"\nNietzsche, last 10% as validation; {args.minutes:g} min of training per preset; "
          f"matmul peak fp32 {peaks['fp32']:.0f} / bf16 {peaks['bf16']:.0f} GFLOP/s\n")
    header = ("| preset | params | val nats/char (bits) | to 2.80 | to 1.25 | train chars/s | GFLOP/s (fp32 %, bf16 %) "
              "| greedy c/s | top-p c/s | beam-5 c/s | 2017 re-read c/s | step ms | peak RSS MB | first char s |")
    print(header)
    print("|" + "|".join(["---"] * (header.count("|") - 1)) + "|")
    for r in rows:
        print(f"| {r['preset']} | {r['params'] / 1e6:.2f}M | {r['val_loss']:.4f} ({r['val_loss'] / LN2:.3f}) "
              f"| {fmt(r['to_2_80_s'], '.1f', 'not reached')}{' s' if r['to_2_80_s'] is not None else ''} | {fmt(r['to_1_25_s'], '.0f', 'not reached')}"
              f"{' s' if r['to_1_25_s'] is not None else ''} | {r['chars_per_sec']:,.0f} "
              f"| {r['gflops']:.1f} ({r['fp32_share']:.0%}, {r['bf16_share']:.0%}) | {r['greedy']:,.0f} "
              f"| {r['top_p']:,.0f} | {r['beam5']:,.0f} | {r['greedy_reread100']:,.0f} | {r['step_ms']:.1f} "
              f"| {r['peak_rss_mb']:.0f} | {r['first_char_s']:.2f} |")
    if args.json:
        args.json.write_text(json.dumps({"peaks": peaks, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
