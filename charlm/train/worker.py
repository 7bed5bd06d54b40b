"""A training run in a process of its own: the web server's side (start it, stream its events, stop it, see it
die) and the worker's side (train, and send each event back). Nothing but the pipe joins them.

A run in its own process shares nothing with the server or another run: random generators, torch's thread
pool, the allocator, the interpreter lock. One that crashes or is killed (out of memory, a fault in native
code) ends that process only; the server reads the pipe's end and reports the run as failed, with why.

Workers come from a fork server (multiprocessing's "forkserver"): a small single-threaded process started
with the first run, which has imported torch and the trainer once, and forks a fresh worker for each run. A
worker is thus never a fork of the web server (which holds threads and visitors' data), and starts in
milliseconds rather than the seconds a new interpreter needs to import torch.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import tempfile
import threading
import traceback
from dataclasses import dataclass
from typing import Any, Callable

from charlm.errors import UserError
from charlm.train.events import Progress, TrainResult

_log = logging.getLogger(__name__)
POLL_S = 0.2          # how often the server looks at a quiet pipe, its stop flag and the worker's health
JOIN_S = 30.0         # how long a worker that was asked to stop may take before it is killed
_PRELOAD = ["charlm.train.trainer"]   # what the fork server imports once, for every worker it forks
UNIX_PATH_BYTES = 107                 # the longest path a Unix socket may have (Linux's sun_path, less its 0)
SOCKET_NAME_BYTES = 34                # what multiprocessing adds to the temporary folder: /pymp-…/listener-…
# How much lower a run's scheduling priority is than its server's: a run uses all the CPU it is given for
# minutes, a page wants a moment of it now, so where they compete the page goes first. Alone, a run is as
# fast as before (niceness only orders who waits).
NICENESS = 10


class RunDied(UserError):
    """The run's process ended without a result: killed, out of memory, or a crash in native code."""


class RunBug(Exception):
    """The run raised an unexpected exception in its process; the message carries its traceback."""


@dataclass(frozen=True)
class RunRequest:
    """Everything a worker needs, sent once through the pipe: train()'s arguments, and its thread count."""
    args: tuple               # train()'s positional arguments: corpus, model config, training config
    kwargs: dict[str, Any]    # its keywords: preset, out, resume, start
    threads: int | None       # torch threads for this run; None: its share of the cores ...
    processes: int = 1        # ... when this many runs share them


def _context():
    """The fork server's context; where its socket could not be made, a fresh interpreter per run ("spawn":
    a second or two more to start). The fork server listens on a Unix socket in the temporary folder, and
    such a path has at most 107 bytes: a deep TMPDIR (a test's) leaves no room for multiprocessing's own
    pymp-XXXXXXXX/listener-XXXXXXXX."""
    if len(os.fsencode(tempfile.gettempdir())) + SOCKET_NAME_BYTES > UNIX_PATH_BYTES:
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(_PRELOAD)
    return context


def died(exitcode: int | None) -> str:
    """For people: why a worker ended without a result."""
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = " (the machine may have run out of memory)" if name == "SIGKILL" else ""
        return f"the run's process was killed by {name}{hint} before it finished"
    return f"the run's process ended unexpectedly (exit code {exitcode}) before it finished"


def run(request: RunRequest, on_progress: Callable[[Progress], None], stop: threading.Event,
        on_start: Callable[[int], None] | None = None) -> TrainResult:
    """Train in a worker process and wait for it: its events go to on_progress, stop.set() stops it.

    -> its TrainResult. Raises UserError with the run's own message (bad settings, out of memory), RunBug when
    the run failed unexpectedly, RunDied when the process ended without a word. on_start gets the worker's PID.
    """
    context = _context()
    ours, theirs = context.Pipe()
    process = context.Process(target=serve, args=(theirs, request), name="charlm-run", daemon=True)
    process.start()
    theirs.close()   # the worker holds the other end: when it dies, our reads end
    if on_start is not None:
        on_start(process.pid)
    try:
        return _pump(ours, process, on_progress, stop)
    finally:
        ours.close()
        process.join(JOIN_S)
        if process.is_alive():
            process.kill()
            process.join()


def _pump(pipe, process, on_progress: Callable[[Progress], None], stop: threading.Event) -> TrainResult:
    """Read the worker's messages until it reports its end, or dies."""
    asked = False
    while True:
        if stop.is_set() and not asked:
            try:
                pipe.send("stop")
            except (BrokenPipeError, OSError):
                pass   # it has gone: the read below sees why
            asked = True
        try:
            if not pipe.poll(POLL_S):
                if not process.is_alive() and not pipe.poll():
                    raise RunDied(died(process.exitcode))
                continue
            kind, payload = pipe.recv()
        except (EOFError, OSError):
            process.join(JOIN_S)
            raise RunDied(died(process.exitcode)) from None
        if kind == "event":
            on_progress(payload)
        elif kind == "result":
            return payload
        elif kind == "user_error":
            raise UserError(payload)
        else:
            raise RunBug(payload)


def serve(pipe, request: RunRequest) -> None:
    """The worker: train, sending each event, then the result (or the error), through the pipe."""
    from charlm.nn.device import set_threads
    from charlm.train.trainer import train

    stop = threading.Event()
    threading.Thread(target=_listen, args=(pipe, stop), name="charlm-run-stop", daemon=True).start()
    emit = pipe.send   # only the trainer's thread (this one) sends; the listener only reads
    try:
        os.nice(NICENESS)   # this process's own, never the server's
        set_threads(request.threads, processes=request.processes)
        result = train(*request.args, **request.kwargs, on_progress=lambda e: emit(("event", e)), stop=stop)
        emit(("result", result))
    except UserError as err:
        emit(("user_error", str(err)))
    except Exception:   # a bug: the server logs the details and tells the visitor so
        emit(("bug", traceback.format_exc()))
    finally:
        pipe.close()


def _listen(pipe, stop: threading.Event) -> None:
    """In the worker: set `stop` when the server asks, or when the server's end of the pipe goes away."""
    try:
        while pipe.recv() != "stop":
            pass
    except (EOFError, OSError):
        pass
    stop.set()
