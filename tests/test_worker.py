"""Tests for charlm.train.worker: a run in a process of its own, its events streamed back, its stop, its death."""

from __future__ import annotations

import os
import signal
import threading

import numpy as np
import pytest

from charlm.errors import UserError
from charlm.modelfile import checkpoint
from charlm.train import worker
from charlm.train.jobs import TrainingJob

from helpers import LONG, configs, poll


def weights(path) -> dict[str, np.ndarray]:
    return checkpoint.load(path).numpy_weights()


def test_a_run_trains_in_another_process_and_streams_its_events(periodic_corpus, tmp_path):
    job = TrainingJob(periodic_corpus, "tiny", *configs(periodic_corpus, max_steps=30), workdir=tmp_path)
    job.start()
    job.join(timeout=120)
    snap = job.snapshot()
    assert snap.status == "done", snap.error
    assert job.pid is not None and job.pid != os.getpid()
    assert snap.result.steps == 30 and snap.latest.kind == "done"
    assert [step for step, _, val in snap.losses if val is not None][-1] == 30
    assert job.out.exists() and str(job.out) in snap.checkpoints
    with pytest.raises(ProcessLookupError):   # the worker has ended with its run
        os.kill(job.pid, 0)


def test_a_run_gives_pages_the_cpu_first_and_killed_ends_as_failed_with_why_and_the_next_run_trains(periodic_corpus, tmp_path):
    job = TrainingJob(periodic_corpus, "tiny", *configs(periodic_corpus, **LONG), workdir=tmp_path / "killed")
    job.start()
    poll(lambda: job.pid is not None and job.snapshot().latest is not None, what="the worker's first step")
    assert os.getpriority(os.PRIO_PROCESS, job.pid) == min(os.nice(0) + worker.NICENESS, 19)   # pages go first
    os.kill(job.pid, signal.SIGKILL)
    poll(lambda: job.snapshot().status == "error", deadline_s=10, what="the run reported as failed")
    assert job.snapshot().error == ("the run's process was killed by SIGKILL (the machine may have run out of "
                                    "memory) before it finished")
    job.join(timeout=10)
    assert not job.is_alive()
    after = TrainingJob(periodic_corpus, "tiny", *configs(periodic_corpus, max_steps=5), workdir=tmp_path / "next")
    after.start()
    after.join(timeout=120)
    assert after.snapshot().status == "done", after.snapshot().error


def test_a_run_gives_the_same_weights_alone_and_beside_another(periodic_corpus, tmp_path):
    def run(name: str, seed: int) -> TrainingJob:
        model_cfg, train_cfg = configs(periodic_corpus, max_steps=40, seed=seed)
        return TrainingJob(periodic_corpus, "tiny", model_cfg, train_cfg, workdir=tmp_path / name).start()

    alone = run("alone", 7)
    alone.join(timeout=120)
    beside, other = run("beside", 7), run("other", 8)
    beside.join(timeout=120)
    other.join(timeout=120)
    assert {j.snapshot().status for j in (alone, beside, other)} == {"done"}
    a, b, c = weights(alone.out), weights(beside.out), weights(other.out)
    assert all(np.array_equal(a[name], b[name]) for name in a)
    assert not all(np.array_equal(a[name], c[name]) for name in a)   # another seed: another model


def test_the_workers_own_message_reaches_the_visitor_and_a_bug_is_its_traceback(periodic_corpus, tmp_path):
    model_cfg, train_cfg = configs(periodic_corpus, max_steps=1)
    stop = threading.Event()
    with pytest.raises(worker.RunBug, match="TypeError: .*unexpected keyword argument 'nonsense'"):
        worker.run(worker.RunRequest((periodic_corpus, model_cfg, train_cfg), {"nonsense": 1}, 1), print, stop)
    missing = tmp_path / "gone.last.pt"
    from charlm.train.resume import Resume
    with pytest.raises(UserError) as told:
        worker.run(worker.RunRequest((periodic_corpus, None, None), {"resume": Resume(missing)}, 1), print, stop)
    assert not isinstance(told.value, worker.RunDied) and str(missing.name) in str(told.value)


def test_a_bug_in_the_worker_is_logged_and_the_visitor_told_it_is_one(periodic_corpus, tmp_path, caplog):
    job = TrainingJob(periodic_corpus, "tiny", *configs(periodic_corpus, max_steps=1), workdir=tmp_path)
    job.corpus = "not a corpus"   # the trainer fails on it in the worker, as a bug would
    job.start()
    job.join(timeout=120)
    assert job.snapshot().error == "training failed unexpectedly (a bug; the server's log has the details)"
    assert any(r.name == "charlm.train.jobs" and "Traceback" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("exitcode, said", [
    (-9, "the run's process was killed by SIGKILL (the machine may have run out of memory) before it finished"),
    (-11, "the run's process was killed by SIGSEGV before it finished"),
    (1, "the run's process ended unexpectedly (exit code 1) before it finished"),
])
def test_why_a_worker_died_is_said_for_people(exitcode, said):
    assert worker.died(exitcode) == said


def test_a_temporary_folder_too_deep_for_the_fork_servers_socket_still_trains(periodic_corpus, tmp_path,
                                                                              monkeypatch):
    deep = tmp_path / ("d" * 60) / ("e" * 40)
    deep.mkdir(parents=True)
    monkeypatch.setattr(worker.tempfile, "tempdir", str(deep))   # as TMPDIR=deep would set it
    assert worker._context().get_start_method() == "spawn"
    job = TrainingJob(periodic_corpus, "tiny", *configs(periodic_corpus, max_steps=5), workdir=tmp_path / "run")
    job.start()
    job.join(timeout=120)
    assert job.snapshot().status == "done", job.snapshot().error
