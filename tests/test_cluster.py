"""Training on a Dask cluster (charlm.train.cluster): a scheduler and a worker started on this machine's loopback
as an operator starts them, the app pointed at it with CHARLM_CLUSTER."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from charlm.train import cluster
from charlm.train.jobs import TrainingJob

from helpers import LONG, choose_text, configs, job_of, poll, poll_until, start

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory):
    """-> (the scheduler's address, the worker's PID): `dask scheduler`, and `dask worker --no-nanny` with 2 CPUs."""
    folder = tmp_path_factory.mktemp("cluster")
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}   # the cluster runs charlm's code: installed there, or on its path
    head = detached([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port",
                     str(port), "--dashboard-address", ":0", "--no-show"], folder, env)
    worker = detached([sys.executable, "-m", "distributed.cli.dask_worker", f"tcp://127.0.0.1:{port}", "--no-nanny",
                       "--nthreads", "2", "--resources", "CPU=2", "--dashboard-address", ":0", "--local-directory",
                       str(folder)], folder, env)
    address = f"tcp://127.0.0.1:{port}"
    try:
        cluster.client(address).wait_for_workers(1, timeout=60)
        yield address, worker
    finally:
        cluster.close(address)
        for pid in (worker, head):
            end(pid)


def end(pid: int, grace_s: float = 10.0) -> None:
    """Ask a detached process to end, and kill it if it is still there after grace_s: a dask worker can sit on
    SIGTERM while its goodbye to a scheduler goes unanswered (seen: one outlived the test session)."""
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while alive(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            return
        time.sleep(0.1)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def detached(command: list[str], folder: Path, env: dict) -> int:
    """Start a command as another machine's would run: not a child of this process (its shell exits at once,
    so it belongs to init). -> its PID."""
    shell = subprocess.run(["sh", "-c", '"$@" >/dev/null 2>&1 & echo $!', "sh", *command], cwd=folder, env=env,
                           capture_output=True, text=True, check=True)
    return int(shell.stdout)


def ancestors(pid: int) -> list[int]:
    """The process's parent, its parent's parent, ... up to init."""
    chain = []
    while pid > 1:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        pid = int(fields[1])
        chain.append(pid)
    return chain


def test_a_run_trains_on_the_clusters_worker_and_its_files_come_back(scheduler, periodic_corpus, tmp_path):
    address, worker_pid = scheduler
    job = TrainingJob(periodic_corpus, "tiny", *configs(periodic_corpus, max_steps=30), workdir=tmp_path,
                      cluster=address, threads=1)
    job.start()
    poll(lambda: job.pid is not None, deadline_s=60, what="the run's start on the cluster")
    family = ancestors(job.pid)
    assert worker_pid in family and os.getpid() not in family   # the worker's process tree, not ours
    job.join(timeout=120)
    snap = job.snapshot()
    assert snap.status == "done", snap.error
    assert snap.result.steps == 30 and snap.result.best_path == job.out and job.out.exists()
    assert snap.result.last_path == tmp_path / "model.last.pt" and snap.result.last_path.exists()
    assert set(snap.checkpoints) == {str(job.out), str(tmp_path / "model.last.pt")}   # named here, not there


def test_a_run_killed_on_the_cluster_is_reported_failed_with_why(scheduler, periodic_corpus, tmp_path):
    job = TrainingJob(periodic_corpus, "tiny", *configs(periodic_corpus, **LONG), workdir=tmp_path,
                      cluster=scheduler[0], threads=1)
    job.start()
    poll(lambda: job.pid is not None and job.snapshot().latest is not None, deadline_s=60, what="a first step")
    os.kill(job.pid, signal.SIGKILL)
    poll(lambda: job.snapshot().status == "error", deadline_s=15, what="the run reported as failed")
    assert job.snapshot().error == ("the run's process was killed by SIGKILL (the machine may have run out of "
                                    "memory) before it finished")


def test_the_app_trains_on_the_cluster_stops_there_and_its_model_reaches_generate(scheduler, visitor, monkeypatch):
    address, worker_pid = scheduler
    monkeypatch.setenv("CHARLM_CLUSTER", address)
    at = start(choose_text(visitor()), minutes=1.0)
    job = job_of(at)
    assert job.cluster == address
    poll_until(at, lambda at: job.pid is not None and job.snapshot().latest is not None
               and job.best_checkpoint() is not None, timeout=90)
    assert worker_pid in ancestors(job.pid) and os.getpid() not in ancestors(job.pid)
    at.button(key="stop").click().run()
    poll(lambda: not job.is_alive(), deadline_s=30, what="the run's end")
    with pytest.raises(ProcessLookupError):   # stopped there: its process on the worker has ended
        os.kill(job.pid, 0)
    assert job.snapshot().status == "stopped" and job.snapshot().result.stopped
    at.switch_page("app/pages/generate.py").run()
    assert not at.exception
    picker = at.selectbox(key="gen_model")
    assert any("fox.txt" in option for option in picker.options), picker.options


def test_an_unreachable_cluster_is_a_message_for_people(periodic_corpus, tmp_path, monkeypatch):
    monkeypatch.setattr(cluster, "CONNECT_S", 1.0)
    address = f"tcp://127.0.0.1:{free_port()}"   # nothing listens there
    job = TrainingJob(periodic_corpus, "tiny", *configs(periodic_corpus, max_steps=5), workdir=tmp_path,
                      cluster=address)
    job.start()
    job.join(timeout=60)
    error = job.snapshot().error
    assert job.snapshot().status == "error" and error.startswith(f"the training cluster at {address} cannot be "
                                                                   "reached")


def test_a_run_waiting_for_the_clusters_cpus_shows_its_place_and_stop_withdraws_it(scheduler, periodic_corpus,
                                                                                   tmp_path):
    def run(name: str) -> TrainingJob:
        return TrainingJob(periodic_corpus, "tiny", *configs(periodic_corpus, **LONG), workdir=tmp_path / name,
                           cluster=scheduler[0], threads=1).start()

    first, second = run("first"), run("second")   # the worker's 2 CPUs, one each
    try:
        poll(lambda: first.pid is not None and second.pid is not None, deadline_s=60, what="two runs started")
        third = run("third")
        poll(lambda: third.snapshot().status == "queued", deadline_s=10, what="the third run waiting")
        assert third.place() == 1 and third.snapshot().place == 1 and third.pid is None
        third.stop()
        third.join(timeout=30)
        assert third.snapshot().status == "stopped" and third.pid is None   # withdrawn before it started
        assert third.snapshot().messages == ["stopped while waiting for a free training slot"]
    finally:
        for job in (first, second):
            job.stop()
            job.join(timeout=30)
    assert {first.snapshot().status, second.snapshot().status} == {"stopped"}
