"""Every visitor's session, under a private token, until a sweeper frees it: gone longer than the grace period.

Streamlit keeps a disconnected session for a while so that a reconnect can resume it, and drops it only
lazily, when some other visitor connects or leaves: on a quiet server a closed tab's models, text and
temporary folder would stay indefinitely. Here every session is tracked from its first page run, and a
session that has been disconnected for the grace period (CHARLM_ABANDON_AFTER_S) is released by this
sweeper, whoever else is or is not connected.

A reload starts a new Streamlit session. Each tracked session holds a token (its visitor has it in the
page address, app/sessions.py); a new session that shows the token of one not yet swept claims it, and
the old session is then no longer tracked, so its state, now the new session's, is never released with it.
Tokens are kept only as their SHA-256, looked up in a dict: the token itself is never stored, logged or
compared a character at a time.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
from typing import Callable

from streamlit import runtime

from . import server, state
from . import settings as settings_mod

_LOG = logging.getLogger(__name__)
TOKEN_BYTES = 32   # a token's randomness: 256 bits, far beyond guessing


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class Visitors:
    """The sessions this server has seen, each under its visitor's token; sweep() releases those gone for
    longer than `grace_s`, claim() hands one to the new session of a visitor who came back with its token."""

    def __init__(self, grace_s: float, is_active: Callable[[str], bool], clock: Callable[[], float] = time.monotonic):
        self.grace_s, self.is_active, self.clock = grace_s, is_active, clock
        self._lock = threading.Lock()
        self._states: dict[str, object] = {}       # session id -> its session state
        self._gone_since: dict[str, float] = {}    # session id -> when it was first seen disconnected
        self._holders: dict[str, str] = {}         # SHA-256 of a token -> the session id holding it
        self._tokens: dict[str, str] = {}          # session id -> SHA-256 of its token

    def track(self, session_id: str, session_state) -> None:
        with self._lock:
            self._states[session_id] = session_state
            self._gone_since.pop(session_id, None)

    def tracked(self) -> int:
        with self._lock:
            return len(self._states)

    def issue(self, session_id: str, session_state) -> str:
        """A new token for this session (any earlier one of its own stops working); it is tracked from now."""
        token = secrets.token_urlsafe(TOKEN_BYTES)
        with self._lock:
            self._drop_token(session_id)
            self._holders[_digest(token)] = session_id
            self._tokens[session_id] = _digest(token)
            self._states[session_id] = session_state
            self._gone_since.pop(session_id, None)
        return token

    def holds(self, session_id: str, token: str) -> bool:
        with self._lock:
            return self._holders.get(_digest(token)) == session_id

    def claim(self, token: str, session_id: str, session_state):
        """Give the token's session to this one; -> the old session's state to adopt, or None for a token
        nobody holds (made up, released, or this session's own).

        The old session is no longer tracked: the sweeper will not release what the new session now holds.
        If it is still open (the address opened in a second tab), the new one wins; app/sessions.py tells it.
        """
        digest = _digest(token)
        with self._lock:
            holder = self._holders.get(digest)
            if holder is None or holder == session_id:
                return None
            old_state = self._states.pop(holder, None)
            self._gone_since.pop(holder, None)
            del self._tokens[holder]
            self._drop_token(session_id)
            self._holders[digest] = session_id
            self._tokens[session_id] = digest
            self._states[session_id] = session_state
            self._gone_since.pop(session_id, None)
        return old_state

    def _drop_token(self, session_id: str) -> None:
        digest = self._tokens.pop(session_id, None)
        if digest is not None:
            self._holders.pop(digest, None)

    def sweep(self) -> list:
        """Release every session disconnected for at least the grace period; -> their session states."""
        now = self.clock()
        expired = []
        with self._lock:
            for session_id in list(self._states):
                if self.is_active(session_id):
                    self._gone_since.pop(session_id, None)
                elif now - self._gone_since.setdefault(session_id, now) >= self.grace_s:
                    expired.append(self._states.pop(session_id))
                    del self._gone_since[session_id]
                    self._drop_token(session_id)   # its token now starts a fresh session
        if expired:
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


def is_browser_session(session_id: str) -> bool:
    """True for a connected browser's session; False in a script or an AppTest run (nothing to sweep there)."""
    return runtime.exists() and runtime.get_instance().is_active_session(session_id)


def _visitors(grace_s: float, every_s: float) -> Visitors:
    visitors = Visitors(grace_s, is_browser_session)
    threading.Thread(target=visitors.run_forever, args=(every_s,), name="charlm-sweeper", daemon=True).start()
    return visitors


def registry() -> Visitors:
    """This server's visitors, and the sweeper that frees those gone for the grace period (started once, and
    kept where a client's clear_cache cannot reach it: app/server.py)."""
    settings = settings_mod.get()
    grace_s, every_s = settings.abandon_after_s, settings.sweep_every_s
    return server.once(("visitors", grace_s, every_s), lambda: _visitors(grace_s, every_s))
