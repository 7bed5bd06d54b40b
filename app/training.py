"""Training helpers every page shares: the server's job slots, and a sidebar badge that keeps a job alive.

A job whose page stops polling stops itself (abandoned tab). So that a visitor can leave the Train page
and write with the model while it trains, every other page shows this badge, which polls and heartbeats.
"""

from __future__ import annotations

import os

import streamlit as st

from charlm import jobs
from charlm.device import cpu_cores, set_threads
from charlm.units import format_duration

from . import settings as settings_mod
from . import state

POLL_S = 1.0   # seconds between polls of a running job


@st.cache_resource
def _slots(limit: int) -> jobs.Slots:
    return jobs.Slots(limit)


def slots() -> jobs.Slots:
    """The one set of training slots on this server, shared by every visitor."""
    return _slots(settings_mod.get().max_jobs)


@st.cache_resource
def _set_threads(threads: int | None) -> None:
    set_threads(threads)


def share_cores() -> None:
    """Give each of the server's training jobs its share of the cores, once per server process.

    Torch's thread count is per process. With more threads at work than cores (two jobs each using every
    core, or other programs on the machine), threads wait on each other at every operation and a step can
    take a hundred times longer. CHARLM_THREADS, when set, is used as it is.
    """
    if os.environ.get("CHARLM_THREADS"):
        _set_threads(None)   # set_threads reads CHARLM_THREADS itself
        return
    _set_threads(max(1, cpu_cores() // settings_mod.get().max_jobs))


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
            st.caption(f"validation {latest.val_bits:.3f} bits/char")
    else:
        st.caption(f"Training {snap.status}.")
    st.page_link("app/train_page.py", label="Training details", icon=":material/monitoring:")
    if was_running and not job.is_alive():
        st.rerun()   # once: the whole page shows the final state and polling stops
