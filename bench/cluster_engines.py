"""Ray against Dask distributed as the engine that runs charlm's training runs beyond one machine, measured.

    python bench/cluster_engines.py dask      # in an environment with distributed installed
    python bench/cluster_engines.py ray       # in one with ray installed

Each starts a cluster on this machine's loopback (a scheduler or head, and one worker, as their own
command-line tools start them), connects the way the web server would, and runs a stand-in for a training
run: a task that sends 50 progress events back to the server (one every 20 ms), checks a stop flag, and
returns a 5 MB model file. It prints what the choice turns on, as medians of 5 runs: starting the cluster,
the server's memory for the engine's client, the time from submit to the first event, an event's latency,
the 5 MB file's trip back, a stop's time to land, and the cluster's memory (all its processes). Asserts nothing.
"""

from __future__ import annotations

import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EVENTS, EVERY_S, FILE_MB, REPEATS = 50, 0.02, 5, 5


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children, in MB (from /proc)."""
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as status:
                total += next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024
            with open(f"/proc/{p}/task/{p}/children") as children:
                todo += [int(c) for c in children.read().split()]
        except (OSError, StopIteration):
            pass
    return total


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}")


def self_rss() -> float:
    return rss_mb(os.getpid())


# --- Dask ----------------------------------------------------------------------------------------------------

def dask_run(topic: str, stop_name: str) -> bytes:
    from distributed import Event, Queue

    pub, stop = Queue(topic), Event(stop_name)
    for i in range(EVENTS):
        if stop.is_set():
            pub.put(("stopped", i, time.time()))
            return b""
        pub.put(("event", i, time.time()))
        time.sleep(EVERY_S)
    return os.urandom(FILE_MB << 20)


def bench_dask() -> dict:
    before = self_rss()
    import distributed
    from distributed import Client, Event, Queue

    port = free_port()
    folder = tempfile.mkdtemp()
    started = time.perf_counter()
    scheduler = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                                  "--port", str(port), "--dashboard-address", ":0", "--no-show"], cwd=folder,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port)
    worker = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", f"tcp://127.0.0.1:{port}",
                               "--nworkers", "1", "--nthreads", "1", "--resources", "CPU=1",
                               "--dashboard-address", ":0", "--local-directory", folder], cwd=folder,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = Client(f"tcp://127.0.0.1:{port}", timeout=60)
    client.wait_for_workers(1, timeout=60)
    figures = {"engine": f"dask distributed {distributed.__version__}",
               "cluster start (s)": time.perf_counter() - started, "client memory (MB)": self_rss() - before}
    firsts, latencies, backs, stops = [], [], [], []
    for r in range(REPEATS):
        topic, stop_name = f"run-{r}", f"stop-{r}"
        events = Queue(topic, client=client)
        submitted = time.perf_counter()
        future = client.submit(dask_run, topic, stop_name, resources={"CPU": 1}, pure=False)
        seen = 0
        while True:
            kind, i, sent = events.get()
            now = time.time()
            if seen == 0:
                firsts.append(time.perf_counter() - submitted)
            latencies.append(now - sent)
            seen += 1
            if i == EVENTS - 1:
                break
        waited = time.perf_counter()
        data = future.result()
        assert len(data) == FILE_MB << 20
        backs.append(time.perf_counter() - waited)
        # A stop: a second run, stopped after its first event.
        events = Queue(topic + "s", client=client)
        future = client.submit(dask_run, topic + "s", stop_name + "s", resources={"CPU": 1}, pure=False)
        events.get()
        asked = time.perf_counter()
        Event(stop_name + "s", client=client).set()
        future.result()
        stops.append(time.perf_counter() - asked)
    figures |= summary(firsts, latencies, backs, stops)
    figures["cluster memory (MB)"] = rss_mb(scheduler.pid) + rss_mb(worker.pid)
    client.close()
    for process in (worker, scheduler):
        process.terminate()
        process.wait(30)
    shutil.rmtree(folder, ignore_errors=True)
    return figures


# --- Ray -----------------------------------------------------------------------------------------------------

def bench_ray() -> dict:
    before = self_rss()
    import ray
    from ray.util.queue import Queue

    port = free_port()
    folder = tempfile.mkdtemp()
    started = time.perf_counter()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    subprocess.run(["ray", "start", "--head", "--port", str(port), "--num-cpus", "1", "--include-dashboard",
                    "false", "--disable-usage-stats", "--temp-dir", folder], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ray.init(address=f"127.0.0.1:{port}", logging_level="ERROR", log_to_driver=False)
    figures = {"engine": f"ray {ray.__version__}", "cluster start (s)": time.perf_counter() - started,
               "client memory (MB)": self_rss() - before}

    @ray.remote(num_cpus=1)
    def ray_run(events: Queue, stop: Queue) -> bytes:
        for i in range(EVENTS):
            if not stop.empty():
                events.put(("stopped", i, time.time()))
                return b""
            events.put(("event", i, time.time()))
            time.sleep(EVERY_S)
        return os.urandom(FILE_MB << 20)

    firsts, latencies, backs, stops = [], [], [], []
    for _ in range(REPEATS):
        events, stop = Queue(), Queue()
        submitted = time.perf_counter()
        ref = ray_run.remote(events, stop)
        for n in range(EVENTS):
            kind, i, sent = events.get()
            if n == 0:
                firsts.append(time.perf_counter() - submitted)
            latencies.append(time.time() - sent)
        waited = time.perf_counter()
        assert len(ray.get(ref)) == FILE_MB << 20
        backs.append(time.perf_counter() - waited)
        events2, stop2 = Queue(), Queue()
        ref = ray_run.remote(events2, stop2)
        events2.get()
        asked = time.perf_counter()
        stop2.put(True)
        ray.get(ref)
        stops.append(time.perf_counter() - asked)
    figures |= summary(firsts, latencies, backs, stops)
    figures["cluster memory (MB)"] = ray_memory()
    ray.shutdown()
    subprocess.run(["ray", "stop", "--force"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    shutil.rmtree(folder, ignore_errors=True)
    return figures


def ray_memory() -> float:
    """Every ray process's memory here (head, raylet, workers, their helpers)."""
    total = 0.0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if b"ray" in cmdline and int(pid) != os.getpid():
            with open(f"/proc/{pid}/status") as status:
                total += next((int(line.split()[1]) for line in status if line.startswith("VmRSS")), 0) / 1024
    return total


def summary(firsts, latencies, backs, stops) -> dict:
    return {"submit to first event (s)": statistics.median(firsts),
            "event latency, median (ms)": 1000 * statistics.median(latencies),
            "event latency, worst (ms)": 1000 * max(latencies),
            f"{FILE_MB} MB file back (s)": statistics.median(backs),
            "stop lands (s)": statistics.median(stops)}


def main() -> None:
    engine = sys.argv[1] if len(sys.argv) > 1 else "dask"
    figures = bench_dask() if engine == "dask" else bench_ray()
    for name, value in figures.items():
        print(f"{name:<30}{value if isinstance(value, str) else f'{value:.3f}'}")


if __name__ == "__main__":
    main()
