"""What the app keeps of uploads: Streamlit's upload store guarded (app/uploads.py), models as the app wrote them."""

from __future__ import annotations

import pytest
import streamlit
from starlette.exceptions import HTTPException
from streamlit.runtime.memory_uploaded_file_manager import MemoryUploadedFileManager
from streamlit.runtime.uploaded_file_manager import UploadedFileRec

from app import uploads

FILE = 1000   # server.maxUploadSize, in bytes, for these tests


def test_the_guard_is_written_for_this_streamlit():
    # GuardedUploads relies on 1.67.0's MemoryUploadedFileManager (file_storage, _total_bytes, _lock, add_file
    # called by the upload route after the body is read); another version needs the guard read again.
    assert streamlit.__version__ == uploads.STREAMLIT_VERSION == "1.67.0"


@pytest.fixture
def store(monkeypatch):
    monkeypatch.setattr(uploads, "_max_file_bytes", lambda: FILE)
    active = {"a", "b", "c", "d"}
    manager = uploads.guard(MemoryUploadedFileManager("/_stcore/upload_file"), lambda sid: sid in active)
    manager.active = active
    return manager


def put(store, session_id: str, file_id: str, nbytes: int) -> None:
    store.add_file(session_id, UploadedFileRec(file_id, "f.bin", "application/octet-stream", bytes(nbytes)))


def issue(store, session_id: str, count: int = 1) -> list[str]:
    return [url.file_id for url in store.get_upload_urls(session_id, ["f.bin"] * count)]


def test_a_file_under_an_id_the_server_never_issued_is_refused(store):
    with pytest.raises(HTTPException) as refused:
        put(store, "a", "made-up", 10)
    assert refused.value.status_code == 403
    (other,) = issue(store, "b")
    with pytest.raises(HTTPException):   # an id issued to another session is not this one's
        put(store, "a", other, 10)
    assert store.get_files("a", ["made-up", other]) == [] and store._total_bytes == 0


def test_an_issued_file_is_kept_and_may_be_replaced(store):
    (file_id,) = issue(store, "a")
    put(store, "a", file_id, 600)
    put(store, "a", file_id, 900)   # the page re-sends it: counted once
    assert [len(f.data) for f in store.get_files("a", [file_id])] == [900]
    assert store.session_bytes("a") == 900


def test_a_session_past_its_budget_is_refused_and_keeps_what_it_had(store):
    first, second, third = issue(store, "a", 3)
    put(store, "a", first, 900)
    put(store, "a", second, 900)
    with pytest.raises(HTTPException) as refused:
        put(store, "a", third, 900)
    assert refused.value.status_code == 413
    assert store.session_bytes("a") == 1800


def test_all_sessions_together_stay_within_the_server_budget(store):
    for session_id in ("a", "b"):
        for file_id in issue(store, session_id, 2):
            put(store, session_id, file_id, 1000)
    (file_id,) = issue(store, "c")
    with pytest.raises(HTTPException) as refused:
        put(store, "c", file_id, 1)
    assert refused.value.status_code == 413
    assert store._total_bytes == uploads.SERVER_FILES * FILE


def test_files_of_a_session_that_went_are_dropped_and_free_the_budget(store):
    for session_id in ("a", "b"):
        for file_id in issue(store, session_id, 2):
            put(store, session_id, file_id, 1000)
    store.active.discard("a")   # its tab closed: Streamlit keeps the session for a reconnect, and its files
    (file_id,) = issue(store, "c")
    put(store, "c", file_id, 1000)
    assert store.session_bytes("a") == 0 and "a" not in store._issued
    assert store._total_bytes == 3000


def test_a_session_holds_only_so_many_unused_ids(store):
    ids = issue(store, "a", uploads.MAX_ISSUED + 5)
    assert len(store._issued["a"]) == uploads.MAX_ISSUED
    with pytest.raises(HTTPException):
        put(store, "a", ids[0], 10)   # the oldest were forgotten
    put(store, "a", ids[-1], 10)


def test_install_guards_the_running_servers_store_once(monkeypatch):
    manager = MemoryUploadedFileManager("/_stcore/upload_file")

    class Runtime:
        uploaded_file_mgr = manager

        @staticmethod
        def is_active_session(session_id):
            return True

    monkeypatch.setattr(uploads.runtime, "exists", lambda: True)
    monkeypatch.setattr(uploads.runtime, "get_instance", lambda: Runtime)
    uploads.install()
    uploads.install()
    assert type(manager) is uploads.GuardedUploads
    with pytest.raises(HTTPException):
        put(manager, "a", "made-up", 10)
