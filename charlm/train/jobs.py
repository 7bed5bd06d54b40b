"""A training run watched from a background thread: start, stop, snapshot, heartbeat, and a server-wide slot limit
with a queue: when every slot is taken, a run can wait its turn and start by itself. The run itself trains in a
process of its own (charlm.train.worker), or, asked so, in the watching thread."""

from __future__ import annotations

import tempfile
import threading
import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from charlm.config import ModelConfig, TrainConfig
from charlm.errors import UserError
from charlm.text.corpus import Corpus
from charlm.train import worker
from charlm.train.events import Progress, TrainResult
from charlm.train.slots import Holder, ServerBusy, Slots, TooManyRuns  # noqa: F401  (their home was here)

if TYPE_CHECKING:   # torch's side: a page that only shows runs imports this module without loading torch
    from charlm.train.resume import Resume
    from charlm.train.startfrom import StartFrom


_log = logging.getLogger(__name__)
BUG_MESSAGE = "training failed unexpectedly (a bug; the server's log has the details)"

QUEUE_GONE_S = 10.0   # a run waiting in line whose visitor's page has gone, unwatched this long, leaves the line


@dataclass
class JobSnapshot:
    status: str                      # "queued", "running", "done", "stopped", "error"
    latest: Progress | None
    losses: list[tuple[int, float, float | None]]   # (step, smoothed train loss, val loss or None), one per event kept
    samples: list[tuple[int, str]]   # (step, text) at each evaluation
    checkpoints: list[str]           # paths written, newest last
    messages: list[str]              # warnings and the final message
    error: str | None
    result: TrainResult | None
    place: int | None = None         # while queued: 1 when it starts next
    evals: list[tuple[float, float]] = field(default_factory=list)   # (seconds of training, val loss) per evaluation


