"""How many training jobs a server holds: 1 and then N jobs at once in one process, as the app runs them.

    python bench/server_capacity.py                 # the Nietzsche text, cpu-fast, 1 then 2 jobs, 30 s each
    python bench/server_capacity.py --jobs 3 --preset tiny --seconds 20

Each job gets cores / jobs torch threads (what app/training.py gives each of CHARLM_MAX_JOBS). Prints each
job's training characters/s, their sum, and the process's memory growth (RSS, and the peak); asserts
nothing. A visitor's own memory (text, models) is measured by bench/visitor_memory.py.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import charlm  # noqa: E402,F401  (first: it caps numpy's BLAS threads)

from bench.learn import cpu_line  # noqa: E402
from bench.learn_baselines import DEFAULT_TEXT  # noqa: E402
from charlm.text.corpus import load_corpus  # noqa: E402
from charlm.nn.device import cpu_cores, set_threads  # noqa: E402
from charlm.train.jobs import Slots, TrainingJob  # noqa: E402
from charlm.presets import get_preset  # noqa: E402


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_together(corpus, preset_name: str, jobs: int, seconds: float) -> tuple[list[float], float]:
    """jobs runs at once for `seconds`; -> (each one's training chars/s, RSS growth MB while they ran)."""
    set_threads(max(1, cpu_cores() // jobs))
    preset = get_preset(preset_name)
    before = rss_mb()
    slots = Slots(jobs)
    running = []
    with tempfile.TemporaryDirectory() as folder:
        for i in range(jobs):
            train_cfg = preset.train_config(minutes=seconds / 60, seed=i, eval_interval_s=1e9, sample_chars=0,
                                            device="cpu")
            job = TrainingJob(corpus, preset_name, preset.model_config(len(corpus.vocab)), train_cfg,
                              workdir=Path(folder) / f"job{i}")
            running.append(job.start(slots))
        grown = 0.0
        while any(job.is_alive() for job in running):
            grown = max(grown, rss_mb() - before)
            time.sleep(0.5)
        rates = []
        for job in running:
            result = job.snapshot().result
            rates.append(result.chars_seen / max(result.elapsed_s, 1e-9) if result else float("nan"))
    return rates, grown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text", type=Path, default=DEFAULT_TEXT)
    parser.add_argument("--preset", default="cpu-fast")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    corpus = load_corpus(args.text.read_bytes(), name=args.text.name)
    print(f"{cpu_line()}; {args.preset} on {corpus.name}, {args.seconds:g} s per measurement")
    print(f"{'jobs at once':>12}{'threads each':>14}{'chars/s each':>26}{'sum':>10}{'RSS growth MB':>15}")
    for jobs in sorted({1, args.jobs}):
        rates, grown = run_together(corpus, args.preset, jobs, args.seconds)
        each = ", ".join(f"{r:,.0f}" for r in rates)
        print(f"{jobs:>12}{max(1, cpu_cores() // jobs):>14}{each:>26}{sum(rates):>10,.0f}{grown:>15.0f}")
    print(f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
