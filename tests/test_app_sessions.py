"""Sessions that survive a reload in the browser that opened them, and reach no other browser.

The registry's rules are tested in tests/test_app_visitors.py; here the move of one session's state into
another, with Streamlit's own SessionState, and the whole app with AppTest, each AppTest standing for a browser
tab and a Browser for its cookie jar (a reload being the tab closed and a new AppTest in the same Browser).
"""

from __future__ import annotations

import gc
import re
from pathlib import Path

import pytest
from streamlit.runtime.scriptrunner import get_script_run_ctx
from streamlit.runtime.state import SafeSessionState, SessionState
from streamlit.testing.v1 import AppTest

from app import browser_key, sessions, state, visitors
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


# --- adoption in the app's terms ---------------------------------------------------------------

def test_a_reload_takes_the_very_state_and_leaves_the_old_session_a_note():
    folder = state._VisitorDir()
    first = streamlit_state(visitor_dir=folder, corpus="a text")
    active = {"first"}
    registry = visitors.Visitors(grace_s=120, is_active=lambda sid: sid in active, clock=Clock())
    key = visitors.new_key()
    registry.track("first", first, key)
    second = streamlit_state()
    assert registry.adopt(key, "second", second) is None     # the first tab is open: the second starts afresh

    active.discard("first")                        # the first tab reloads
    third = streamlit_state()
    assert registry.adopt(key, "third", third) is first
    sessions.adopt(first, third)
    assert third["corpus"] == "a text" and third["visitor_dir"] is folder
    # Should the first tab's connection come back (it was only away), its next run starts afresh and says why.
    assert first.filtered_state == {sessions._MOVED: True}


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

class Browser:
    """A browser's cookie jar: what its tabs send when they connect, and what the page's script writes."""

    def __init__(self):
        self.cookies: dict[str, str] = {}

    @property
    def key(self) -> str | None:
        return self.cookies.get(browser_key.COOKIE)


@pytest.fixture
def tabs(app_env, monkeypatch):
    """AppTests as browser tabs of one server: tracked by a registry of their own, each its own session id, each
    in a Browser; a tab is connected until closed with close(at)."""
    closed = set()
    registry = visitors.Visitors(grace_s=120, is_active=lambda sid: sid not in closed)
    monkeypatch.setattr(visitors, "is_browser_session", lambda session_id: True)
    monkeypatch.setattr(visitors, "registry", lambda: registry)
    monkeypatch.setattr(sessions, "_session_id", lambda ctx: f"tab-{id(ctx.session_state._state)}")
    browser_of: dict[str, Browser] = {}
    monkeypatch.setattr(browser_key, "_cookies", lambda: dict(browser_of[current_tab()].cookies))
    keep = browser_key.keep

    def kept(key: str, grace_s: float) -> None:   # what the page's script does in the browser
        browser_of[current_tab()].cookies[browser_key.COOKIE] = key
        keep(key, grace_s)

    monkeypatch.setattr(browser_key, "keep", kept)
    made = []

    def open_tab(browser: Browser | None = None, address: dict | None = None) -> AppTest:
        at = AppTest.from_file(APP, default_timeout=60)
        browser_of[tab_id(at)] = browser if browser is not None else Browser()
        for name, value in (address or {}).items():
            at.query_params[name] = value
        made.append(at)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    open_tab.registry = registry
    open_tab.close = lambda at: closed.add(tab_id(at))
    yield open_tab
    for at in made:
        if "job" in at.session_state:
            at.session_state["job"].stop()
            at.session_state["job"].join(timeout=60)


def current_tab() -> str:
    return f"tab-{id(get_script_run_ctx().session_state._state)}"


def tab_id(at: AppTest) -> str:
    return f"tab-{id(at._session_state._state)}"


def bring_text(at: AppTest) -> None:
    at.switch_page("app/pages/corpus.py").run()
    at.file_uploader(key="corpus_upload").set_value(("fox.txt", TEXT.encode(), "text/plain"))
    at.run()
    assert "corpus" in at.session_state


