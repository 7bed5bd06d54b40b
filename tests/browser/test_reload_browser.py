"""Sessions that survive a reload, in Debian's Chromium: the browser's cookie brings a visitor's text, running
job and model back; another browser, or one with a made-up key, gets a fresh session; a tab never reopened
is swept and its training slot freed; Start afresh forgets it all. Screenshots go to tests/screenshots/.
(tests/browser/test_private_sessions_browser.py: a visitor's address opened elsewhere.)

The server here sweeps quickly (a 20-second grace period, looked at every 2 seconds) and allows one training
job, so that the sweep and the freed slot are seen within a test. Its temporary folder is the test's own, so a
test can see a visitor's folder go: the sweeper removes it once it has stopped that visitor's jobs.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from helpers import poll
from .browsing import (FOX, WAVES, cookie, expect, go_to, main, new_tab, reload, settle, shot, start_training,
                       streamlit_server, upload_text, visit)

GRACE_S = 20
SWEEP_EVERY_S = 2
# The longest a session gone at time t can stay unswept: the first sweep after t (within SWEEP_EVERY_S) starts
# its grace period, and the first sweep after that period ends (within another) releases it.
SWEPT_WITHIN_S = GRACE_S + 2 * SWEEP_EVERY_S


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The module's server: (url, its log, the folder that holds the visitors' folders)."""
    folder = tmp_path_factory.mktemp("reload-server")
    (folder / "tmp").mkdir()
    with streamlit_server(folder, CHARLM_MAX_JOBS="1", CHARLM_ABANDON_AFTER_S=str(GRACE_S),
                          CHARLM_SWEEP_EVERY_S=str(SWEEP_EVERY_S), TMPDIR=str(folder / "tmp")) as (url, process):
        yield url, folder / "streamlit.log", folder / "tmp"


def browser_key(page) -> str:
    return cookie(page, "charlm_browser")["value"]


def visitor_folders(tmp: Path) -> set[Path]:
    return set(tmp.glob("charlm-visitor-*"))


def step_shown(page) -> int:
    """The Step metric of the Train page's live view."""
    value = page.get_by_test_id("stMetric").filter(has_text="Step").get_by_test_id("stMetricValue").inner_text()
    return int(value.replace(",", ""))


def stop_training(page) -> None:
    go_to(page, "Train")
    main(page).get_by_role("button", name="Stop").click()
    expect(page.get_by_text("Stopped:")).to_be_visible()
    settle(page)


def test_a_reload_mid_training_finds_the_same_job_running_and_its_model_in_generate(served, browser):
    server, log, _ = served
    page = visit(browser, server)
    upload_text(page, "fox.txt", FOX)
    # Long enough to outlast the first sample (at 30 s), the grace period and the walk to Generate on a loaded machine.
    start_training(page, minutes="3")
    expect(page.get_by_text("What the model writes at step")).to_be_visible()   # a model exists from here
    address, steps = page.url, step_shown(page)
    assert address.endswith("/train")         # the address holds nothing of the session

    reload(page)
    reloaded = time.monotonic()
    assert page.url == address
    expect(main(page).get_by_role("heading", name="Training on fox.txt (tiny)")).to_be_visible()
    expect(main(page).get_by_role("button", name="Stop")).to_be_visible()       # still running
    expect(main(page).get_by_role("button", name="Start training")).to_have_count(0)
    assert step_shown(page) >= steps                                            # the same run, further on
    expect(page.get_by_text("What the model writes at step")).to_be_visible()   # its samples came back too
    shot(page, "reload-1-train-after-reload")

    # Wait until the session the reload left is past its grace period and swept for sure (one sweep more for the
    # stop to show): had it been released, the job would have stopped. A check that something does not happen,
    # so a bounded wait, counted from the reload.
    page.wait_for_timeout(max(0.0, reloaded + SWEPT_WITHIN_S + SWEEP_EVERY_S - time.monotonic()) * 1000)
    expect(main(page).get_by_role("button", name="Stop")).to_be_visible()
    expect(page.get_by_text("Stopped:")).to_have_count(0)

    go_to(page, "Generate")
    expect(page.get_by_role("combobox", name="Model")).to_have_value("Trained here: fox.txt")   # offered first
    expect(page.get_by_text("Training is still going on")).to_be_visible()
    main(page).get_by_role("button", name="Write").click()
    expect(page.get_by_text("Trained here: fox.txt ·")).to_be_visible()
    settle(page)
    expect(page.get_by_test_id("stSidebar").get_by_text("Training:")).to_be_visible()
    shot(page, "reload-2-generate-with-the-model-being-trained")
    stop_training(page)
    assert browser_key(page) not in log.read_text()                              # the key is never logged


