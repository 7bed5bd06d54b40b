"""Training helpers every page shares: the server's job slots, and a sidebar badge that keeps a job alive.

A job whose page stops polling stops itself (abandoned tab). So that a visitor can leave the Train page
and write with the model while it trains, the router (streamlit_app.py) shows this badge on every other page;
it polls and heartbeats.
"""

from __future__ import annotations

import os
import sys

import streamlit as st
from streamlit import runtime
from streamlit.runtime.scriptrunner import get_script_run_ctx

from charlm.config import threads_setting
from charlm.train import jobs
from charlm.units import format_duration

from . import server, state, torch_side, visitors
from . import settings as settings_mod

POLL_S = 1.0   # seconds between polls of a running job


def _slots(limit: int, per_visitor: int | None = None, per_address: int | None = None) -> jobs.Slots:
    return server.once(("slots", limit, per_visitor, per_address),
                       lambda: jobs.Slots(limit, per_visitor=per_visitor, per_address=per_address))


def slots() -> jobs.Slots:
    """The one set of training slots on this server, shared by every visitor (a client cannot clear it)."""
    settings = settings_mod.get()
    return _slots(settings.max_jobs, settings.max_runs_per_visitor, settings.max_runs_per_address)


def holder() -> jobs.Holder:
    """Whom a run started now is for: this visitor (their folder, which a reload carries over), their address,
    and whether their page is still open (a run waiting in line leaves it soon after the page goes)."""
    ctx = get_script_run_ctx()
    session_id = ctx.session_id if ctx is not None else None
    if session_id is None or not visitors.is_browser_session(session_id):   # a script or an AppTest run
        return jobs.Holder(str(state.visitor_dir()))
    return jobs.Holder(str(state.visitor_dir()), _address(session_id),
                       lambda: visitors.is_browser_session(session_id))


def _address(session_id: str) -> str | None:
    """The network address of the session's connection (as the server saw it), or None when unknown."""
    client = runtime.get_instance().get_client(session_id)
    context = getattr(client, "client_context", None)
    return getattr(context, "remote_ip", None)


def _set_threads(threads: int | None) -> None:
    from charlm.nn.device import set_threads   # torch is loaded already (share_cores checks)
    server.once(("threads", threads), lambda: set_threads(threads) or True)


def share_cores() -> None:
    """Give each of the server's training jobs its share of the cores, once per server process.

    Torch's thread count is per process. With more threads at work than cores (two jobs each using every
    core, or other programs on the machine), threads wait on each other at every operation and a step can
    take a hundred times longer. CHARLM_THREADS, when set, is used as it is.

    Only torch's threads are set, so nothing happens until torch is loaded: a server that only writes and
    reads never loads it. The router calls this on every page run, and ready_for_a_run just before a run.
    """
    if "torch" not in sys.modules:
        return
    from charlm.nn.device import cpu_cores
    if os.environ.get("CHARLM_THREADS"):
        _set_threads(None)   # set_threads reads CHARLM_THREADS itself
        return
    _set_threads(max(1, cpu_cores() // settings_mod.get().max_jobs))


def separate() -> bool:
    """Whether runs train in worker processes of their own (CHARLM_RUNS_IN; the default) or in the server's."""
    return settings_mod.get().runs_in != "thread"


def run_options() -> dict:
    """TrainingJob's keywords for a run started now: where it runs, and its share of the cores (torch threads)
    when it has a process of its own."""
    # CHARLM_THREADS is read here, not in the worker: workers are forked from a fork server started with the
    # first run, which kept the settings of then.
    settings = settings_mod.get()
    if settings.cluster:   # the cluster's workers hold the cores; a run asks for its threads' worth of them
        return {"separate": True, "cluster": settings.cluster, "threads": threads_setting() or 1}
    if not separate():
        return {"separate": False}
    return {"separate": True, "threads": threads_setting(), "processes": settings.max_jobs}


def ready_for_a_run() -> bool:
    """Whether a run can start here; False, with a line saying how to install torch, without it. A run in the
    server's own process loads torch here and gives it its share of the cores (a run started on the page that
    first loads torch would otherwise take them all); a worker process loads it there, and the server never does.
    With a cluster, torch is the cluster's workers' business."""
    if settings_mod.get().cluster:
        return True
    if not (torch_side.installed() if separate() else torch_side.available()):
        st.info(torch_side.NEEDED, icon=":material/info:")
        return False
    if not separate():
        share_cores()
    return True


def sidebar_badge() -> None:
    """Progress of this visitor's job in the sidebar; polls (and heartbeats) only while the job runs."""
    job = state.job()
    if job is None:
        return
    running = state.is_running(job)
    with st.sidebar:
        st.fragment(run_every=POLL_S if running else None)(_badge)(running)


def _badge(was_running: bool) -> None:
    job = state.job()
    if job is None:
        return
    job.heartbeat()
    snap = job.snapshot()
    latest = snap.latest
    if snap.status == "queued":
        st.caption(f"Training: waiting for a free slot (number {snap.place or 1} in line).")
    elif job.is_alive():
        fraction = latest.fraction if latest else 0.0
        eta = f" · {format_duration(latest.eta_s)} left" if latest and latest.eta_s else ""
        st.progress(min(max(fraction, 0.0), 1.0), text=f"Training: {fraction:.0%}{eta}")
        if latest and latest.val_loss is not None:
            st.caption(f"validation {latest.val_bits:.3f} bits/char (latest)")
    else:
        st.caption(f"Training {snap.status}.")
    st.page_link("app/pages/train.py", label="Training details", icon=":material/monitoring:")
    if was_running and not job.is_alive():
        st.rerun()   # once: the whole page shows the final state and polling stops