def test_a_first_visit_gets_a_key_in_a_cookie_nothing_in_the_address_and_a_start_afresh_control(tabs):
    browser = Browser()
    at = tabs(browser)
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", browser.key)
    assert sessions.PARAM not in at.query_params and not any(browser.key in v for v in at.query_params.values())
    assert tabs.registry.owns(browser.key, tab_id(at))
    script = at.sidebar.get("html")[0].proto
    assert script.unsafe_allow_javascript
    assert f"charlm_browser={browser.key}; path=/; max-age=180; samesite=strict" in script.body   # 120 s + 60
    assert at.sidebar.button(key="start_afresh").label == "Forget it all and start afresh"
    caption = at.sidebar.caption[0].value
    assert "A cookie in this browser" in caption and "within about 2 minutes" in caption
    assert "address holds a private key" not in caption
    second = tabs(browser)                        # a second tab of the same browser: the same key, its own session
    assert browser.key == at.session_state[sessions._KEY] == second.session_state[sessions._KEY]
    other = Browser()
    tabs(other)
    assert other.key != browser.key


def test_a_reload_brings_back_the_text_the_settings_and_what_was_written(tabs):
    browser = Browser()
    before = tabs(browser)
    bring_text(before)
    chosen = before.session_state["corpus"]
    before.switch_page("app/pages/generate.py").run()
    before.selectbox(key="gen_strategy").set_value("greedy").run()
    before.text_area(key="gen_prime").set_value("the quick ").run()
    before.button(key="write").click().run()
    written = before.session_state["gen_write_state"].texts[0]
    assert written
    before.text_area(key="gen_prime").set_value("not yet applied")   # typed, never sent: not kept

    tabs.close(before)
    after = tabs(browser)                             # the reload: a new session, the same browser
    assert after.session_state["corpus"] is chosen
    assert after.selectbox(key="gen_strategy").value == "greedy"
    assert after.text_area(key="gen_prime").value == "the quick "
    assert written in after.get("code")[0].value    # the Write that was on the page
    after.switch_page("app/pages/corpus.py").run()
    assert "fox" in after.subheader[0].value and "Using uploaded file" in after.subheader[0].value
    assert after.file_uploader(key="corpus_upload").value is None   # an upload widget starts empty
    assert "corpus" not in before.session_state      # nothing is left in the old session


def test_a_second_tab_of_the_same_browser_starts_afresh_and_the_first_keeps_its_session(tabs):
    browser = Browser()
    first = tabs(browser)
    bring_text(first)
    second = tabs(browser)
    assert "corpus" not in second.session_state
    assert "corpus" in first.session_state and tabs.registry.tracked() == 2


def test_a_tab_whose_session_went_on_in_another_starts_afresh_and_says_so(tabs):
    browser = Browser()
    at = tabs(browser)
    older = tabs(browser)
    tabs.close(older)                              # a session of this browser's that a new one could adopt
    # What adopt() leaves in a session a new tab took over while its connection was away (AppTest cannot rerun a
    # page whose widgets' values are gone, as a browser can: it reads them back from the session state).
    del at.session_state[sessions._KEY]
    at.session_state[sessions._MOVED] = True
    at.run()
    assert not at.exception
    assert "opened in another tab" in at.info[0].value
    assert at.session_state[sessions._KEY] == browser.key   # still this browser's, with nothing adopted
    assert tabs.registry.owns(browser.key, tab_id(older))


