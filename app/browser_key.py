"""The key that ties a visitor's sessions to their browser: a cookie of this app's, never part of an address.

The server reads it from the request that opened the page's connection (st.context.cookies, so a new session
knows its browser on its first run); a few lines of script in the page write it (st.html runs them in the
app's own page, not in a frame, so the cookie is the app's). It is sent back only to this host (no Domain),
to any of its pages (path=/), never along with a request started by another site (SameSite=Strict), and only
over HTTPS where the app is served so (Secure). Its max-age is the grace period and a minute more, and every
open tab writes it again every REFRESH_S seconds: it expires about the grace period after the browser's last
tab of the app closed, when the server sweeps that browser's sessions anyway (app/visitors.py).

Script in the page can read it (it is the page that writes it); the app runs no script but its own and shows
visitors' text and models' output as plain text, never as HTML.
"""

from __future__ import annotations

import re

import streamlit as st

COOKIE = "charlm_browser"
REFRESH_S = 20          # how often an open tab writes the cookie again
SLACK_S = 60            # beyond the grace period: a hidden tab's timers may run only once a minute
_WELL_FORMED = re.compile(r"[A-Za-z0-9_-]{43}")   # what visitors.new_key() makes

_KEEP = """<script>
(() => {
  const write = () => { document.cookie = "%(cookie)s=%(key)s; path=/; max-age=%(max_age)d; samesite=strict"
                                          + (location.protocol === "https:" ? "; secure" : ""); };
  write();
  clearInterval(window.__charlmBrowserKey);   // one timer per tab, however many runs drew this
  window.__charlmBrowserKey = setInterval(write, %(every_ms)d);
})();
</script>"""


def _cookies():
    return st.context.cookies


def sent() -> str | None:
    """The key in the cookie this browser sent when the page connected; None if it sent none (or a malformed one)."""
    value = _cookies().get(COOKIE)   # AppTest's stand-in runtime answers with a mock: no cookie either
    return value if isinstance(value, str) and _WELL_FORMED.fullmatch(value) else None


def keep(key: str, grace_s: float) -> None:
    """Have this tab write the key into its browser's cookie now and every REFRESH_S while it is open."""
    if not _WELL_FORMED.fullmatch(key):   # it goes into the script as it is
        raise ValueError("a browser key is 43 URL-safe characters")
    script = _KEEP % {"cookie": COOKIE, "key": key, "max_age": round(grace_s) + SLACK_S,
                      "every_ms": REFRESH_S * 1000}
    st.sidebar.html(script, unsafe_allow_javascript=True)
