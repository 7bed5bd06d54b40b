"""Sessions that survive a reload: a token claims a session not yet swept, and only its holder can.

The registry is tested with a fake clock (as tests/test_app_visitors.py does), the move of one session's
state into another with Streamlit's own SessionState, and the whole app with AppTest, each AppTest
standing for a browser tab (the reloaded tab being a second AppTest with the first one's address).
"""

from __future__ import annotations

import gc
import re
from pathlib import Path

import pytest
from streamlit.runtime.state import SafeSessionState, SessionState
from streamlit.testing.v1 import AppTest

from app import sessions, state, visitors
from helpers import poll

APP = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")
TEXT = "the quick brown fox jumps over the lazy dog; the five boxing wizards jump quickly.\n" * 60


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def streamlit_state(**items) -> SafeSessionState:
    session_state = SafeSessionState(SessionState(), lambda: None)
    for key, value in items.items():
        session_state[key] = value
    return session_state


# --- the registry ------------------------------------------------------------------------------

def test_a_token_is_long_and_random_and_the_registry_keeps_only_its_hash():
    registry = visitors.Visitors(grace_s=120, is_active=lambda sid: True)
    tokens = {registry.issue(f"s{i}", streamlit_state()) for i in range(50)}
    assert len(tokens) == 50
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{43}", token) for token in tokens)   # 256 bits, URL-safe
    kept = repr(vars(registry))
    assert not any(token in kept for token in tokens)


def test_a_returning_visitor_claims_their_session_within_the_grace_period():
    folder = state._VisitorDir()
    first = streamlit_state(visitor_dir=folder, corpus="a text")
    active = {"first": True, "second": True}
    clock = Clock()
    registry = visitors.Visitors(grace_s=120, is_active=lambda sid: active[sid], clock=clock)
    token = registry.issue("first", first)

    active["first"] = False                        # the page reloads: the old session is disconnected …
    registry.sweep()
    clock.now = 100
    second = streamlit_state()
    assert registry.claim(token, "second", second) is first   # … and the new one comes with its token
    assert registry.holds("second", token) and not registry.holds("first", token)
    sessions.adopt(first, second)

    clock.now = 10_000                             # long after the old session's grace period
    assert registry.sweep() == []                  # it is no longer tracked: nothing of the visitor's is released
    assert folder.path.exists() and second["corpus"] == "a text"
    active["second"] = False
    registry.sweep()
    clock.now = 10_120
    assert registry.sweep() == [second]            # the new session is swept as any other
    assert not folder.path.exists()
    assert registry.claim(token, "third", streamlit_state()) is None   # and its token starts afresh


def test_a_made_up_token_an_expired_one_and_an_earlier_one_claim_nothing():
    clock = Clock()
    registry = visitors.Visitors(grace_s=60, is_active=lambda sid: False, clock=clock)
    token = registry.issue("alice", FakeState())
    assert registry.claim("made-up", "mallory", FakeState()) is None
    assert registry.claim(token[:-1] + ("A" if token[-1] != "A" else "B"), "mallory", FakeState()) is None
    assert registry.claim(token, "alice", FakeState()) is None   # a session cannot claim its own token

    renewed = registry.issue("alice", FakeState())                # Start afresh: the old token is void
    assert registry.claim(token, "mallory", FakeState()) is None
    registry.sweep()
    clock.now = 60
    assert len(registry.sweep()) == 1
    assert registry.claim(renewed, "mallory", FakeState()) is None   # swept: nothing left to claim
    assert registry.tracked() == 0


class FakeState:
    """What the sweeper uses of a session state, with nothing in it."""

    filtered_state: dict = {}

    def __contains__(self, key):
        return False


