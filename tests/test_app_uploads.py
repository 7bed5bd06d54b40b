"""What the app keeps of uploads: Streamlit's upload store guarded (app/uploads.py), models as the app wrote them."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import streamlit
from starlette.exceptions import HTTPException
from streamlit.runtime.memory_uploaded_file_manager import MemoryUploadedFileManager
from streamlit.runtime.uploaded_file_manager import UploadedFileRec
from streamlit.testing.v1 import AppTest

import hostile_files as hostile
from app import settings, state, uploads
from charlm.modelfile import checkpoint
from helpers import APP

FOX = "the quick brown fox jumps over the lazy dog; the five boxing wizards jump quickly.\n" * 60

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


# --- what is kept of an uploaded model, and the disk all visitors' folders share ---------------------------

PAD = 5_000_000   # zeros after a valid model: the issue's padded upload, smaller


def new_visitor() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page("app/pages/train.py").run()
    assert not at.exception
    return at


def upload_model(at: AppTest, name: str, data: bytes) -> AppTest:
    at.file_uploader(key="checkpoint_upload").set_value((name, data, "application/octet-stream"))
    return at.run()


def kept_uploads(at: AppTest) -> list:
    return list(at.session_state["uploaded_models"].values()) if "uploaded_models" in at.session_state else []


def copy_of(trained, i: int) -> bytes:
    """A distinct model file (its own key) of the same size as the trained one."""
    return hostile.with_fields(trained.checkpoint, preset=f"copy{i}")


@pytest.fixture
def visitors_env(app_env):
    made = []
    yield made
    for at in made:   # their folders go now, not whenever the garbage collector runs
        if "visitor_dir" in at.session_state:
            at.session_state["visitor_dir"].remove()


def test_a_padded_model_is_kept_as_the_app_wrote_it_not_as_uploaded(visitors_env, trained):
    model = checkpoint.to_bytes(trained.checkpoint)
    at = new_visitor()
    visitors_env.append(at)
    upload_model(at, "padded.safetensors", model + bytes(PAD))
    assert not at.error
    (upload,) = kept_uploads(at)
    size = upload.source.stat().st_size
    assert size < len(model) + 1000   # the model's own bytes; none of the padding
    again = checkpoint.load(upload.source)
    assert again.vocab == trained.checkpoint.vocab and again.preset == trained.checkpoint.preset
    for name, weights in trained.checkpoint.state_dict.items():
        assert np.array_equal(np.asarray(again.state_dict[name]), np.asarray(weights))


def test_the_same_model_padded_two_ways_is_one_upload(visitors_env, trained):
    model = checkpoint.to_bytes(trained.checkpoint)
    at = new_visitor()
    visitors_env.append(at)
    upload_model(at, "a.safetensors", model + bytes(10))
    upload_model(at, "b.safetensors", model + bytes(20))
    assert len(kept_uploads(at)) == 1


def budget_for(models: float, one: int, monkeypatch) -> None:
    """CHARLM_MAX_DISK_MB set to what this process's visitor folders hold now plus `models` kept models."""
    monkeypatch.setenv("CHARLM_MAX_DISK_MB", str((state.disk_used() + models * one) / 1e6))


def test_a_visitors_oldest_upload_makes_room_within_the_disk_budget(visitors_env, trained, monkeypatch):
    one = len(checkpoint.to_bytes(trained.checkpoint)) + 1000
    at = new_visitor()
    visitors_env.append(at)
    budget_for(2.5, one, monkeypatch)   # room for two
    for i in range(3):
        upload_model(at, f"m{i}.safetensors", copy_of(trained, i))
        assert not at.error
    assert [m.label for m in kept_uploads(at)] == ["Uploaded: m1.safetensors", "Uploaded: m2.safetensors"]
    assert state.disk_used() <= settings.get().max_disk_mb * 1e6


def test_a_full_server_says_so_and_keeps_what_others_have(visitors_env, trained, monkeypatch):
    one = len(checkpoint.to_bytes(trained.checkpoint)) + 1000
    first, second = new_visitor(), new_visitor()
    visitors_env += [first, second]
    budget_for(1.5, one, monkeypatch)   # room for one
    upload_model(first, "m0.safetensors", copy_of(trained, 0))
    upload_model(second, "m1.safetensors", copy_of(trained, 1))
    assert not second.exception
    assert "The server's disk for visitors is full" in second.error[0].value.replace("\\", "")
    assert kept_uploads(second) == [] and len(kept_uploads(first)) == 1
    assert kept_uploads(first)[0].source.exists()


def test_a_run_is_not_started_on_a_full_server(visitors_env, trained, monkeypatch):
    at = new_visitor()
    visitors_env.append(at)
    at.switch_page("app/pages/corpus.py").run()
    at.file_uploader(key="corpus_upload").set_value(("fox.txt", FOX.encode(), "text/plain")).run()
    assert "corpus" in at.session_state
    at.switch_page("app/pages/train.py").run()
    filler = state._VisitorDir()   # another visitor's files fill the disk
    (filler.path / "big").write_bytes(bytes(100_000))
    monkeypatch.setenv("CHARLM_MAX_DISK_MB", str(state.disk_used() / 1e6 - 0.01))
    at.selectbox(key="train_preset").set_value("tiny").run()
    at.button(key="start").click().run()
    assert not at.exception and "job" not in at.session_state
    assert any("The server's disk for visitors is full" in w.value.replace("\\", "") for w in at.warning)
    filler.remove()


def test_making_room_drops_the_oldest_of_a_visitors_things_first(app_env, monkeypatch):
    folder = state._VisitorDir()
    things, dropped = [], []
    for i in range(3):
        path = folder.path / f"thing{i}"
        path.mkdir()
        (path / "data").write_bytes(bytes(10_000))
        os.utime(path, ns=(i * 10**9, i * 10**9))   # thing0 is the oldest
        things.append(state.Droppable(path, lambda path=path: (dropped.append(path.name), shutil.rmtree(path))))
    monkeypatch.setenv("CHARLM_MAX_DISK_MB", str((state.disk_used() - 15_000) / 1e6))
    state.make_room(0, list(reversed(things)))
    assert dropped == ["thing0", "thing1"]
    with pytest.raises(state.DiskFull, match="CHARLM_MAX_DISK_MB"):
        state.make_room(10**9, [])
    folder.remove()
