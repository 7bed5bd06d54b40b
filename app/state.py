"""Each visitor's own state: typed accessors over st.session_state, and a private temp folder per session.

Nothing a visitor brings or makes goes to a shared path: corpora and models live in session_state, job
workdirs and uploaded checkpoints in folders made by tempfile.mkdtemp, removed when the session goes.
All visitors' folders together stay within CHARLM_MAX_DISK_MB: see make_room.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import streamlit as st

from charlm.text.corpus import Corpus, CorpusStats
from charlm.train.jobs import JobSnapshot, TrainingJob
from charlm.errors import UserError

from . import settings as settings_mod

_DIR = "visitor_dir"
_CORPUS = "corpus"
_JOB = "job"
_RUNS = "earlier_runs"
_KEPT = "kept_runs"
_RUN_NUMBER = "run_number"
_LAST_NUMBER = "last_run_number"
_STOPPING = "stop_requested_for"


def _remove_visitor_dir(path: str, jobs: list[TrainingJob]) -> None:
    # A job still stopping would write its last checkpoint after the folder went, and so recreate it.
    for running in jobs:
        running.stop()
    for running in jobs:
        running.join(timeout=60)
    shutil.rmtree(path, ignore_errors=True)


class _VisitorDir:
    """A temp folder that is deleted when the session's state is dropped, released, or the server exits.

    A reload hands this very object to the visitor's new session (app/sessions.py), so the old session going
    away removes nothing: the folder goes with the last session that holds it.
    """

    def __init__(self):
        self.path = Path(tempfile.mkdtemp(prefix="charlm-visitor-"))
        self.jobs: list[TrainingJob] = []   # this visitor's training jobs, stopped before the folder goes
        self.remove = weakref.finalize(self, _remove_visitor_dir, str(self.path), self.jobs)   # runs once
        _LIVE.add(self)


_LIVE: weakref.WeakSet[_VisitorDir] = weakref.WeakSet()   # every visitor folder of this server, for the budget
_ROOM = threading.Lock()   # one visitor makes room at a time, so two cannot both take the last megabytes


def release(session_state) -> None:
    """Free an expired session: stop its jobs, remove its folder, and drop everything it kept in memory."""
    if _DIR in session_state:
        session_state[_DIR].remove()
    for key in list(session_state.filtered_state):
        try:
            del session_state[key]
        except KeyError:   # a widget's value that went with the widget
            pass


def visitor_dir() -> Path:
    if _DIR not in st.session_state:
        st.session_state[_DIR] = _VisitorDir()
    return st.session_state[_DIR].path


def new_private_dir(prefix: str) -> Path:
    """A fresh folder inside this visitor's temp folder (one per training job or upload)."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir=visitor_dir()))


# --- the disk all visitors' folders share ------------------------------------------------------------

class DiskFull(UserError):
    """The visitors' folders hold CHARLM_MAX_DISK_MB; nothing of this visitor's is left to make room."""


@dataclass
class Droppable:
    """One of a visitor's things that may go to make room: a kept upload or an earlier run."""
    folder: Path
    drop: Callable[[], None]   # forgets it and removes its folder

    @property
    def age(self) -> int:
        try:
            return self.folder.stat().st_mtime_ns   # last written: a run's last checkpoint, an upload's copy
        except OSError:
            return 0


def folder_bytes(path: Path) -> int:
    total = 0
    for root, _, names in os.walk(path):
        for name in names:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:   # removed meanwhile
                pass
    return total


def disk_used() -> int:
    """Bytes in every visitor folder of this server, counted now (a few files each: cheap)."""
    return sum(folder_bytes(folder.path) for folder in list(_LIVE))


def make_room(need: int, things: list[Droppable]) -> None:
    """Make sure `need` more bytes fit in the visitors' disk budget, dropping this visitor's oldest `things`
    first if they must; raise DiskFull when even without them the server's visitors hold too much."""
    budget = int(settings_mod.get().max_disk_mb * 1e6)
    things = sorted(things, key=lambda thing: thing.age)
    with _ROOM:
        while (used := disk_used()) + need > budget:
            if not things:
                raise DiskFull(f"The server's disk for visitors is full: their files hold {used / 1e6:,.0f} MB of "
                               f"the {budget / 1e6:,.0f} MB this server allows (CHARLM_MAX_DISK_MB), and this needs "
                               f"{need / 1e6:,.1f} MB more. Try again later, when other visitors have left.")
            things.pop(0).drop()


def droppable_runs() -> list[Droppable]:
    """This visitor's earlier runs that have ended, each of which may go to make room (a run still training,
    as Learn's "Train both" keeps them, would write its next checkpoint into a removed folder)."""
    def dropper(run: KeptRun) -> Callable[[], None]:
        def drop() -> None:
            kept_runs()[:] = [kept for kept in kept_runs() if kept is not run]
            shutil.rmtree(run.job.workdir, ignore_errors=True)
        return drop
    return [Droppable(Path(run.job.workdir), dropper(run)) for run in kept_runs() if not run.job.is_alive()]


# --- the corpus ---------------------------------------------------------------------------------

@dataclass
class ChosenCorpus:
    corpus: Corpus
    stats: CorpusStats     # computed once, when the text is chosen
    source: str            # how it was chosen, for people: "uploaded file notes.txt"


def corpus() -> ChosenCorpus | None:
    return st.session_state.get(_CORPUS)


def set_corpus(corpus: Corpus, source: str) -> ChosenCorpus:
    chosen = ChosenCorpus(corpus, corpus.stats(), source)
    st.session_state[_CORPUS] = chosen
    return chosen


# --- the training job ---------------------------------------------------------------------------