def test_a_session_opened_twice_goes_on_in_the_latest_tab():
    registry = visitors.Visitors(grace_s=60, is_active=lambda sid: True)   # both tabs open
    first, second = streamlit_state(corpus="text"), streamlit_state()
    token = registry.issue("first", first)
    assert registry.claim(token, "second", second) is first
    sessions.adopt(first, second)
    assert second["corpus"] == "text"
    assert first.filtered_state == {sessions._MOVED: True}   # the first tab's next run starts afresh and says why


# --- moving the state ---------------------------------------------------------------------------

def test_adoption_moves_the_very_objects_and_the_folder_outlives_the_old_session(periodic_corpus):
    folder = state._VisitorDir()
    chosen = state.ChosenCorpus(periodic_corpus, periodic_corpus.stats(), "pasted text")
    earlier = streamlit_state(visitor_dir=folder, corpus=chosen, earlier_runs=state.EarlierRuns())
    path = folder.path
    later = streamlit_state()
    sessions.adopt(earlier, later)
    assert later["visitor_dir"] is folder and later["corpus"] is chosen
    del earlier, folder, chosen
    gc.collect()                                    # the old session is dropped by Streamlit
    assert path.exists()                            # its folder is the new session's now
    state.release(later)
    assert not path.exists()


# --- the app ------------------------------------------------------------------------------------

@pytest.fixture
def tabs(app_env, monkeypatch):
    """AppTests as browser tabs of one server: tracked by a registry of their own, each its own session id."""
    registry = visitors.Visitors(grace_s=120, is_active=lambda sid: True)
    monkeypatch.setattr(visitors, "is_browser_session", lambda session_id: True)
    monkeypatch.setattr(visitors, "registry", lambda: registry)
    monkeypatch.setattr(sessions, "_session_id", lambda ctx: f"tab-{id(ctx.session_state._state)}")
    made = []

    def open_tab(token: str | None = None) -> AppTest:
        at = AppTest.from_file(APP, default_timeout=60)
        if token is not None:
            at.query_params[sessions.PARAM] = token
        made.append(at)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    open_tab.registry = registry
    yield open_tab
    for at in made:
        if "job" in at.session_state:
            at.session_state["job"].stop()
            at.session_state["job"].join(timeout=60)


def tab_id(at: AppTest) -> str:
    return f"tab-{id(at._session_state._state)}"


def token_of(at: AppTest) -> str:
    return at.query_params[sessions.PARAM]


def bring_text(at: AppTest) -> None:
    at.switch_page("app/pages/corpus.py").run()
    at.file_uploader(key="corpus_upload").set_value(("fox.txt", TEXT.encode(), "text/plain"))
    at.run()
    assert "corpus" in at.session_state


def test_a_first_visit_gets_a_token_in_the_address_and_a_start_afresh_control(tabs):
    at = tabs()
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token_of(at))
    assert at.sidebar.button(key="start_afresh").label == "Forget it all and start afresh"
    other = tabs()
    assert token_of(other) != token_of(at)


def test_a_reload_brings_back_the_text_the_settings_and_what_was_written(tabs):
    before = tabs()
    bring_text(before)
    chosen = before.session_state["corpus"]
    before.switch_page("app/pages/generate.py").run()
    before.selectbox(key="gen_strategy").set_value("greedy").run()
    before.text_area(key="gen_prime").set_value("the quick ").run()
    before.button(key="write").click().run()
    written = before.session_state["gen_write_state"].texts[0]
    assert written
    before.text_area(key="gen_prime").set_value("not yet applied")   # typed, never sent: not kept

    after = tabs(token_of(before))                    # the reload: a new session, the same address
    assert token_of(after) == token_of(before)
    assert after.session_state["corpus"] is chosen
    assert after.selectbox(key="gen_strategy").value == "greedy"
    assert after.text_area(key="gen_prime").value == "the quick "
    assert written in after.get("code")[0].value    # the Write that was on the page
    after.switch_page("app/pages/corpus.py").run()
    assert "fox" in after.subheader[0].value and "Using uploaded file" in after.subheader[0].value
    assert after.file_uploader(key="corpus_upload").value is None   # an upload widget starts empty
    assert "corpus" not in before.session_state      # nothing is left in the old session