@pytest.mark.slow
def test_a_reload_mid_training_finds_the_same_job_still_running(tabs):
    browser = Browser()
    before = tabs(browser)
    bring_text(before)
    before.switch_page("app/pages/train.py").run()
    before.selectbox(key="train_preset").set_value("tiny").run()
    before.number_input(key="budget_minutes").set_value(2.0)
    before.button(key="start").click().run()
    job = before.session_state["job"]
    assert job.is_alive()
    folder = before.session_state["visitor_dir"].path

    tabs.close(before)
    after = tabs(browser)
    after.switch_page("app/pages/train.py").run()
    assert after.session_state["job"] is job and job.is_alive()
    assert after.selectbox(key="train_preset").value == "tiny"
    assert any(b.label == "Stop" for b in after.button)
    assert folder.exists()
    poll(lambda: job.best_checkpoint() is not None, 60, "the run's first checkpoint", every_s=0.5)
    after.switch_page("app/pages/generate.py").run()
    assert after.selectbox(key="gen_model").value == "trained"   # its model, in Generate
    assert job.is_alive()


def test_another_browser_a_made_up_key_or_an_old_address_gets_a_fresh_session(tabs):
    alice = Browser()
    owner = tabs(alice)
    owner.session_state[sessions._TOKEN] = "alices-old-token"   # a session from when addresses held its token
    bring_text(owner)
    tabs.close(owner)                                  # her tab is closed: her session waits for her browser
    made_up = Browser()
    made_up.cookies[browser_key.COOKIE] = alice.key[:-2] + ("xx" if alice.key[-2:] != "xx" else "yy")
    for browser, address in ((Browser(), {}), (made_up, {}), (Browser(), {sessions.PARAM: "alices-old-token"}),
                             (made_up, {sessions.PARAM: "alices-old-token"})):
        stranger = tabs(browser, address)
        assert not stranger.error and "corpus" not in stranger.session_state
        assert sessions.PARAM not in stranger.query_params   # the old token is taken off the address
        assert browser.key != alice.key and tabs.registry.tracked() >= 2
    back = tabs(alice, {sessions.PARAM: "alices-old-token"})   # in her own browser, the old address works
    assert "corpus" in back.session_state and sessions.PARAM not in back.query_params


def test_start_afresh_stops_the_job_removes_the_folder_and_keeps_the_browser(tabs):
    browser = Browser()
    at = tabs(browser, {sessions.PARAM: "whatever"})
    key = browser.key
    bring_text(at)
    at.switch_page("app/pages/train.py").run()
    at.selectbox(key="train_preset").set_value("tiny").run()
    at.button(key="start").click().run()
    job, folder = at.session_state["job"], at.session_state["visitor_dir"].path
    at.switch_page("app/pages/generate.py").run()
    at.selectbox(key="gen_strategy").set_value("greedy").run()

    at.sidebar.button(key="start_afresh").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not job.is_alive() and not folder.exists()
    assert "corpus" not in at.session_state and "job" not in at.session_state
    assert at.selectbox(key="gen_strategy").value == "top-p"   # the page's settings are back to their defaults
    assert sessions.PARAM not in at.query_params
    assert browser.key == key and at.session_state[sessions._KEY] == key and tabs.registry.owns(key, tab_id(at))
    tabs.close(at)
    assert "corpus" not in tabs(browser).session_state   # a reload finds the fresh session, not the old one


def test_outside_a_page_there_is_no_session_handling_and_a_plain_app_test_runs_with_no_cookie(app_env):
    sessions.resume()                             # a script: no script run, nothing to resume or keep
    # AppTest's stand-in runtime calls every session connected and answers st.context.cookies with mocks.
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params[sessions.PARAM] = "an-old-token"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", at.session_state[sessions._KEY])   # a key of its own, made here
    assert sessions.PARAM not in at.query_params


def test_what_carries_over_is_the_apps_state_and_the_kept_widgets_not_buttons_or_uploads(tabs):
    at = tabs()
    bring_text(at)                                    # the Corpus page, with its uploader holding a file
    kept = sessions.carried(at._session_state)
    assert {"corpus", "corpus_encoding", sessions._KEY} <= set(kept)
    assert "corpus_upload" not in kept                # a file upload, which a new page cannot be given
    at.switch_page("app/pages/train.py").run()
    kept = sessions.carried(at._session_state)
    assert "train_preset" in kept and "start" not in kept   # a kept widget in; a button out
    assert "corpus_encoding" in kept                  # kept while its page is not shown