@dataclass
class EarlierRuns:
    """What finished runs of this session's model showed, so a resumed run's chart starts where it left off."""
    losses: list = field(default_factory=list)    # (step, train_loss, val_loss or None)
    samples: list = field(default_factory=list)   # (step, text)
    evals: list = field(default_factory=list)     # (seconds of training, val loss) at each evaluation


MAX_RUNS = 5   # runs a visitor keeps: the current one and four before it (a model file each, an engine once used)


@dataclass
class KeptRun:
    """An earlier run of this visitor, kept when they started another: its last job and its resumed parts.
    Learn's "Train both" keeps its two runs here too, from their start, so they reach every model list."""
    number: int              # 1 for the visitor's first run, counted across pages
    job: TrainingJob
    earlier: EarlierRuns
    origin: str = ""         # where a run not started on the Train page came from, for people

    @property
    def label(self) -> str:
        label = f"Run {self.number}: {self.job.preset} on {self.job.corpus.name}"
        return f"{label} ({self.origin})" if self.origin else label

    def evals(self) -> list:
        return self.earlier.evals + self.job.snapshot().evals


def job() -> TrainingJob | None:
    return st.session_state.get(_JOB)


def run_number() -> int:
    """The current run's number (1 for the visitor's first)."""
    return st.session_state.get(_RUN_NUMBER, 1)


def _new_number() -> int:
    """The next run's number: one more than any run of this visitor's so far, on the Train page or elsewhere
    (Generate's list tells the runs apart by it)."""
    number = max(st.session_state.get(_LAST_NUMBER, 0), run_number() if job() is not None else 0) + 1
    st.session_state[_LAST_NUMBER] = number
    return number


def kept_runs() -> list[KeptRun]:
    """The visitor's earlier runs, oldest first; at most MAX_RUNS - 1."""
    return st.session_state.setdefault(_KEPT, [])


def register_job(new_job: TrainingJob) -> None:
    """Have this visitor's clean-up stop the job before their folder goes (any job of theirs, on any page)."""
    visitor_dir()
    st.session_state[_DIR].jobs.append(new_job)


def drop_jobs(old: list[TrainingJob]) -> None:
    """Forget this visitor's earlier jobs now, not when the session ends: their folders (model files of some
    megabytes each) go, and the visitor's clean-up stops holding them. A job still running is only stopped;
    its folder waits for that clean-up, since a stopping job writes one last checkpoint."""
    registered = st.session_state[_DIR].jobs if _DIR in st.session_state else []
    for dropped in old:
        dropped.stop()
        if dropped.is_alive():
            continue
        shutil.rmtree(dropped.workdir, ignore_errors=True)
        if dropped in registered:
            registered.remove(dropped)


def set_job(new_job: TrainingJob, continues_previous: bool) -> None:
    """Make new_job this visitor's job; a resumed run keeps the earlier runs' curves, a new one starts afresh."""
    register_job(new_job)
    previous = job()
    if continues_previous and previous is not None:
        runs = earlier_runs()
        snap = previous.snapshot()
        runs.losses.extend(snap.losses)
        runs.samples.extend(snap.samples)
        runs.evals.extend(snap.evals)
    else:
        if previous is None or previous.best_checkpoint() is not None:   # a new run: the last one is kept
            if previous is not None:
                kept_runs().append(KeptRun(run_number(), previous, earlier_runs()))
                _trim_kept(newest=1)
            st.session_state[_RUN_NUMBER] = _new_number()
        st.session_state[_RUNS] = EarlierRuns()
    st.session_state[_JOB] = new_job
    st.session_state.pop(_STOPPING, None)


def _trim_kept(newest: int) -> None:
    """Keep at most MAX_RUNS - 1 earlier runs, never the `newest` just kept: the oldest go, folders and all
    (one still training is stopped, and its folder goes with the visitor's)."""
    kept = kept_runs()
    while len(kept) > max(MAX_RUNS - 1, newest):
        drop_jobs([kept.pop(0).job])


def keep_runs(started: list[tuple[str, TrainingJob]]) -> None:
    """Keep runs started outside the Train page (Learn's "Train both") as this visitor's runs, each with where
    it came from: they join Generate's and Learn's model lists once they have a model file, the Train page's
    comparison chart, and the runs that MAX_RUNS and the disk budget count."""
    for origin, started_job in started:
        kept_runs().append(KeptRun(_new_number(), started_job, EarlierRuns(), origin))
    _trim_kept(newest=len(started))


def forget_runs(old: list[TrainingJob]) -> None:
    """Drop these jobs now (drop_jobs), and their runs from the kept ones."""
    kept_runs()[:] = [run for run in kept_runs() if run.job not in old]
    drop_jobs(old)


def earlier_runs() -> EarlierRuns:
    if _RUNS not in st.session_state:
        st.session_state[_RUNS] = EarlierRuns()
    return st.session_state[_RUNS]


def full_evals(snap: JobSnapshot) -> list:
    """(seconds of training, val loss) at each evaluation of the current run, resumed parts included."""
    return earlier_runs().evals + snap.evals


def full_history(snap: JobSnapshot) -> tuple[list, list]:
    """(losses, samples) of the earlier runs followed by the current job's."""
    runs = earlier_runs()
    return runs.losses + snap.losses, runs.samples + snap.samples


def request_stop() -> None:
    current = job()
    if current is not None:
        current.stop()
        st.session_state[_STOPPING] = id(current)


def stop_requested() -> bool:
    current = job()
    return current is not None and st.session_state.get(_STOPPING) == id(current)


def is_running(current: TrainingJob | None = None) -> bool:
    current = current or job()
    return current is not None and current.is_alive()
