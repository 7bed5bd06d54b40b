"""Every visitor's session, under the key of the browser that opened it, until a sweeper frees it: gone longer
than the grace period.

Streamlit keeps a disconnected session for a while so that a reconnect can resume it, and drops it only
lazily, when some other visitor connects or leaves: on a quiet server a closed tab's models, text and
temporary folder would stay indefinitely. Here every session is tracked from its first page run, and a
session that has been disconnected for the grace period (CHARLM_ABANDON_AFTER_S) is released by this
sweeper, whoever else is or is not connected.

A reload starts a new Streamlit session. Each tracked session belongs to a browser, known by a random key
that browser keeps in a cookie (app/browser_key.py); a new session of that browser adopts the browser's
session that ran last among those disconnected and not yet swept (app/sessions.py), and the old session is
then no longer tracked, so its state, now the new session's, is never released with it. A session still
connected in another tab is never adopted, and another browser's key reaches none of them. Keys (and the
tokens that addresses carried before, kept only to honour an old address in its own browser) are kept only as
their SHA-256: never stored, logged or compared a character at a time.
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
KEY_BYTES = 32   # a browser key's randomness: 256 bits, far beyond guessing


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def new_key() -> str:
    """A new browser's key: 43 URL-safe characters."""
    return secrets.token_urlsafe(KEY_BYTES)


class Visitors:
    """The sessions this server has seen, each under the key of its browser; sweep() releases those gone for
    longer than `grace_s`, adopt() hands one to a new session of the same browser."""

    def __init__(self, grace_s: float, is_active: Callable[[str], bool], clock: Callable[[], float] = time.monotonic):
        self.grace_s, self.is_active, self.clock = grace_s, is_active, clock
        self._lock = threading.Lock()
        self._states: dict[str, object] = {}       # session id -> its session state
        self._gone_since: dict[str, float] = {}    # session id -> when it was first seen disconnected
        self._ran: dict[str, float] = {}           # session id -> when its script last ran
        self._owners: dict[str, str] = {}          # session id -> SHA-256 of its browser's key
        self._holders: dict[str, str] = {}         # SHA-256 of an old address's token -> the session holding it
        self._tokens: dict[str, str] = {}          # session id -> SHA-256 of its old token

    def track(self, session_id: str, session_state, key: str | None = None, token: str | None = None) -> None:
        """On every run: this session is alive now, holds this state, and belongs to the browser with `key`.

        `token` is the one a session from before browser keys had in its address (it stays the session's).
        """
        with self._lock:
            self._states[session_id] = session_state
            self._gone_since.pop(session_id, None)
            self._ran[session_id] = self.clock()
            if key is not None:
                self._owners[session_id] = _digest(key)
            if token is not None and session_id not in self._tokens:
                self._holders[_digest(token)] = session_id
                self._tokens[session_id] = _digest(token)

    def tracked(self) -> int:
        with self._lock:
            return len(self._states)

    def knows(self, key: str) -> bool:
        """True while a session not yet swept belongs to the browser with this key (made up or expired: False)."""
        digest = _digest(key)
        with self._lock:
            return digest in self._owners.values()

    def owns(self, key: str, session_id: str) -> bool:
        with self._lock:
            return self._owners.get(session_id) == _digest(key)

    def adopt(self, key: str, session_id: str, session_state, token: str | None = None):
        """Give this new session of the browser with `key` that browser's last disconnected session; -> its state
        to take over, or None (none left, or all still connected in other tabs: this one starts afresh).

        `token`, from an old address, picks the session that holds it if it is one of those; otherwise it is
        ignored. The old session is no longer tracked: the sweeper will not release what this one now holds.
        """
        digest = _digest(key)
        with self._lock:
            ours = [sid for sid, owner in self._owners.items()
                    if owner == digest and sid != session_id and sid in self._states and not self.is_active(sid)]
            if not ours:
                return None
            named = self._holders.get(_digest(token)) if token else None
            earlier = named if named in ours else max(ours, key=lambda sid: self._ran.get(sid, 0.0))
            old_state = self._untrack(earlier)
            self._move_token(earlier, session_id)
            self._states[session_id], self._owners[session_id] = session_state, digest
            self._gone_since.pop(session_id, None)
            self._ran[session_id] = self.clock()
        return old_state

    def restart(self, session_id: str, session_state) -> None:
        """Start afresh: the session keeps its browser but no longer answers to an old address's token."""
        with self._lock:
            self._drop_token(session_id)
            self._states[session_id] = session_state
            self._gone_since.pop(session_id, None)
            self._ran[session_id] = self.clock()

    def _untrack(self, session_id: str):
        self._gone_since.pop(session_id, None)
        self._ran.pop(session_id, None)
        self._owners.pop(session_id, None)
        return self._states.pop(session_id, None)

    def _move_token(self, from_id: str, to_id: str) -> None:
        self._drop_token(to_id)
        digest = self._tokens.pop(from_id, None)
        if digest is not None:
            self._holders[digest] = to_id
            self._tokens[to_id] = digest

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
                    self._drop_token(session_id)
                    expired.append(self._untrack(session_id))   # its browser's next session starts afresh
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
    # Named apart from the registry of tokens that came before it, which a server updated in place still holds.
    return server.once(("browser-visitors", grace_s, every_s), lambda: _visitors(grace_s, every_s))