def test_a_tab_whose_session_went_on_in_another_starts_afresh_and_says_so(tabs):
    at = tabs()
    first = token_of(at)
    # What adopt() leaves in the session a later tab took over (AppTest cannot rerun a page whose widgets'
    # values are gone, as a browser can: it reads them back from the session state).
    del at.session_state[sessions._TOKEN]
    at.session_state[sessions._MOVED] = True
    at.run()
    assert token_of(at) != first and not at.exception
    assert "opened in another tab" in at.info[0].value
    assert tabs.registry.claim(first, "someone", streamlit_state()) is None


@pytest.mark.slow
def test_a_reload_mid_training_finds_the_same_job_still_running(tabs):
    before = tabs()
    bring_text(before)
    before.switch_page("app/pages/train.py").run()
    before.selectbox(key="train_preset").set_value("tiny").run()
    before.number_input(key="budget_minutes").set_value(2.0)
    before.button(key="start").click().run()
    job = before.session_state["job"]
    assert job.is_alive()
    folder = before.session_state["visitor_dir"].path

    after = tabs(token_of(before))
    after.switch_page("app/pages/train.py").run()
    assert after.session_state["job"] is job and job.is_alive()
    assert after.selectbox(key="train_preset").value == "tiny"
    assert any(b.label == "Stop" for b in after.button)
    assert folder.exists()
    poll(lambda: job.best_checkpoint() is not None, 60, "the run's first checkpoint", every_s=0.5)
    after.switch_page("app/pages/generate.py").run()
    assert after.selectbox(key="gen_model").value == "trained"   # its model, in Generate
    assert job.is_alive()


def test_a_made_up_token_gets_a_fresh_session_and_a_new_token(tabs):
    owner = tabs()
    bring_text(owner)
    for guess in ("made-up", token_of(owner)[:-2] + "xx", "", "../../etc"):
        stranger = tabs(guess)
        assert not stranger.exception and not stranger.error
        assert "corpus" not in stranger.session_state
        assert token_of(stranger) not in (guess, token_of(owner))
    assert "corpus" in owner.session_state            # the owner's session is untouched


def test_start_afresh_stops_the_job_removes_the_folder_and_gives_a_new_token(tabs):
    at = tabs()
    bring_text(at)
    at.switch_page("app/pages/train.py").run()
    at.selectbox(key="train_preset").set_value("tiny").run()
    at.button(key="start").click().run()
    job, folder, old = at.session_state["job"], at.session_state["visitor_dir"].path, token_of(at)
    at.switch_page("app/pages/generate.py").run()
    at.selectbox(key="gen_strategy").set_value("greedy").run()

    at.sidebar.button(key="start_afresh").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not job.is_alive() and not folder.exists()
    assert "corpus" not in at.session_state and "job" not in at.session_state
    assert at.selectbox(key="gen_strategy").value == "top-p"   # the page's settings are back to their defaults
    assert token_of(at) != old and tabs.registry.holds(tab_id(at), token_of(at))
    assert "corpus" not in tabs(old).session_state    # the old address reaches nothing now


def test_what_carries_over_is_the_apps_state_and_the_kept_widgets_not_buttons_or_uploads(tabs):
    at = tabs()
    bring_text(at)                                    # the Corpus page, with its uploader holding a file
    kept = sessions.carried(at._session_state)
    assert {"corpus", "corpus_encoding", sessions._TOKEN} <= set(kept)
    assert "corpus_upload" not in kept                # a file upload, which a new page cannot be given
    at.switch_page("app/pages/train.py").run()
    kept = sessions.carried(at._session_state)
    assert "train_preset" in kept and "start" not in kept   # a kept widget in; a button out
    assert "corpus_encoding" in kept                  # kept while its page is not shown
