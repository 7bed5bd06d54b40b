"""The line for training slots: a run that finds every slot taken waits its turn and starts by itself."""

from __future__ import annotations

import time

import pytest

from charlm.train import jobs as jobs_mod
from charlm.train.jobs import Holder, ServerBusy, Slots, TooManyRuns, TrainingJob

from helpers import LONG, configs, poll


def long_job(corpus, tmp_path, name: str, **kw) -> TrainingJob:
    return TrainingJob(corpus, "tiny", *configs(corpus, **LONG), workdir=tmp_path / name, **kw)


def test_a_run_waits_its_turn_and_starts_by_itself_when_a_slot_frees(periodic_corpus, tmp_path):
    slots = Slots(1)
    first, second, third = (long_job(periodic_corpus, tmp_path, n) for n in ("a", "b", "c"))
    try:
        first.start(slots, wait=True)
        second.start(slots, wait=True)
        third.start(slots, wait=True)
        assert first.snapshot().status == "running" and first.snapshot().place is None
        assert (second.snapshot().status, second.snapshot().place) == ("queued", 1)
        assert (third.snapshot().status, third.snapshot().place) == ("queued", 2)
        poll(lambda: first.snapshot().latest is not None, what="the first run's first step")
        assert second.snapshot().latest is None               # waiting: not one step trained
        first.stop()
        poll(lambda: second.snapshot().status == "running", what="the second run to start by itself")
        poll(lambda: second.snapshot().latest is not None, what="the second run's first step")
        assert (third.snapshot().status, third.snapshot().place) == ("queued", 1)   # moved up
        assert slots.busy() == 1
    finally:
        for job in (first, second, third):
            job.stop()
        for job in (first, second, third):
            job.join(timeout=30)
    assert third.snapshot().status == "stopped" and third.snapshot().latest is None   # stopped in line


def test_a_run_stopped_in_line_gives_up_its_place(periodic_corpus, tmp_path):
    slots = Slots(1)
    first, second, third = (long_job(periodic_corpus, tmp_path, n) for n in ("a", "b", "c"))
    try:
        first.start(slots, wait=True)
        second.start(slots, wait=True)
        third.start(slots, wait=True)
        second.stop()
        poll(lambda: second.snapshot().status == "stopped", what="the stopped run to leave the line")
        assert "stopped while waiting for a free training slot" in second.snapshot().messages
        assert third.snapshot().place == 1
    finally:
        for job in (first, second, third):
            job.stop()
            job.join(timeout=30)


def test_a_waiting_run_whose_page_closed_leaves_the_line(periodic_corpus, tmp_path):
    slots = Slots(1)
    first = long_job(periodic_corpus, tmp_path, "a")
    forgotten = long_job(periodic_corpus, tmp_path, "b", abandon_after_s=0.3)
    try:
        first.start(slots, wait=True)
        forgotten.start(slots, wait=True)      # nobody heartbeats it
        poll(lambda: forgotten.snapshot().status == "stopped", what="the abandoned run to leave the line")
        assert any("nobody was watching" in m for m in forgotten.snapshot().messages)
        assert slots.place(forgotten) is None
    finally:
        first.stop()
        first.join(timeout=30)


def test_the_line_has_a_length_and_a_run_that_cannot_wait_never_jumps_it(periodic_corpus, tmp_path):
    slots = Slots(1, max_waiting=1)
    first, second, third, hurried = (long_job(periodic_corpus, tmp_path, n) for n in ("a", "b", "c", "d"))
    try:
        first.start(slots, wait=True)
        second.start(slots, wait=True)
        with pytest.raises(ServerBusy, match="1 training run is going and 1 is waiting"):
            third.start(slots, wait=True)
        with pytest.raises(ServerBusy, match="1 training run is going"):
            hurried.start(slots)               # no waiting: refused, and the queued run keeps its turn
        assert second.snapshot().place == 1
    finally:
        for job in (first, second):
            job.stop()
            job.join(timeout=30)


def _stop_all(jobs_started):
    for job in jobs_started:
        job.stop()
    for job in jobs_started:
        job.join(timeout=30)


