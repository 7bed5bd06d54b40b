"""Tests for charlm.train.jobs: a run watched from a background thread (in a worker process, or in the thread), its snapshots, stop, the slot limit, abandonment."""

import re
import time

import pytest

from charlm.text.read import CorpusError
from charlm.train.jobs import ServerBusy, Slots, TrainingJob
from charlm.train.resume import Resume, last_path_for

from helpers import LONG, configs, poll

def test_job_runs_in_a_thread_and_its_snapshot_shows_progress(periodic_corpus, tmp_path):
    job = TrainingJob(periodic_corpus, "tiny", *configs(periodic_corpus, max_steps=80, eval_interval_s=0.2),
                      workdir=tmp_path)
    assert job.snapshot().status == "created"
    job.start()
    assert job.is_alive()
    seen = []
    while job.is_alive():
        snapshot = job.snapshot()
        if snapshot.latest is not None:
            seen.append(snapshot.latest.step)
        time.sleep(0.05)
    job.join()
    final = job.snapshot()
    assert final.status == "done" and final.error is None
    assert final.result.steps == 80
    assert len(set(seen)) >= 2 and seen == sorted(seen)      # it was seen advancing while it ran
    assert [step for step, _, _ in final.losses] == sorted(step for step, _, _ in final.losses)
    assert any(val is not None for _, _, val in final.losses)
    assert final.samples and all(isinstance(text, str) for _, text in final.samples)
    assert str(job.out) in final.checkpoints
    assert job.best_checkpoint() == job.out and job.out.exists()


def test_stop_ends_a_running_job(periodic_corpus, tmp_path):
    job = TrainingJob(periodic_corpus, "tiny", *configs(periodic_corpus, **LONG), workdir=tmp_path)
    job.start()
    poll(lambda: job.snapshot().latest is not None, what="the first step")
    job.stop()
    job.join(timeout=20)
    assert not job.is_alive()
    snapshot = job.snapshot()
    assert snapshot.status == "stopped"
    assert snapshot.result.stopped and snapshot.latest.kind == "stopped"
    assert snapshot.latest.fraction < 1.0                    # the stop ended it, not its one-minute budget
    assert "stopped on request" in snapshot.messages


def test_a_second_job_is_refused_while_the_only_slot_is_taken(periodic_corpus, tmp_path):
    slots = Slots(limit=1)
    first = TrainingJob(periodic_corpus, "tiny", *configs(periodic_corpus, **LONG), workdir=tmp_path / "first")
    first.start(slots)
    try:
        poll(lambda: first.seconds_left() is not None, what="an estimate of the time left")
        second = TrainingJob(periodic_corpus, "tiny", *configs(periodic_corpus, **LONG), workdir=tmp_path / "second")
        with pytest.raises(ServerBusy) as refused:
            second.start(slots)
        # The first job has at most a minute left, so that is when to come back.
        assert re.search(r"Try again in about 1 minute", str(refused.value))
        assert not second.is_alive()
    finally:
        first.stop()
        first.join(timeout=20)
    third = TrainingJob(periodic_corpus, "tiny", *configs(periodic_corpus, max_steps=2), workdir=tmp_path / "third")
    # The only slot was given back, and the refused job never took one (a job that has not started holds its
    # slot until it finishes, so either would refuse this one).
    third.start(slots)
    third.join(timeout=20)
    assert third.snapshot().status == "done"


class FakeJob:
    holder = None   # nobody's in particular: no share to count against

    def __init__(self, seconds_left):
        self._seconds_left = seconds_left

    def finished(self):
        return False

    def seconds_left(self):
        return self._seconds_left


def test_busy_message_names_the_soonest_end_even_when_a_job_has_no_estimate_yet():
    slots = Slots(limit=3)
    for seconds in (None, 600.0, 150.0):        # a job that just started has no estimate
        slots.acquire(FakeJob(seconds))
    with pytest.raises(ServerBusy, match=r"3 training runs are going.*Try again in about 2 minutes\."):
        slots.acquire(FakeJob(None))


def test_busy_message_without_any_estimate_still_says_when_to_retry():
    slots = Slots(limit=1)
    slots.acquire(FakeJob(None))
    with pytest.raises(ServerBusy, match="Try again in a few minutes"):
        slots.acquire(FakeJob(None))