class TrainingJob:
    """Runs charlm.train.trainer in a worker process (separate=True, the default: charlm.train.worker), watched
    by a daemon thread, or in that thread itself (separate=False: it shares the server's process, its random
    generators and threads, and a crash there ends the server). The thread only writes to this object, the page
    polls it. `threads`: torch threads for a separate run (None: its share of the cores, when `processes` runs
    share them). With `cluster`, the process is on one of that cluster's workers, placed by its scheduler; the run
    shows as queued, with its place among this server's runs waiting there, until it starts.

    A new run takes its configs; a resumed one (resume=Resume(...)) keeps its own, and `preset` names it for people.
    A run started from a trained model (start=charlm.train.startfrom.start_from(...)) trains start.corpus with
    start.model_cfg from the model's weights.
    """

    def __init__(self, corpus: Corpus, preset: str, model_cfg: ModelConfig | None = None,
                 train_cfg: TrainConfig | None = None, resume: Resume | None = None,
                 workdir: str | Path | None = None, abandon_after_s: float | None = None,
                 start: StartFrom | None = None, holder: Holder | None = None, separate: bool = True,
                 threads: int | None = None, processes: int = 1, cluster: str | None = None):
        if start is not None and (corpus is not start.corpus or model_cfg != start.model_cfg):
            raise TypeError("a run started from a model trains start.corpus with start.model_cfg")
        self.corpus, self.preset = corpus, preset
        self.model_cfg, self.train_cfg, self.resume = model_cfg, train_cfg, resume
        self.from_model = start   # a new run from a trained model's weights (train(start=...)), or None
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="charlm-job-"))
        self.out = self.workdir / "model.safetensors"
        self.abandon_after_s = abandon_after_s
        self.holder = holder   # whose run it is, for the slots' fair shares; None: nobody in particular
        self.separate, self.threads, self.processes = separate, threads, processes
        self.cluster = cluster   # a Dask scheduler's address: the run trains on its workers (charlm.train.cluster)
        self.pid: int | None = None   # the worker process's, once it has started (a separate run)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._slots: Slots | None = None
        self._admitted = threading.Event()   # set when the job has a slot (at once, or after waiting in line)
        self._last_seen = time.monotonic()
        self._latest: Progress | None = None
        self._losses: list[tuple[int, float, float | None]] = []
        self._samples: list[tuple[int, str]] = []
        self._evals: list[tuple[float, float]] = []
        self._checkpoints: list[str] = []
        self._messages: list[str] = []
        self._status = "created"
        self._error: str | None = None
        self._result: TrainResult | None = None

    def start(self, slots: Slots | None = None, wait: bool = False) -> "TrainingJob":
        """Run in a background thread, in one of `slots`. All taken: wait=False raises ServerBusy; wait=True
        joins the line (status "queued", its place in snapshot().place) and starts by itself when its turn comes."""
        self._slots = slots
        if slots is None:
            self._admitted.set()
        elif not wait:
            slots.acquire(self)   # raises ServerBusy
            self._admitted.set()
        elif slots.enqueue(self):   # raises ServerBusy when even the line is full
            self._admitted.set()
        self._status = "running" if self._admitted.is_set() else "queued"
        self._thread = threading.Thread(target=self._run, name="charlm-train", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def heartbeat(self) -> None:
        """The page calls this while someone watches; without it an abandoned job stops itself."""
        self._last_seen = time.monotonic()

    def finished(self) -> bool:
        """True once the run has ended; a job whose thread has not started yet still holds its slot."""
        return self._status in ("done", "stopped", "error")

    def place(self) -> int | None:
        """Its place in the line while it waits for a slot, or on the cluster for a worker (1: next), else None."""
        if self._status != "queued":
            return None
        with _cluster_lock:
            if self in _cluster_waiting:
                return _cluster_waiting.index(self) + 1
        return self._slots.place(self) if self._slots is not None else None

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def seconds_left(self) -> float | None:
        latest = self._latest
        return latest.eta_s if latest else None

    def best_checkpoint(self) -> Path | None:
        """The best model so far (usable while training goes on), or None before the first evaluation."""
        return self.out if self.out.exists() else None

    def snapshot(self) -> JobSnapshot:
        with self._lock:
            snap = JobSnapshot(self._status, self._latest, list(self._losses), list(self._samples),
                               list(self._checkpoints), list(self._messages), self._error, self._result)
        snap.place = self.place()
        with self._lock:
            snap.evals = list(self._evals)
        return snap

    def _on_progress(self, event: Progress) -> None:
        with self._lock:
            self._latest = event
            if event.kind == "step" and event.train_loss is not None:
                self._losses.append((event.step, event.train_loss, None))
            elif event.kind == "eval":
                self._losses.append((event.step, event.train_loss, event.val_loss))
                if event.val_loss is not None:
                    self._evals.append((event.elapsed_s, event.val_loss))
                if event.sample is not None:
                    self._samples.append((event.step, event.sample))
            elif event.kind == "checkpoint" and event.path:
                self._checkpoints.append(event.path)
            elif event.kind == "warning" and event.message:
                self._messages.append(event.message)
        if self._abandoned() and not self._stop.is_set():   # the run still emits a few events while it stops; say it once
            with self._lock:
                self._messages.append("stopped: nobody was watching (the page was closed)")
            self._stop.set()

    def _abandoned(self) -> bool:
        return self.abandon_after_s is not None and time.monotonic() - self._last_seen > self.abandon_after_s

    def _gone_from_line(self) -> bool:
        """Waiting, and its visitor's page has gone (not a reload: nobody heartbeats it either)."""
        return (self.holder is not None and time.monotonic() - self._last_seen > QUEUE_GONE_S
                and not self.holder.connected())

    def _wait_for_a_slot(self) -> bool:
        """Wait in line until admitted; -> False when stopped (or abandoned) first, its place given up."""
        if self._status != "queued":
            return True                       # it had a slot from the start
        gives_up = lambda: self._stop.is_set() or self._abandoned() or self._gone_from_line()   # noqa: E731
        while not self._admitted.wait(timeout=0.5) and not gives_up():
            pass
        if gives_up():
            self._slots.leave(self)
            if self._admitted.is_set():       # admitted just as it gave up: hand the slot on
                self._slots.release(self)
            self._stopped_waiting()
            return False
        with self._lock:
            self._status = "running"
        return True

    def _run(self) -> None:
        if not self._wait_for_a_slot():
            return
        try:
            result = self._train()
            if result is None:   # stopped (or abandoned) while it waited on the cluster
                self._stopped_waiting()
                return
            with self._lock:
                self._result = result
                self._status = "stopped" if result.stopped else "done"
                if result.message:
                    self._messages.append(result.message)
        except UserError as err:            # bad settings or data: a message for the person
            with self._lock:
                self._status, self._error = "error", str(err)
        except worker.RunBug as bug:        # a bug in the worker: its traceback goes to the server's log
            _log.error("training run in %s failed:\n%s", self.workdir, bug)
            with self._lock:
                self._status, self._error = "error", BUG_MESSAGE
        except Exception:                   # a bug: the details go to the server's log, the visitor is told so
            _log.exception("training run in %s failed", self.workdir)
            with self._lock:
                self._status, self._error = "error", BUG_MESSAGE
        finally:
            if self.from_model is not None:   # the model has its weights now; keep where it started, for the page
                self.from_model = replace(self.from_model, weights={})
            if self._slots is not None:
                self._slots.release(self)

    def _train(self) -> TrainResult | None:
        """The run, where this job runs it; None when it was stopped before it started on the cluster."""
        args = (self.corpus, self.model_cfg, self.train_cfg)
        kwargs = dict(preset=self.preset, out=self.out, resume=self.resume, start=self.from_model)
        request = worker.RunRequest(args, kwargs, self.threads, self.processes)
        if self.cluster:
            from charlm.train import cluster   # Dask loads only in a server that trains on a cluster
            with self._lock, _cluster_lock:
                self._status = "queued"
                _cluster_waiting.append(self)
            try:
                return cluster.run(request, self._on_progress, self._stop, self.cluster, on_start=self._started,
                                   gives_up=self._gives_up_waiting)
            finally:
                self._leave_cluster_line()
        if self.separate:
            return worker.run(request, self._on_progress, self._stop, on_start=self._started)
        from charlm.train.trainer import train   # here: torch loads when a run starts, not with the page
        return train(*args, **kwargs, on_progress=self._on_progress, stop=self._stop)

    def _started(self, pid: int) -> None:
        self.pid = pid
        self._leave_cluster_line()
        with self._lock:
            if self._status == "queued":
                self._status = "running"

    def _leave_cluster_line(self) -> None:
        with _cluster_lock:
            if self in _cluster_waiting:
                _cluster_waiting.remove(self)

    def _gives_up_waiting(self) -> bool:
        return self._stop.is_set() or self._abandoned() or self._gone_from_line()

    def _stopped_waiting(self) -> None:
        unwatched = self._abandoned() or self._gone_from_line()
        with self._lock:
            self._status = "stopped"
            self._messages.append("stopped while waiting for a free training slot"
                                  + (": nobody was watching (the page was closed)" if unwatched else ""))


_cluster_lock = threading.Lock()
_cluster_waiting: list[TrainingJob] = []   # this server's runs submitted to a cluster and not started, in order
