"""The line for training slots: a run that finds every slot taken waits its turn and starts by itself."""

from __future__ import annotations

import pytest

from charlm.jobs import ServerBusy, Slots, TrainingJob

from conftest import configs
from test_jobs import LONG, wait_for


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
        wait_for(lambda: first.snapshot().latest is not None, what="the first run's first step")
        assert second.snapshot().latest is None               # waiting: not one step trained
        first.stop()
        wait_for(lambda: second.snapshot().status == "running", what="the second run to start by itself")
        wait_for(lambda: second.snapshot().latest is not None, what="the second run's first step")
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
        wait_for(lambda: second.snapshot().status == "stopped", what="the stopped run to leave the line")
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
        wait_for(lambda: forgotten.snapshot().status == "stopped", what="the abandoned run to leave the line")
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