def test_another_browser_or_one_with_a_made_up_key_gets_a_fresh_session(served, browser):
    server, log, _ = served
    alice = visit(browser, f"{server}/corpus")
    upload_text(alice, "fox.txt", FOX)
    key = browser_key(alice)

    for made_up in (None, "A" * len(key), key[:-4] + ("abcd" if not key.endswith("abcd") else "efgh")):
        context = browser.new_context()       # another browser: no cookies, storage or history shared
        if made_up is not None:
            context.add_cookies([{"name": "charlm_browser", "value": made_up, "url": server}])
        other = new_tab(context, f"{server}/corpus")
        settle(other)
        expect(other.get_by_role("heading", name="Corpus", level=1)).to_be_visible()
        expect(other.get_by_text("fox.txt")).to_have_count(0)
        expect(other.get_by_test_id("stException")).to_have_count(0)
        assert browser_key(other) not in (key, made_up)   # a key of its own, made by the server
        upload_text(other, "waves.txt", WAVES)   # a session of its own, that works
        if made_up is not None and made_up.startswith("AAAA"):
            shot(other, "reload-3-made-up-key-fresh-session")
        context.close()

    reload(alice)
    expect(alice.get_by_role("heading", name="Using uploaded file fox.txt")).to_be_visible()   # hers, untouched
    expect(alice.get_by_text("waves.txt")).to_have_count(0)
    assert key not in log.read_text()


def test_a_tab_closed_and_restored_comes_back_and_one_never_reopened_is_swept_and_frees_the_slot(served, browser):
    server, _, tmp = served
    before = visitor_folders(tmp)
    page = visit(browser, server)
    upload_text(page, "fox.txt", FOX)
    start_training(page, minutes="2")
    (folder,) = visitor_folders(tmp) - before  # this visitor's: its training job works in it
    address, context, key = page.url, page.context, browser_key(page)
    page.close()                              # the tab closes …

    page = new_tab(context, address)          # … and is restored within the grace period, in the same browser
    settle(page)
    expect(main(page).get_by_role("heading", name="Training on fox.txt (tiny)")).to_be_visible()
    expect(main(page).get_by_role("button", name="Stop")).to_be_visible()
    page.close()                              # closed again, for good

    # Swept: the sweeper stops the visitor's job, then removes the folder (plus time for a loaded machine).
    poll(lambda: not folder.exists(), SWEPT_WITHIN_S + 30, "the sweeper to free the closed tab", every_s=0.5)
    late = new_tab(context, address)          # too late: a fresh session under a new key, no error
    settle(late)
    expect(main(late).get_by_text("First choose a text")).to_be_visible()
    assert browser_key(late) != key           # the swept key (its cookie not yet expired) is not taken back
    upload_text(late, "waves.txt", WAVES)
    start_training(late, minutes="2")         # the only training slot was freed
    expect(late.get_by_text("The server is busy")).to_have_count(0)
    expect(late.get_by_role("heading", name="Training on waves.txt (tiny)")).to_be_visible()
    stop_training(late)


def test_start_afresh_forgets_the_session_and_gives_a_new_address(served, browser):
    server, _, _ = served
    page = visit(browser, server)
    upload_text(page, "fox.txt", FOX)
    go_to(page, "Generate")
    page.get_by_test_id("stTextArea").locator("textarea").fill("the fox ")
    page.get_by_test_id("stTextArea").locator("textarea").press("Control+Enter")
    settle(page)
    go_to(page, "Corpus")

    page.get_by_test_id("stSidebar").get_by_role("button", name="Start afresh").click()
    button = page.get_by_role("button", name="Forget it all and start afresh")
    expect(button).to_be_visible()
    shot(page, "reload-4-start-afresh")
    button.click()
    expect(page.get_by_role("heading", name="Generate", level=1)).to_be_visible()
    settle(page)
    expect(page).not_to_have_url(re.compile("session"))
    expect(page.get_by_test_id("stTextArea").locator("textarea")).to_have_value("The ")   # the default prime
    go_to(page, "Corpus")
    expect(page.get_by_text("fox.txt")).to_have_count(0)
    shot(page, "reload-5-after-start-afresh")

    reload(page)                              # what comes back now is the fresh session
    expect(page.get_by_text("fox.txt")).to_have_count(0)


def test_a_second_tab_of_the_same_browser_starts_afresh_and_the_first_keeps_its_session(served, browser):
    server, _, _ = served
    first = visit(browser, server)
    upload_text(first, "fox.txt", FOX)
    go_to(first, "Generate")
    address = first.url

    second = new_tab(first.context, address)  # the address opened in another tab of the same browser
    settle(second)
    go_to(second, "Corpus")
    expect(second.get_by_text("fox.txt")).to_have_count(0)
    shot(second, "reload-6-second-tab-starts-afresh")

    main(first).get_by_role("button", name="Write").click()   # the first tab's next run: still its session
    settle(first)
    expect(first.get_by_test_id("stCode").first).to_be_visible()
    expect(first.get_by_text("This session was opened in another tab or window")).to_have_count(0)
    go_to(first, "Corpus")
    expect(first.get_by_role("heading", name="Using uploaded file fox.txt")).to_be_visible()
