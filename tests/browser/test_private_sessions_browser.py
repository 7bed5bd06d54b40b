"""Sessions bound to the browser, in Debian's Chromium: a visitor's address opened in another browser (a context
of its own: no cookies shared) is a fresh session, and the visitor's own tab keeps theirs; a reload in their
own browser brings their running job back; an old ?session= address reaches nothing from elsewhere and leaves
the address either way. Screenshots go to tests/screenshots/.
"""

from __future__ import annotations

import re
import time

from .browsing import (FOX, WAVES, cookie, expect, go_to, main, new_tab, reload, settle, shot, start_training,
                       upload_text, visit)

COOKIE = "charlm_browser"
GRACE_S = 60   # the module's server (conftest.py)


def assert_fresh(page) -> None:
    """None of the fox visitor's text, models or runs: the Corpus page has no text, Generate no trained model,
    Train no run."""
    go_to(page, "Corpus")
    expect(page.get_by_text("fox.txt")).to_have_count(0)
    expect(page.get_by_role("heading", name="Using uploaded file")).to_have_count(0)
    go_to(page, "Generate")
    page.get_by_role("combobox", name="Model").click()
    expect(page.get_by_role("option", name="Trained here: fox.txt")).to_have_count(0)
    page.keyboard.press("Escape")
    expect(page.get_by_test_id("stSidebar").get_by_text("Training:")).to_have_count(0)
    go_to(page, "Train")
    expect(main(page).get_by_text("First choose a text")).to_be_visible()
    expect(page.get_by_role("heading", name="Training on fox.txt (tiny)")).to_have_count(0)


def test_an_address_opened_in_another_browser_is_a_fresh_session_and_a_reload_brings_the_job_back(server, browser):
    alice = visit(browser, server)
    upload_text(alice, "fox.txt", FOX)
    start_training(alice, minutes="3")
    expect(alice.get_by_text("What the model writes at step")).to_be_visible()   # a model exists from here
    address, key = alice.url, cookie(alice, COOKIE)
    assert "session" not in address and address.endswith("/train")
    assert key["sameSite"] == "Strict" and key["path"] == "/" and not key["secure"]   # plain HTTP here
    assert GRACE_S < key["expires"] - time.time() <= GRACE_S + 60      # the grace period and a minute more
    assert key["value"] not in address

    bob = visit(browser, address)             # the address pasted into another browser
    settle(bob)
    expect(main(bob).get_by_text("First choose a text")).to_be_visible()
    shot(bob, "private-1-alices-address-in-another-browser")
    assert cookie(bob, COOKIE)["value"] != key["value"]   # a browser key of its own
    assert_fresh(bob)
    upload_text(bob, "waves.txt", WAVES)      # and a session of his own, that works

    go_to(alice, "Train")                     # Alice's tab runs on, with her session
    expect(main(alice).get_by_role("heading", name="Training on fox.txt (tiny)")).to_be_visible()
    expect(main(alice).get_by_role("button", name="Stop")).to_be_visible()
    reload(alice)                             # within the grace period: the running job comes back
    assert alice.url == address
    expect(main(alice).get_by_role("heading", name="Training on fox.txt (tiny)")).to_be_visible()
    expect(main(alice).get_by_role("button", name="Stop")).to_be_visible()
    shot(alice, "private-2-alice-after-reload")
    go_to(alice, "Corpus")
    expect(alice.get_by_text("waves.txt")).to_have_count(0)

    go_to(bob, "Corpus")                      # nor did Bob's session get anything of hers
    expect(bob.get_by_role("heading", name="Using uploaded file waves.txt")).to_be_visible()
    go_to(alice, "Train")
    main(alice).get_by_role("button", name="Stop").click()
    expect(alice.get_by_text("Stopped:")).to_be_visible()
    bob.context.close()
    alice.context.close()


def test_an_old_session_address_reaches_nothing_from_another_browser_and_leaves_the_address(server, browser):
    alice = visit(browser, f"{server}/corpus")
    upload_text(alice, "fox.txt", FOX)
    old = f"{server}/corpus?session=" + "A" * 43   # what addresses looked like before browser keys

    bob = visit(browser, old)
    settle(bob)
    expect(bob.get_by_role("heading", name="Corpus", level=1)).to_be_visible()
    expect(bob).not_to_have_url(re.compile("session"))   # taken off the address
    assert_fresh(bob)

    context = alice.context
    alice.close()                             # Alice closes her tab and opens the old address in her browser:
    alice = new_tab(context, old)             # her session comes back, by her browser's cookie
    settle(alice)
    expect(alice.get_by_role("heading", name="Using uploaded file fox.txt")).to_be_visible()
    expect(alice).not_to_have_url(re.compile("session"))
    second = new_tab(context, f"{server}/corpus")   # a second tab of her browser, her first still open: afresh
    settle(second)
    expect(second.get_by_text("fox.txt")).to_have_count(0)
    reload(alice)
    expect(alice.get_by_role("heading", name="Using uploaded file fox.txt")).to_be_visible()   # hers still
    bob.context.close()
    context.close()
