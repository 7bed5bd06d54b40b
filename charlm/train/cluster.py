"""Training runs on a Dask cluster (CHARLM_CLUSTER=tcp://HOST:8786): the web server submits each run as a task,
the cluster's scheduler places it on a worker with the CPUs it asks for, and its events and model files come
back through the cluster (no shared disk). Why Dask and not Ray: bench/cluster_engines.py, README.

On the worker the task trains in a process of its own (charlm.train.worker), as a run does on one machine: a
run that dies ends that process only, and the task reports why. So a worker must be able to start processes:
start it without a nanny (`dask worker ADDRESS --no-nanny --resources CPU=N`; README, "Training at scale").

Messages from the task, on a cluster queue named for the run: ("started", (host, pid)); ("file", (name, bytes))
for a model or resume file just written, sent before the event that names it; ("event", Progress). The task's
result says how the run ended. A stop is a cluster event the task watches.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Callable

from charlm.errors import UserError
from charlm.files import write_atomically
from charlm.train import worker
from charlm.train.events import Progress, TrainResult

WAIT_S = 0.5            # how long the server waits on the run's queue before it looks at its stop flag again
CONNECT_S = 20.0        # how long connecting to the cluster may take
_clients: dict[str, object] = {}
_clients_lock = threading.Lock()


class ClusterError(UserError):
    """The cluster could not be reached, or lost the run."""


def client(address: str):
    """This server's one client for the cluster at `address` (connected on first use)."""
    from distributed import Client

    with _clients_lock:
        if address not in _clients:
            try:
                _clients[address] = Client(address, timeout=CONNECT_S, set_as_default=False)
            except (OSError, TimeoutError) as err:
                raise ClusterError(f"the training cluster at {address} cannot be reached ({err}); ask the "
                                   "server's operator to check CHARLM_CLUSTER and that its scheduler runs") from None
        return _clients[address]


def close(address: str) -> None:
    """Disconnect this server's client from the cluster at `address`, if it has one."""
    with _clients_lock:
        connected = _clients.pop(address, None)
    if connected is not None:
        connected.close()


def run(request: worker.RunRequest, on_progress: Callable[[Progress], None], stop: threading.Event, address: str,
        on_start: Callable[[int], None] | None = None,
        gives_up: Callable[[], bool] | None = None) -> TrainResult | None:
    """Train on the cluster and wait: as worker.run, with the files the run writes brought back beside
    request's `out` as they are written. on_start gets the PID of the run's process on its worker. Before it
    starts, stop or gives_up() withdraws it from the cluster: -> None."""
    from distributed import Event, Queue

    cluster = client(address)
    name = f"charlm-run-{uuid.uuid4().hex}"
    local = Path(request.kwargs["out"]).parent
    messages, stopper = Queue(name, client=cluster), Event(f"{name}-stop", client=cluster)
    shipped, sent = _portable(request)
    future = cluster.submit(remote, shipped, sent, name, key=name, pure=False, retries=0,
                            resources={"CPU": request.threads or 1})
    started = False
    try:
        while not future.done() or messages.qsize():
            if not started and (stop.is_set() or (gives_up is not None and gives_up())):
                future.cancel()   # still waiting for a worker: withdrawn (a task starting now sees the stop)
                stopper.set()
                return None
            if stop.is_set() and not stopper.is_set():
                stopper.set()
            try:
                kind, payload = messages.get(timeout=WAIT_S)
            except TimeoutError:
                continue
            if kind == "started":
                started = True
                if on_start is not None:
                    on_start(payload[1])
            elif kind == "file":
                write_atomically(local / payload[0], payload[1])
            elif kind == "event":
                on_progress(_here(payload, local))
        return _outcome(future, local)
    finally:
        if not future.done():
            stopper.set()
            future.cancel()
        messages.close()


def _portable(request: worker.RunRequest) -> tuple[worker.RunRequest, dict[str, bytes]]:
    """The request as the cluster can run it: paths on this machine become names, and the files it reads go
    with it (a resumed run's resume file)."""
    kwargs, sent = dict(request.kwargs), {}
    kwargs["out"] = Path(kwargs["out"]).name
    resume = kwargs.get("resume")
    if resume is not None:
        path = Path(resume.path)
        try:
            sent[path.name] = path.read_bytes()
        except OSError as err:
            raise UserError(f"the run to go on with cannot be read ({err.strerror}): {path.name}") from None
        kwargs["resume"] = dataclasses.replace(resume, path=path.name)
    return dataclasses.replace(request, kwargs=kwargs), sent


def _here(event: Progress, local: Path) -> Progress:
    return dataclasses.replace(event, path=str(local / Path(event.path).name)) if event.path else event


def _outcome(future, local: Path) -> TrainResult:
    """The run's end, from the task's result: its TrainResult with this machine's paths, or the error it had."""
    try:
        kind, payload = future.result()
    except Exception as err:   # the cluster lost the task: its worker died, or it was cancelled
        raise ClusterError(f"the training cluster lost this run ({type(err).__name__}: {err})") from None
    if kind == "result":
        moved = {field: local / Path(getattr(payload, field)).name
                 for field in ("best_path", "last_path") if getattr(payload, field) is not None}
        return dataclasses.replace(payload, **moved)
    if kind == "bug":
        raise worker.RunBug(payload)
    raise UserError(payload)   # the run's own message, or why its process died


def remote(request: worker.RunRequest, sent: dict[str, bytes], name: str) -> tuple[str, object]:
    """The task, on a cluster worker: train in a process of its own in a private folder, sending events and
    files back on the run's queue; -> ("result", TrainResult) or (kind, message) for how it failed."""
    from distributed import Event, Queue

    messages, stopper = Queue(name), Event(f"{name}-stop")
    folder = Path(tempfile.mkdtemp(prefix="charlm-run-"))
    for file_name, data in sent.items():
        (folder / file_name).write_bytes(data)
    kwargs = dict(request.kwargs, out=folder / request.kwargs["out"])
    if kwargs.get("resume") is not None:
        kwargs["resume"] = dataclasses.replace(kwargs["resume"], path=folder / kwargs["resume"].path)
    stop, ended = threading.Event(), threading.Event()
    threading.Thread(target=_watch, args=(stopper, stop, ended), daemon=True).start()

    def progress(event: Progress) -> None:
        if event.kind == "checkpoint" and event.path and os.path.exists(event.path):
            messages.put(("file", (Path(event.path).name, Path(event.path).read_bytes())))
        messages.put(("event", event))

    try:
        started = lambda pid: messages.put(("started", (socket.gethostname(), pid)))   # noqa: E731
        return "result", worker.run(dataclasses.replace(request, kwargs=kwargs), progress, stop, on_start=started)
    except worker.RunBug as bug:
        return "bug", str(bug)
    except UserError as err:    # the run's own message, or worker.RunDied's
        return "user_error", str(err)
    finally:
        ended.set()
        shutil.rmtree(folder, ignore_errors=True)


def _watch(stopper, stop: threading.Event, ended: threading.Event) -> None:
    """On the worker: set `stop` once the server sets the run's cluster event."""
    while not ended.is_set():
        try:
            if stopper.wait(timeout=WAIT_S):
                stop.set()
                return
        except (TimeoutError, OSError):
            continue
