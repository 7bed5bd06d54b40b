"""A training run in a background thread: start, stop, snapshot, heartbeat, and a server-wide slot limit."""

from __future__ import annotations

import tempfile
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from .config import ModelConfig, TrainConfig
from .corpus import Corpus
from .events import Progress, TrainResult
from .resume import Resume
from .train import train


class ServerBusy(RuntimeError):
    """Every training slot on this server is taken; the message says when to retry."""


class Slots:
    """At most `limit` training jobs at once on this server (process)."""

    def __init__(self, limit: int):
        self.limit = limit
        self._lock = threading.Lock()
        self._running: list["TrainingJob"] = []

    def acquire(self, job: "TrainingJob") -> None:
        with self._lock:
            self._running = [j for j in self._running if not j.finished()]
            if len(self._running) >= self.limit:
                # A job that has just started has no estimate yet; the others say when a slot frees up.
                estimates = [s for s in (j.seconds_left() for j in self._running) if s is not None]
                soonest = min(estimates, default=None)
                wait = (f" Try again in about {max(1, round(soonest / 60))} minute(s)." if soonest is not None
                        else " Try again in a few minutes.")
                raise ServerBusy(f"The server is busy: {len(self._running)} training run(s) are going, the most it "
                                 f"allows at once.{wait}")
            self._running.append(job)

    def release(self, job: "TrainingJob") -> None:
        with self._lock:
            if job in self._running:
                self._running.remove(job)


@dataclass
class JobSnapshot:
    status: str                      # "running", "done", "stopped", "error"
    latest: Progress | None
    losses: list[tuple[int, float, float | None]]   # (step, smoothed train loss, val loss or None), one per event kept
    samples: list[tuple[int, str]]   # (step, text) at each evaluation
    checkpoints: list[str]           # paths written, newest last
    messages: list[str]              # warnings and the final message
    error: str | None
    result: TrainResult | None


class TrainingJob:
    """Runs charlm.train in a daemon thread; its thread only writes to this object, the page polls it.

    A new run takes its configs; a resumed one (resume=Resume(...)) keeps its own, and `preset` names it for people.
    """

    def __init__(self, corpus: Corpus, preset: str, model_cfg: ModelConfig | None = None,
                 train_cfg: TrainConfig | None = None, resume: Resume | None = None,
                 workdir: str | Path | None = None, abandon_after_s: float | None = None):
        self.corpus, self.preset = corpus, preset
        self.model_cfg, self.train_cfg, self.resume = model_cfg, train_cfg, resume
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="charlm-job-"))
        self.out = self.workdir / "model.safetensors"
        self.abandon_after_s = abandon_after_s
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._slots: Slots | None = None
        self._last_seen = time.monotonic()
        self._latest: Progress | None = None
        self._losses: list[tuple[int, float, float | None]] = []
        self._samples: list[tuple[int, str]] = []
        self._checkpoints: list[str] = []
        self._messages: list[str] = []
        self._status = "created"
        self._error: str | None = None
        self._result: TrainResult | None = None

    def start(self, slots: Slots | None = None) -> "TrainingJob":
        if slots is not None:
            slots.acquire(self)   # raises ServerBusy
        self._slots = slots
        self._status = "running"
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
            return JobSnapshot(self._status, self._latest, list(self._losses), list(self._samples),
                               list(self._checkpoints), list(self._messages), self._error, self._result)

    def _on_progress(self, event: Progress) -> None:
        with self._lock:
            self._latest = event
            if event.kind == "step" and event.train_loss is not None:
                self._losses.append((event.step, event.train_loss, None))
            elif event.kind == "eval":
                self._losses.append((event.step, event.train_loss, event.val_loss))
                if event.sample is not None:
                    self._samples.append((event.step, event.sample))
            elif event.kind == "checkpoint" and event.path:
                self._checkpoints.append(event.path)
            elif event.kind == "warning" and event.message:
                self._messages.append(event.message)
        abandoned = self.abandon_after_s is not None and time.monotonic() - self._last_seen > self.abandon_after_s
        if abandoned and not self._stop.is_set():   # the run still emits a few events while it stops; say it once
            with self._lock:
                self._messages.append("stopped: nobody was watching (the page was closed)")
            self._stop.set()

    def _run(self) -> None:
        try:
            result = train(self.corpus, self.model_cfg, self.train_cfg, preset=self.preset, out=self.out,
                           resume=self.resume, on_progress=self._on_progress, stop=self._stop)
            with self._lock:
                self._result = result
                self._status = "stopped" if result.stopped else "done"
                if result.message:
                    self._messages.append(result.message)
        except ValueError as err:           # bad settings or data: a message for the person
            with self._lock:
                self._status, self._error = "error", str(err)
        except Exception as err:            # a bug: keep the details for the log, say it plainly
            traceback.print_exc()
            with self._lock:
                self._status, self._error = "error", f"training failed unexpectedly: {type(err).__name__}: {err}"
        finally:
            if self._slots is not None:
                self._slots.release(self)
