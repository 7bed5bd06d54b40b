"""Sessions that survive a reload: a private token in the page address brings a visitor's state back.

A reload, a restored tab or a new connection starts a new Streamlit session, with an empty session state.
So each visitor's first page view gets a token, kept in the address (?session=…, from secrets.token_urlsafe);
a new session whose address carries the token of a session not yet swept (app/visitors.py: within
CHARLM_ABANDON_AFTER_S of its tab closing) adopts that session's state. It takes the same objects, not
copies: the training job runs on and keeps its slot, its folder stays, the text, models and Write/Step
state are as they were. A made-up or expired token just gets a fresh session and a new token; without the
token no one reaches a session. "Start afresh" in the sidebar releases it all and gives a new token.
"""

from __future__ import annotations

import streamlit as st
from streamlit import runtime
from streamlit.errors import StreamlitPageNotFoundError
from streamlit.runtime.scriptrunner import get_script_run_ctx

from . import state, visitors

PARAM = "session"                 # the address's query parameter that holds the token
_TOKEN = "visitor_token"          # session_state: this session's token
_MOVED = "visitor_moved_away"     # session_state: another tab came with this session's token and took it over
START_PAGE = "app/pages/generate.py"


def _session_id(ctx) -> str:
    return ctx.session_id


def resume() -> None:
    """First on every run (the router calls it): a returning visitor gets their session back, a new one a token.

    Then the address is made to show the token (st.switch_page, for one, clears it) and Start afresh is drawn.
    Outside a browser session (a script, an AppTest run) it does nothing: there is no address to keep.
    """
    ctx = get_script_run_ctx()
    if ctx is None or not visitors.is_browser_session(ctx.session_id):
        return
    registry, session_id = visitors.registry(), _session_id(ctx)
    token = st.session_state.get(_TOKEN)
    if token is None:
        token = _first_run(registry, session_id, ctx.session_state)
    elif registry.holds(session_id, token):
        registry.track(session_id, ctx.session_state)
    else:   # the registry does not know it (rebuilt when the server's settings changed): keep the state, new token
        token = registry.issue(session_id, ctx.session_state)
        st.session_state[_TOKEN] = token
    if st.query_params.get(PARAM) != token:
        st.query_params[PARAM] = token
    afresh_control(registry.grace_s)


def _first_run(registry: visitors.Visitors, session_id: str, session_state) -> str:
    """Adopt the session of the token in the address if it is still there; else start one. -> this session's token."""
    moved = st.session_state.pop(_MOVED, False)
    asked = None if moved else st.query_params.get(PARAM)
    if asked:
        earlier = registry.claim(asked, session_id, session_state)
        if earlier is not None:
            adopt(earlier, session_state)
            st.session_state[_TOKEN] = asked
            return asked
    token = registry.issue(session_id, session_state)
    st.session_state[_TOKEN] = token
    if moved:
        st.info("This session was opened in another tab or window and goes on there. This tab starts afresh.",
                icon=":material/info:")
    return token


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
                    "the settings and what was written. You get a new session at a new address.")
        st.button("Forget it all and start afresh", type="primary", key="start_afresh", on_click=start_afresh)
        st.caption(f"This page's address holds a private key to your session: open it again within about "
                   f"{grace_minutes} minute{'s' if grace_minutes != 1 else ''} of closing the tab and you are back "
                   "where you were, training included. Keep it to yourself: whoever has it can open your session.")


def start_afresh() -> None:
    """Release this session's state (its jobs stop, its folder goes), give it a new token, open Generate."""
    ctx = get_script_run_ctx()
    shown = _shown_widget_defaults(ctx.session_state)
    state.release(ctx.session_state)
    token = visitors.registry().issue(_session_id(ctx), ctx.session_state)
    st.session_state[_TOKEN] = token
    # The widgets on the page keep their values in the browser unless told otherwise: reset them to their defaults.
    for key, value in shown.items():
        st.session_state[key] = value
    if runtime.exists():
        runtime.get_instance().uploaded_file_mgr.remove_session_files(ctx.session_id)
    st.query_params[PARAM] = token
    # Generate, as a first visit opens: an upload shown on the Corpus or Train page goes with its page.
    try:
        st.switch_page(START_PAGE, query_params={PARAM: token})
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
