"""What Streamlit's upload endpoint keeps: only files a page asked for, within a budget per session and server-wide.

Streamlit 1.67 stores every PUT to /_stcore/upload_file/<session>/<file id> in memory, for any file id a
client makes up, and forgets a closed tab's files only if its session is shut down (an expired disconnected
session never is). `install()` turns the server's one MemoryUploadedFileManager into a GuardedUploads, in
place, so the upload route, the runtime and every session keep using the same object:
- a file is accepted only for an id this server issued to that session (the frontend asks for upload URLs
  before each upload: a FileURLsRequest), else the PUT is refused with 403;
- a session holds at most SESSION_FILES x server.maxUploadSize, and all sessions together at most
  SERVER_FILES x server.maxUploadSize; a PUT past either gets 413 and keeps nothing;
- files of sessions that are no longer connected are dropped whenever a file is added or a session ends.
The body of a refused PUT has been read by then (Streamlit reads it before handing it on), but it is freed
with the request: what stays is bounded.
"""

from __future__ import annotations

import logging
import threading

import streamlit
from starlette.exceptions import HTTPException
from streamlit import config, runtime
from streamlit.runtime.memory_uploaded_file_manager import MemoryUploadedFileManager

log = logging.getLogger(__name__)

STREAMLIT_VERSION = "1.67.0"   # what GuardedUploads was written against (tests/test_app_uploads.py checks it)
SESSION_FILES = 2              # a session's files, in server.maxUploadSize units: a model and a text at once
SERVER_FILES = 4               # every session's files together, likewise
MAX_ISSUED = 32                # ids a session may hold unused; the oldest are forgotten first

_install_lock = threading.Lock()
_looked_at = None   # the store install() last looked at (and warned about, if it could not guard it)


def _max_file_bytes() -> int:
    return int(config.get_option("server.maxUploadSize")) * 1024 * 1024   # Streamlit's unit: MiB


def session_budget() -> int:
    return SESSION_FILES * _max_file_bytes()


def server_budget() -> int:
    return SERVER_FILES * _max_file_bytes()


class GuardedUploads(MemoryUploadedFileManager):
    """Streamlit's in-memory upload store, accepting only issued ids and only within the budgets."""

    _issued: dict[str, dict[str, None]]   # session id -> the ids issued to it, oldest first
    _guard: threading.RLock               # held across check-and-add, so two PUTs cannot both squeeze in

    def _guard_state(self, is_active) -> None:
        self._issued = {}
        self._guard = threading.RLock()
        self._is_active = is_active

    def get_upload_urls(self, session_id, file_names):
        urls = super().get_upload_urls(session_id, file_names)
        with self._guard:
            issued = self._issued.setdefault(session_id, {})
            for url in urls:
                issued[url.file_id] = None
            while len(issued) > MAX_ISSUED:
                del issued[next(iter(issued))]
        return urls

    def add_file(self, session_id, file) -> None:
        with self._guard:
            self._drop_gone_sessions()
            if file.file_id not in self._issued.get(session_id, ()):
                raise HTTPException(status_code=403, detail="This upload was not asked for by the page.")
            held = self.file_storage.get(session_id, {})
            replaced = len(held[file.file_id].data) if file.file_id in held else 0
            grows = len(file.data) - replaced
            if sum(len(f.data) for f in held.values()) + grows > session_budget():
                raise HTTPException(status_code=413, detail="This page holds as many uploaded files as it may; "
                                                            "remove one first.")
            if self._total_bytes + grows > server_budget():
                raise HTTPException(status_code=413, detail="The server is holding as many uploads as it may; "
                                                            "try again in a minute.")
            super().add_file(session_id, file)

    def remove_session_files(self, session_id: str) -> None:
        with self._guard:
            super().remove_session_files(session_id)
            self._issued.pop(session_id, None)
            self._drop_gone_sessions()

    def _drop_gone_sessions(self) -> None:
        # A disconnected session waits for a reconnect that may never come, and is then forgotten without
        # being shut down: its files would stay for the server's lifetime. A reconnected tab re-uploads.
        for session_id in [s for s in set(self.file_storage) | set(self._issued) if not self._is_active(s)]:
            super().remove_session_files(session_id)
            self._issued.pop(session_id, None)

    def session_bytes(self, session_id: str) -> int:
        with self._lock:
            return sum(len(f.data) for f in self.file_storage.get(session_id, {}).values())


def guard(manager: MemoryUploadedFileManager, is_active) -> GuardedUploads:
    """Make `manager` a GuardedUploads in place (the files it holds stay); `is_active(session_id)` says
    whether a session is still connected."""
    if not isinstance(manager, GuardedUploads):
        manager.__class__ = GuardedUploads
        manager._guard_state(is_active)
    return manager


def install() -> None:
    """Guard this server's upload store, once; called by the entry script on every run (cheap after the first)."""
    if not runtime.exists():   # AppTest and bare scripts have no upload endpoint
        return
    global _looked_at
    rt = runtime.get_instance()
    with _install_lock:
        manager = rt.uploaded_file_mgr
        if isinstance(manager, GuardedUploads) or manager is _looked_at:
            return
        _looked_at = manager
        if type(manager) is not MemoryUploadedFileManager or streamlit.__version__ != STREAMLIT_VERSION:
            log.warning("upload store left unguarded: Streamlit %s with %s (written for %s's "
                        "MemoryUploadedFileManager)", streamlit.__version__, type(manager).__name__,
                        STREAMLIT_VERSION)
            return
        guard(manager, rt.is_active_session)