def test_a_job_nobody_heartbeats_stops_itself(periodic_corpus, tmp_path):
    job = TrainingJob(periodic_corpus, "tiny", *configs(periodic_corpus, **LONG), workdir=tmp_path,
                      abandon_after_s=0.3)
    job.start()
    job.join(timeout=20)
    assert not job.is_alive()
    snapshot = job.snapshot()
    assert snapshot.status == "stopped"
    assert snapshot.latest.fraction < 1.0                    # abandonment ended it, not its one-minute budget
    assert len([m for m in snapshot.messages if "nobody was watching" in m]) == 1   # said once


def test_heartbeats_keep_a_watched_job_running(periodic_corpus, tmp_path):
    job = TrainingJob(periodic_corpus, "tiny", *configs(periodic_corpus, minutes=0.02), workdir=tmp_path,
                      abandon_after_s=0.3)
    job.start()
    while job.is_alive():                         # 1.2 s of training, four times the abandonment limit
        job.heartbeat()
        time.sleep(0.05)
    snapshot = job.snapshot()
    assert snapshot.status == "done"
    assert not any("nobody was watching" in message for message in snapshot.messages)


def test_bad_settings_end_as_an_error_with_the_message(periodic_corpus, tmp_path):
    job = TrainingJob(periodic_corpus, "tiny", *configs(periodic_corpus, seq_len=100_000), workdir=tmp_path)
    job.start()
    job.join(timeout=20)
    snapshot = job.snapshot()
    assert snapshot.status == "error"
    assert "shorter than one sequence" in snapshot.error


def test_a_job_holds_its_slot_before_its_thread_starts(periodic_corpus):
    # Two visitors pressing Start at once: the first job's thread may not be running yet.
    slots = Slots(limit=1)
    first = TrainingJob(periodic_corpus, "tiny", *configs(periodic_corpus, max_steps=1))
    slots.acquire(first)
    assert not first.is_alive()
    with pytest.raises(ServerBusy):
        slots.acquire(TrainingJob(periodic_corpus, "tiny", *configs(periodic_corpus, max_steps=1)))



def test_a_resumed_job_goes_on_from_the_run_it_resumes(periodic_corpus, tmp_path):
    first = TrainingJob(periodic_corpus, "tiny", *configs(periodic_corpus, max_steps=3), workdir=tmp_path)
    first.start()
    first.join(timeout=20)
    assert first.snapshot().result.steps == 3
    more = Resume(last_path_for(first.out), max_steps=6)
    second = TrainingJob(periodic_corpus, "tiny", resume=more, workdir=tmp_path)
    second.start()
    second.join(timeout=20)
    snapshot = second.snapshot()
    assert snapshot.status == "done", snapshot.error
    # The first run evaluated its untrained model (step 0) and its end; the resumed one its end.
    assert snapshot.result.steps == 6 and [row["step"] for row in snapshot.result.history] == [0, 3, 6]


def failing_train(error: Exception):
    def train(*args, **kwargs):
        raise error
    return train


def test_a_bug_in_a_run_in_the_servers_process_is_logged_with_its_traceback_and_not_shown(periodic_corpus, tmp_path,
                                                                                 monkeypatch, caplog):
    from charlm.train import trainer
    monkeypatch.setattr(trainer, "train", failing_train(KeyError("hidden_size_internal")))
    job = TrainingJob(periodic_corpus, "tiny", *configs(periodic_corpus, max_steps=1), workdir=tmp_path,
                      separate=False)
    job.start()
    job.join(timeout=20)
    snapshot = job.snapshot()
    assert snapshot.status == "error"
    assert snapshot.error == "training failed unexpectedly (a bug; the server's log has the details)"
    logged = [r for r in caplog.records if r.name == "charlm.train.jobs" and r.exc_info]
    assert logged and "hidden_size_internal" in str(logged[0].exc_info[1])


@pytest.mark.parametrize("error, shown", [
    (ValueError("a plain ValueError is ours, not the visitor's"), False),
    (CorpusError("The text is too short."), True),
])
def test_only_a_user_error_reaches_the_visitor_as_its_message(periodic_corpus, tmp_path, monkeypatch, error, shown):
    from charlm.train import trainer
    monkeypatch.setattr(trainer, "train", failing_train(error))
    job = TrainingJob(periodic_corpus, "tiny", *configs(periodic_corpus, max_steps=1), workdir=tmp_path,
                      separate=False)
    job.start()
    job.join(timeout=20)
    assert (job.snapshot().error == str(error)) is shown
