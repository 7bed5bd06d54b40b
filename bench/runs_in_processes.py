"""Runs in the web server's threads (the old design) against runs in worker processes (today's), side by side.

    python bench/runs_in_processes.py                  # two runs of the default preset on the Python docs, 30 s
    python bench/runs_in_processes.py --seconds 20 --writes 20

Each design runs in a fresh Python process standing in for the web server (numpy's engine and the shipped demo
model loaded, as a server that writes has them). It measures: the server's memory idle, with one run and with
two (its own, and with its worker processes); a second visitor's Write (200 characters with the demo model)
while two runs train, median and worst; each run's training speed; the time from Start to its first progress
event; and the memory held once the runs have ended. Each run gets one torch thread (2 cores, 2 slots, as the
app shares them). Prints a table and the CPU's flags; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def tree_mb(pid: int) -> float:
    """Memory of a process and all its descendants, in MB: their proportional sets (PSS), so pages a forked
    worker shares with the fork server count once, not once per process."""
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            rollup = Path(f"/proc/{p}/smaps_rollup").read_text()
            total += next(int(line.split()[1]) for line in rollup.splitlines() if line.startswith("Pss:")) / 1024
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, StopIteration):
            pass
    return total


def own_mb() -> float:
    status = Path("/proc/self/status").read_text()
    return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS")) / 1024


def one_design(separate: bool, seconds: float, writes: int) -> dict:
    """In this process (the stand-in server): two runs as the app starts them, and a visitor writing beside them."""
    import os

    import charlm  # noqa: F401  (first: it caps numpy's BLAS threads)
    import numpy as np

    from charlm.engine.decoding import engine_for
    from charlm.engine.sampling import DecodeConfig, write
    from charlm.modelfile import checkpoint
    from charlm.presets import DEFAULT_PRESET, get_preset
    from charlm.text import datasets
    from charlm.text.corpus import load_corpus
    from charlm.train.jobs import TrainingJob

    engine = engine_for(checkpoint.load(ROOT / "checkpoints" / "demo.safetensors"))
    prime = [1, 2, 3]
    write(engine, prime, 200, DecodeConfig(), np.random.default_rng(0))   # warm: the first write pays for imports
    corpus = load_corpus(datasets.python_docs(), name="python-docs.txt")
    preset = get_preset(DEFAULT_PRESET)
    figures = {"design": "processes" if separate else "threads", "idle (MB)": own_mb()}
    if not separate:
        os.environ["CHARLM_THREADS"] = "1"   # the old design: the app set torch's threads process-wide
        from charlm.nn.device import set_threads
        set_threads(1)

    def start() -> tuple[TrainingJob, float]:
        job = TrainingJob(corpus, DEFAULT_PRESET, preset.model_config(len(corpus.vocab)),
                          preset.train_config(minutes=seconds / 60), workdir=tempfile.mkdtemp(), separate=separate,
                          threads=1, processes=2)
        return job.start(), time.perf_counter()

    def first_event(job, started) -> float:
        while job.snapshot().latest is None and job.is_alive():
            time.sleep(0.01)
        return time.perf_counter() - started

    first, started = start()
    figures["start to first event, 1st run (s)"] = first_event(first, started)
    figures["one run: server (MB)"], figures["one run: all processes (MB)"] = own_mb(), tree_mb(os.getpid())
    second, started = start()
    figures["start to first event, 2nd run (s)"] = first_event(second, started)
    time.sleep(2)
    figures["two runs: server (MB)"], figures["two runs: all processes (MB)"] = own_mb(), tree_mb(os.getpid())
    latencies = []
    for i in range(writes):   # a second visitor's Write, while both train
        began = time.perf_counter()
        write(engine, prime, 200, DecodeConfig(), np.random.default_rng(i))
        latencies.append(time.perf_counter() - began)
        if not (first.is_alive() and second.is_alive()):
            break
    figures["Write 200 chars, median (s)"] = statistics.median(latencies)
    figures["Write 200 chars, worst (s)"] = max(latencies)
    figures["writes measured"] = len(latencies)
    for job in (first, second):
        job.join()
    speeds = [job.snapshot().latest.chars_per_sec for job in (first, second)]
    figures["training chars/s per run (mean of 2)"] = sum(speeds) / 2
    time.sleep(1)
    figures["runs ended: server (MB)"], figures["runs ended: all processes (MB)"] = own_mb(), tree_mb(os.getpid())
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--writes", type=int, default=20)
    parser.add_argument("--design", choices=("threads", "processes"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.design:
        print(json.dumps(one_design(args.design == "processes", args.seconds, args.writes)))
        return
    from bench.learn import cpu_line

    rows = []
    for design in ("threads", "processes"):
        done = subprocess.run([sys.executable, __file__, "--design", design, "--seconds", str(args.seconds),
                               "--writes", str(args.writes)], capture_output=True, text=True, check=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(cpu_line())
    print(f"{'':<40}{rows[0]['design']:>12}{rows[1]['design']:>12}")
    for name in rows[0]:
        if name != "design":
            print(f"{name:<40}" + "".join(f"{row[name]:>12.3f}" if isinstance(row[name], float)
                                          else f"{row[name]:>12}" for row in rows))


if __name__ == "__main__":
    main()
