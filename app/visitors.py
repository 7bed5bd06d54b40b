"""Closed tabs are swept: a server-wide thread frees an expired visitor's jobs, folder and memory.

Streamlit keeps a disconnected session for a while so that a reconnect can resume it, and drops it only
lazily, when some other visitor connects or leaves: on a quiet server a closed tab's models, text and
temporary folder would stay indefinitely. Here every session is tracked from its first page run, and a
session that has been disconnected for the grace period (CHARLM_ABANDON_AFTER_S) is released by this
sweeper, whoever else is or is not connected.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

import streamlit as st
from streamlit import runtime
from streamlit.runtime.scriptrunner import get_script_run_ctx

from . import settings as settings_mod

_LOG = logging.getLogger(__name__)


class Visitors:
    """The sessions this server has seen; sweep() releases those gone for longer than `grace_s`."""

    def __init__(self, grace_s: float, is_active: Callable[[str], bool], clock: Callable[[], float] = time.monotonic):
        self.grace_s, self.is_active, self.clock = grace_s, is_active, clock
        self._lock = threading.Lock()
        self._states: dict[str, object] = {}       # session id -> its session state
        self._gone_since: dict[str, float] = {}    # session id -> when it was first seen disconnected

    def track(self, session_id: str, session_state) -> None:
        with self._lock:
            self._states[session_id] = session_state
            self._gone_since.pop(session_id, None)

    def tracked(self) -> int:
        with self._lock:
            return len(self._states)

    def sweep(self) -> list[str]:
        """Release every session disconnected for at least the grace period; -> their ids."""
        now = self.clock()
        expired = []
        with self._lock:
            for session_id in list(self._states):
                if self.is_active(session_id):
                    self._gone_since.pop(session_id, None)
                elif now - self._gone_since.setdefault(session_id, now) >= self.grace_s:
                    expired.append(self._states.pop(session_id))
                    del self._gone_since[session_id]
        if expired:
            from . import state   # here, not at the top: state imports torch, which the first page view avoids
            for session_state in expired:
                state.release(session_state)
        return expired

    def run_forever(self, every_s: float) -> None:
        while True:
            time.sleep(every_s)
            try:
                self.sweep()
            except Exception:   # the sweeper must outlive any one bad session
                _LOG.exception("sweeping expired sessions failed")


def _is_active(session_id: str) -> bool:
    return runtime.exists() and runtime.get_instance().is_active_session(session_id)


@st.cache_resource
def _visitors(grace_s: float, every_s: float) -> Visitors:
    visitors = Visitors(grace_s, _is_active)
    threading.Thread(target=visitors.run_forever, args=(every_s,), name="charlm-sweeper", daemon=True).start()
    return visitors


def track() -> None:
    """Called on every page run: this session is swept once it has been gone for the grace period."""
    ctx = get_script_run_ctx()
    if ctx is None or not _is_active(ctx.session_id):
        return   # not a browser session (a script, or an AppTest run): nothing to sweep
    settings = settings_mod.get()
    _visitors(settings.abandon_after_s, settings.sweep_every_s).track(ctx.session_id, ctx.session_state)
