"""The server's training slots: at most so many runs at once, a fair share per visitor and per address, and
a line for the runs that wait their turn (first come, first served)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from charlm.errors import UserError
from charlm.units import plural

if TYPE_CHECKING:
    from charlm.train.jobs import TrainingJob


class ServerBusy(UserError, RuntimeError):
    """Every training slot on this server is taken; the message says when to retry. A RuntimeError as it always
    was, for code that catches it so."""


class TooManyRuns(ServerBusy):
    """This visitor (or their network address) already has its share of the runs going and waiting."""


def _always() -> bool:
    return True


@dataclass(frozen=True)
class Holder:
    """Whom a run is for, so that the slots and the line are shared fairly between visitors."""
    visitor: str                                  # one visitor, across their reloads
    address: str | None = None                    # their network address; None when unknown (no cap by address)
    connected: Callable[[], bool] = _always       # False once the page that started the run has gone


class Slots:
    """At most `limit` training jobs at once on this server (process), and up to `max_waiting` in line.

    Jobs with a Holder count against it: at most `per_visitor` of one visitor's runs, and `per_address` of one
    network address's, running and waiting together (None: no such cap).
    """

    def __init__(self, limit: int, max_waiting: int = 20, per_visitor: int | None = None,
                 per_address: int | None = None):
        self.limit, self.max_waiting = limit, max_waiting
        self.per_visitor, self.per_address = per_visitor, per_address
        self._lock = threading.Lock()
        self._running: list["TrainingJob"] = []
        self._waiting: list["TrainingJob"] = []   # first come, first served

    def _check_share(self, job: "TrainingJob") -> None:
        """Raise TooManyRuns when the job's holder already has its share (call with the lock held)."""
        holder = job.holder
        if holder is None:
            return
        theirs = [j.holder for j in self._running + self._waiting if j.holder is not None and not j.finished()]
        mine = sum(h.visitor == holder.visitor for h in theirs)
        if self.per_visitor is not None and mine >= self.per_visitor:
            raise TooManyRuns(f"You already have {plural(mine, 'training run')} going or waiting, the most one "
                              "visitor may have at once. Stop one, or wait until one ends.")
        if holder.address is None or self.per_address is None:
            return
        same_address = sum(h.address == holder.address for h in theirs)
        if same_address >= self.per_address:
            raise TooManyRuns(f"{plural(same_address, 'training run')} from your network address "
                              f"{'is' if same_address == 1 else 'are'} going or waiting, the most this server "
                              "allows one address. Wait until one ends.")

    def busy(self) -> int:
        """Slots taken now."""
        with self._lock:
            self._running = [j for j in self._running if not j.finished()]
            return len(self._running)

    def place(self, job: "TrainingJob") -> int | None:
        """1 for the next job to start, 2 after it...; None when the job is not waiting."""
        with self._lock:
            return self._waiting.index(job) + 1 if job in self._waiting else None

    def enqueue(self, job: "TrainingJob") -> bool:
        """Take a slot now (-> True) or join the line (-> False; the job is admitted when a slot frees up)."""
        with self._lock:
            self._running = [j for j in self._running if not j.finished()]
            self._check_share(job)
            if len(self._running) < self.limit and not self._waiting:
                self._running.append(job)
                return True
            if len(self._waiting) >= self.max_waiting:
                going, waiting = len(self._running), len(self._waiting)
                raise ServerBusy(f"The server is busy: {plural(going, 'training run')} {'is' if going == 1 else 'are'} "
                                 f"going and {waiting} {'is' if waiting == 1 else 'are'} waiting, the most it allows. "
                                 "Try again in a few minutes.")
            self._waiting.append(job)
            return False

    def leave(self, job: "TrainingJob") -> None:
        """A waiting job gives up its place (stopped, or its page closed)."""
        with self._lock:
            if job in self._waiting:
                self._waiting.remove(job)
        self._admit()

    def _admit(self) -> None:
        """Start waiting jobs, first in line first, while slots are free."""
        admitted = []
        with self._lock:
            self._running = [j for j in self._running if not j.finished()]
            while self._waiting and len(self._running) < self.limit:
                job = self._waiting.pop(0)
                self._running.append(job)
                admitted.append(job)
        for job in admitted:
            job._admitted.set()

    def acquire(self, job: "TrainingJob") -> None:
        """Take a slot now, or raise ServerBusy (for runs that cannot wait)."""
        with self._lock:
            self._running = [j for j in self._running if not j.finished()]
            self._check_share(job)
            if len(self._running) + len(self._waiting) >= self.limit:
                # A job that has just started has no estimate yet; the others say when a slot frees up.
                estimates = [s for s in (j.seconds_left() for j in self._running) if s is not None]
                soonest = min(estimates, default=None)
                minutes = max(1, round(soonest / 60)) if soonest is not None else None
                wait = (f" Try again in about {minutes} minute{'s' if minutes != 1 else ''}." if minutes is not None
                        else " Try again in a few minutes.")
                going = len(self._running)
                raise ServerBusy(f"The server is busy: {going} training run{'s are' if going != 1 else ' is'} going, "
                                 f"the most it allows at once.{wait}")
            self._running.append(job)

    def release(self, job: "TrainingJob") -> None:
        with self._lock:
            if job in self._running:
                self._running.remove(job)
        self._admit()
