"""Sessions that survive a reload, in the browser that opened them: its key (a cookie) brings its state back.

A reload, a restored tab or a new connection starts a new Streamlit session, with an empty session state.
Each browser has a private key in a cookie (app/browser_key.py), and every session is registered under its
browser's key (app/visitors.py). A new session of a browser that has sessions disconnected and not yet swept
(within CHARLM_ABANDON_AFTER_S of their tab closing) adopts the one that ran last: the same objects, not copies.
The training job runs on and keeps its slot, its folder stays, the text, models and Write/Step state are as
they were. A session still open in another tab is never taken: a second tab starts afresh. Another browser,
or a private window, has no key, or another one, and never reaches these sessions; the address holds nothing
of them. "Start afresh" in the sidebar releases it all.

Addresses used to carry a token (?session=…). An old one still picks its session, but only in the browser
that owns it; anywhere else it is ignored. The parameter is removed from the address either way.
"""

from __future__ import annotations

import streamlit as st
from streamlit import runtime
from streamlit.errors import StreamlitPageNotFoundError
from streamlit.runtime.scriptrunner import get_script_run_ctx

from . import browser_key, state, visitors

PARAM = "session"                 # the query parameter addresses used to carry a token in
_KEY = "browser_key"              # session_state: the key of this session's browser
_TOKEN = "visitor_token"          # session_state: the token of a session from before browser keys (its old address)
_MOVED = "visitor_moved_away"     # session_state: a new tab of this browser took this session over while it was away
START_PAGE = "app/pages/generate.py"


def _session_id(ctx) -> str:
    return ctx.session_id


def resume() -> None:
    """First on every run (the router calls it): a returning browser gets its session back, a new one a key.

    Then an old address's token is removed from the address, the tab is made to keep the browser's cookie
    and Start afresh is drawn. Outside a page (a script) it does nothing. (AppTest's stand-in runtime calls every
    session connected and sends no cookie: each AppTest is a browser of its own.)
    """
    ctx = get_script_run_ctx()
    if ctx is None or not visitors.is_browser_session(ctx.session_id):
        return
    registry, session_id = visitors.registry(), _session_id(ctx)
    key = st.session_state.get(_KEY)
    if key is None:
        key = _first_run(registry, session_id, ctx.session_state)
    else:   # tracked again each run: a registry rebuilt when the server's settings changed learns it back
        registry.track(session_id, ctx.session_state, key, st.session_state.get(_TOKEN))
    if PARAM in st.query_params:
        del st.query_params[PARAM]
    browser_key.keep(key, registry.grace_s)
    afresh_control(registry.grace_s)


def _first_run(registry: visitors.Visitors, session_id: str, session_state) -> str:
    """Adopt this browser's last disconnected session if it has one; else start one. -> the browser's key."""
    moved = st.session_state.pop(_MOVED, False)
    sent = browser_key.sent()
    key = sent if sent is not None and registry.knows(sent) else visitors.new_key()   # unknown: made up or swept
    earlier = None
    if key == sent and not moved:
        earlier = registry.adopt(key, session_id, session_state, st.query_params.get(PARAM))
    if earlier is not None:
        adopt(earlier, session_state)
    # A session from before browser keys has a token but no key yet: it becomes this browser's.
    registry.track(session_id, session_state, key, st.session_state.get(_TOKEN))
    st.session_state[_KEY] = key
    if moved:
        st.info("This session was opened in another tab or window and goes on there. This tab starts afresh.",
                icon=":material/info:")
    return key


def carried(session_state) -> dict:
    """What a returning visitor gets back: everything the app keeps in session state, and the values of the
    widgets kept across pages (persist_state="session"). Not the other widgets' (buttons, file uploads,
    chart selections): a page cannot be given those, and they belong to the page as it was.

    Reads Streamlit's SessionState inside its thread-safe wrapper (Streamlit 1.67; tests/test_app_sessions.py
    holds what it relies on).
    """
    inner = session_state._state
    with session_state._lock:
        values = inner.filtered_state
        kept = {}
        for key, value in values.items():
            widget = inner.get_widget_metadata(inner._key_id_mapper.get_id_from_key(key, ""))
            if widget is None or widget.persist_state == "session":
                kept[key] = value
        return kept


def adopt(earlier, session_state) -> None:
    """Move an earlier session's state into this one: the very objects, and nothing left in the earlier one.

    Its temporary folder (app/state.py's _VisitorDir) is removed when the last reference to it goes; from here
    on only this session holds it, so the earlier session going away removes nothing.
    """
    kept = carried(earlier)
    for key in list(earlier.filtered_state):
        try:
            del earlier[key]
        except KeyError:   # a widget's value that went with the widget
            pass
    earlier[_MOVED] = True   # if that tab is still open, its next run says where its session went
    # Stored as a run's end stores them (widgets then restore their values as after a page switch); set through
    # st.session_state, each widget given a default would log a warning that its value was set twice.
    with session_state._lock:
        session_state._state._old_state.update(kept)


# --- Start afresh -------------------------------------------------------------------------------

def afresh_control(grace_s: float) -> None:
    """Start afresh, in the sidebar: behind a second click, as it throws away a visitor's work."""
    grace_minutes = max(1, round(grace_s / 60))
    with st.sidebar.popover("Start afresh", icon=":material/restart_alt:", width="stretch"):
        st.markdown("Forget this session: its text, its models and their training (a run going on stops), "
                    "the settings and what was written. You start again on Generate.")
        st.button("Forget it all and start afresh", type="primary", key="start_afresh", on_click=start_afresh)
        st.caption(f"A cookie in this browser brings your session back: reload, or reopen the tab within about "
                   f"{grace_minutes} minute{'s' if grace_minutes != 1 else ''} of closing it, and you are back "
                   "where you were, training included. The page's address holds nothing of it: a link you share, "
                   "or this app opened in another browser or a private window, starts a session of its own.")


def start_afresh() -> None:
    """Release this session's state (its jobs stop, its folder goes), keep its browser's key, open Generate."""
    ctx = get_script_run_ctx()
    shown = _shown_widget_defaults(ctx.session_state)
    browser = st.session_state.get(_KEY)
    state.release(ctx.session_state)
    visitors.registry().restart(_session_id(ctx), ctx.session_state)   # an old address no longer reaches it
    if browser is not None:   # the browser stays the same: its other sessions are still its own
        st.session_state[_KEY] = browser
    # The widgets on the page keep their values in the browser unless told otherwise: reset them to their defaults.
    for key, value in shown.items():
        st.session_state[key] = value
    if runtime.exists():
        runtime.get_instance().uploaded_file_mgr.remove_session_files(ctx.session_id)
    # Generate, as a first visit opens: an upload shown on the Corpus or Train page goes with its page.
    try:
        st.switch_page(START_PAGE)
    except StreamlitPageNotFoundError:   # an AppTest run, whose pages are only known once the script runs
        pass


def _shown_widget_defaults(session_state) -> dict:
    """The defaults of the kept-across-pages widgets on the page now: key -> the value a first view shows."""
    inner = session_state._state
    with session_state._lock:
        shown = {}
        for widget_id in list(inner._new_widget_state.states):
            widget = inner.get_widget_metadata(widget_id)
            key = inner._key_id_mapper.id_key_mapping.get(widget_id)
            if widget is not None and key is not None and widget.persist_state is not None:
                shown[key] = widget.deserializer(None)
        return shown