def test_one_visitor_has_at_most_their_share_of_runs_going_and_waiting(periodic_corpus, tmp_path):
    slots = Slots(1, per_visitor=2)
    alice, bob = Holder("alice"), Holder("bob")
    first, second, third, bobs = (long_job(periodic_corpus, tmp_path, n, holder=h)
                                  for n, h in (("a", alice), ("b", alice), ("c", alice), ("d", bob)))
    try:
        first.start(slots, wait=True)
        second.start(slots, wait=True)          # running + waiting: her two
        with pytest.raises(TooManyRuns, match="You already have 2 training runs going or waiting"):
            third.start(slots, wait=True)
        with pytest.raises(TooManyRuns):
            third.start(slots)                  # nor without waiting
        bobs.start(slots, wait=True)            # another visitor still gets in line
        assert (bobs.snapshot().status, bobs.snapshot().place) == ("queued", 2)
        first.stop()
        poll(lambda: first.finished(), what="her first run to end")
        again = long_job(periodic_corpus, tmp_path, "e", holder=alice)
        again.start(slots, wait=True)           # a run that ended no longer counts
        assert again.snapshot().place == 2     # behind bob: her second run took the slot
    finally:
        _stop_all([first, second, bobs, again])


def test_one_network_address_has_at_most_its_share_whatever_the_sessions(periodic_corpus, tmp_path):
    slots = Slots(1, per_visitor=2, per_address=3)
    scripted = [Holder(f"session-{i}", "203.0.113.9") for i in range(4)]
    runs = [long_job(periodic_corpus, tmp_path, f"s{i}", holder=h) for i, h in enumerate(scripted)]
    elsewhere = long_job(periodic_corpus, tmp_path, "other", holder=Holder("teacher", "198.51.100.1"))
    try:
        for job in runs[:3]:
            job.start(slots, wait=True)
        with pytest.raises(TooManyRuns, match="3 training runs from your network address are going or waiting"):
            runs[3].start(slots, wait=True)
        elsewhere.start(slots, wait=True)
        assert elsewhere.snapshot().place == 3
    finally:
        _stop_all(runs[:3] + [elsewhere])


def test_a_waiting_run_whose_visitor_left_gives_up_its_place_within_seconds(periodic_corpus, tmp_path, monkeypatch):
    monkeypatch.setattr(jobs_mod, "QUEUE_GONE_S", 0.5)
    slots = Slots(1)
    page_open = {"left": True, "stayed": True}
    first = long_job(periodic_corpus, tmp_path, "a")
    left = long_job(periodic_corpus, tmp_path, "b", holder=Holder("left", connected=lambda: page_open["left"]),
                    abandon_after_s=600)
    stayed = long_job(periodic_corpus, tmp_path, "c", holder=Holder("stayed", connected=lambda: page_open["stayed"]),
                      abandon_after_s=600)
    try:
        first.start(slots, wait=True)
        left.start(slots, wait=True)
        stayed.start(slots, wait=True)
        page_open["left"] = False                 # its tab closed; the grace period (600 s) has not passed
        poll(lambda: left.snapshot().status == "stopped", 10, what="the left visitor's run to leave")
        assert any("nobody was watching" in m for m in left.snapshot().messages)
        assert stayed.snapshot().place == 1       # moved up
        time.sleep(1.0)   # twice QUEUE_GONE_S; a negative check (it keeps its place), so a bounded wait, not a poll
        assert (stayed.snapshot().status, stayed.snapshot().place) == ("queued", 1)
    finally:
        _stop_all([first, left, stayed])


def test_a_waiting_run_polled_by_a_reloaded_page_keeps_its_place(periodic_corpus, tmp_path, monkeypatch):
    monkeypatch.setattr(jobs_mod, "QUEUE_GONE_S", 0.5)
    slots = Slots(1)
    first = long_job(periodic_corpus, tmp_path, "a")
    reloaded = long_job(periodic_corpus, tmp_path, "b", holder=Holder("v", connected=lambda: False))
    try:
        first.start(slots, wait=True)
        reloaded.start(slots, wait=True)          # its first session is gone, but a new one polls it
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            reloaded.heartbeat()
            time.sleep(0.1)
        assert (reloaded.snapshot().status, reloaded.snapshot().place) == ("queued", 1)
    finally:
        _stop_all([first, reloaded])
