"""Memory and time at scale: a generated text of 200 MB, encoded once, then trained by 1 and 2 processes.

Each figure comes from a fresh process that watches itself (/proc/self/status, every 20 ms) and reports
when it ends: VmHWM, its peak resident memory, which counts the pages of the memory-mapped ids it touched;
the peak of RssAnon, its own memory (what it alone holds); and the peak of RssFile, the file pages it maps
(the ids, which every process shares through the operating system's page cache, and the libraries).
Training runs a few steps: it measures memory, not quality. Every process uses one thread (CHARLM_THREADS=1).

    python bench/scale.py [--mb 200] [--dir /tmp/charlm-scale] [--epochs 0.0001] [--against /tmp/old-main]

`--against DIR` also trains with another checkout (e.g. `git archive HEAD | tar -x -C /tmp/old-main`),
which reads the whole text into every process. The text is written to --dir, never into the project.
"""

from __future__ import annotations

import argparse
import json
import os
import runpy
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORDS = ("river stone light garden walks under over slowly bright the a of and The night, morning; quiet house. "
         "Leaves fall").split()


def generate(path: Path, size: int) -> float:
    """A text of `size` bytes: words drawn at random (seeded), a line break after about one in ten. -> seconds."""
    import numpy as np
    started = time.perf_counter()
    words = np.array(WORDS)
    rng = np.random.default_rng(0)
    written = 0
    with open(path, "w", encoding="ascii") as f:
        while written < size:
            picks = words[rng.integers(0, len(words), 200_000)]
            ends = np.where(rng.random(len(picks)) < 0.1, "\n", " ")
            chunk = "".join(np.char.add(picks, ends).tolist())[: size - written]
            f.write(chunk)
            written += len(chunk)
    return time.perf_counter() - started


# --- inside a measured process --------------------------------------------------------------------------


def _status_mb() -> dict:
    fields = {}
    with open("/proc/self/status") as f:
        for line in f:
            name, _, value = line.partition(":")
            if name in ("VmHWM", "RssAnon", "RssFile"):
                fields[name] = int(value.split()[0]) / 1024
    return fields


class Watch:
    """The peaks of this process's own memory (RssAnon) and mapped files (RssFile), sampled every 20 ms."""

    def __init__(self):
        self.peaks = {"RssAnon": 0.0, "RssFile": 0.0}
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self):
        while True:
            now = _status_mb()
            for name in self.peaks:
                self.peaks[name] = max(self.peaks[name], now[name])
            if self.done.wait(0.02):
                return

    def stop(self) -> dict:
        self.done.set()
        self.thread.join()
        self._sample()   # once more, at the end
        return {"peak_mb": _status_mb()["VmHWM"], "own_peak_mb": self.peaks["RssAnon"],
                "mapped_peak_mb": self.peaks["RssFile"]}


def worker(report: Path, job: list[str]) -> None:
    """Run one job in this process, then write what it cost to report (one file per torchrun rank)."""
    if job[0] in ("load", "encode"):
        import charlm  # noqa: F401  (and torch, through it: imports are not the job)
        from charlm.text import encoded
        from charlm.text.corpus import load_corpus
    watch, started, status = Watch(), time.perf_counter(), 0
    if job[0] == "load":              # the text read into memory, as a corpus always was before
        load_corpus(Path(job[1]).read_bytes(), name=Path(job[1]).name)
    elif job[0] == "encode":          # into the cache, or found there
        files = encoded.corpus_files([job[1]])
        name = encoded.corpus_name([job[1]], files)
        encoded.prepare(files, encoded.cache_path(files, Path(job[2]), name), name)
    else:                             # python -m charlm ARGS, from whichever checkout PYTHONPATH names
        sys.argv = ["charlm", *job[1:]]
        try:
            runpy.run_module("charlm", run_name="__main__")
        except SystemExit as end:
            status = end.code or 0
    seconds = time.perf_counter() - started
    figures = {"rank": int(os.environ.get("RANK", "0")), "seconds": seconds, "status": status, **watch.stop()}
    report.with_name(f"{report.stem}.rank{figures['rank']}.json").write_text(json.dumps(figures))


# --- the benchmark ----------------------------------------------------------------------------------------


def measure(name: str, job: list[str], folder: Path, processes: int = 1, checkout: Path = ROOT) -> list[dict]:
    """Run job in fresh processes (torchrun for several) and collect each one's report."""
    report = folder / f"{name}.json"
    for old in folder.glob(f"{name}.rank*.json"):
        old.unlink()
    me = [str(Path(__file__).resolve()), "--worker", str(report), *job]
    if processes > 1:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}", *me]
    else:
        command = [sys.executable, *me]
    env = {**os.environ, "PYTHONPATH": str(checkout), "OMP_NUM_THREADS": "1", "CHARLM_THREADS": "1"}
    run = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"{name} failed:\n{run.stderr[-3000:]}")
    return [json.loads(path.read_text()) for path in sorted(folder.glob(f"{name}.rank*.json"))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200, help="size of the generated text, in millions of bytes")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/charlm-scale"))
    parser.add_argument("--epochs", type=float, default=0.0001, help="training budget (0.0001 of 180 M: ~9 steps)")
    parser.add_argument("--against", type=Path, help="another checkout to train the same way, for comparison")
    args = parser.parse_args()
    folder = args.dir.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    text = folder / "big.txt"
    if not text.exists() or text.stat().st_size != args.mb * 10**6:
        print(f"writing {text} ({args.mb} MB) in {generate(text, args.mb * 10**6):.1f} s", flush=True)
    for cache in folder.glob("big.txt.*.corpus"):
        cache.unlink()
    train = ["charlm", "train", str(text), "--preset", "tiny", "--epochs", str(args.epochs), "--device", "cpu",
             "--quiet"]
    rows = [("text read into memory (load_corpus, as before)", measure("load", ["load", str(text)], folder)),
            ("encode into the cache (first run)", measure("encode", ["encode", str(text), str(folder)], folder)),
            ("find the cache (later runs: hash the bytes)", measure("found", ["encode", str(text), str(folder)], folder)),
            ("train, 1 process (cache found)", measure("train1", [*train, "--out", str(folder / "one.safetensors")],
                                                       folder)),
            ("train, 2 processes (torchrun, Gloo)", measure("train2", [*train, "--out", str(folder / "two.safetensors")],
                                                             folder, processes=2))]
    if args.against:
        rows.append((f"train, 1 process, {args.against.name} (text in memory)",
                     measure("against", [*train, "--out", str(folder / "against.safetensors")], folder,
                             checkout=args.against.resolve())))
    print(f"\n{args.mb} MB of text; memory per process in MB; seconds: the job's own (a command's include "
          "starting Python and torch)\n")
    print("| what | process | peak RSS (VmHWM) | peak own (RssAnon) | peak mapped (RssFile) | seconds |")
    print("|---|---|---|---|---|---|")
    for what, reports in rows:
        for r in reports:
            print(f"| {what} | {r['rank']} | {r['peak_mb']:,.0f} | {r['own_peak_mb']:,.0f} | "
                  f"{r['mapped_peak_mb']:,.0f} | {r['seconds']:.1f} |")
    print("\n" + json.dumps({what: reports for what, reports in rows}))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:   # a measured process: --worker REPORT JOB... (the job's own flags follow)
        worker(Path(sys.argv[2]), sys.argv[3:])
    else:
        main()
