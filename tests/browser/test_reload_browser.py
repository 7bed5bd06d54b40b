"""Sessions that survive a reload, in Debian's Chromium: the private address brings a visitor's text, running
job and model back; without it, or with a made-up one, a visitor gets a fresh session; a tab never reopened
is swept and its training slot freed; Start afresh forgets it all. Screenshots go to tests/screenshots/.

The server here sweeps quickly (a 20-second grace period, looked at every 2 seconds) and allows one training
job, so that the sweep and the freed slot are seen within a test. Its temporary folder is the test's own, so a
test can see a visitor's folder go: the sweeper removes it once it has stopped that visitor's jobs.
"""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from helpers import poll
from .browsing import (FOX, WAVES, expect, go_to, main, reload, settle, shot, start_training, streamlit_server,
                       upload_text, visit)

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


def token_in(url: str) -> str:
    return parse_qs(urlsplit(url).query)["session"][0]


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
    assert "/train?session=" in address

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
    assert token_in(address) not in log.read_text()                              # the token is never logged


def test_another_visitor_without_the_token_or_with_a_made_up_one_gets_a_fresh_session(served, browser):
    server, log, _ = served
    alice = visit(browser, server)
    upload_text(alice, "fox.txt", FOX)
    token = token_in(alice.url)

    for address in (f"{server}/corpus", f"{server}/corpus?session=" + "A" * len(token),
                    f"{server}/corpus?session={token[:-4]}abcd"):
        other = visit(browser, address)   # another browser context: no cookies, storage or history shared
        settle(other)
        expect(other.get_by_role("heading", name="Corpus", level=1)).to_be_visible()
        expect(other.get_by_text("fox.txt")).to_have_count(0)
        expect(other.get_by_test_id("stException")).to_have_count(0)
        assert token_in(other.url) not in (token, token_in(address) if "session=" in address else "")
        upload_text(other, "waves.txt", WAVES)   # a session of its own, that works
        if "AAAA" in address:
            shot(other, "reload-3-made-up-token-fresh-session")
        other.context.close()

    reload(alice)
    expect(alice.get_by_role("heading", name="Using uploaded file fox.txt")).to_be_visible()   # hers, untouched
    expect(alice.get_by_text("waves.txt")).to_have_count(0)
    assert token not in log.read_text()


def test_a_tab_closed_and_restored_comes_back_and_one_never_reopened_is_swept_and_frees_the_slot(served, browser):
    server, _, tmp = served
    before = visitor_folders(tmp)
    page = visit(browser, server)
    upload_text(page, "fox.txt", FOX)
    start_training(page, minutes="2")
    (folder,) = visitor_folders(tmp) - before  # this visitor's: its training job works in it
    address = page.url
    page.context.close()                      # the tab closes …

    page = visit(browser, address)            # … and is restored within the grace period
    settle(page)
    expect(main(page).get_by_role("heading", name="Training on fox.txt (tiny)")).to_be_visible()
    expect(main(page).get_by_role("button", name="Stop")).to_be_visible()
    page.context.close()                      # closed again, for good

    # Swept: the sweeper stops the visitor's job, then removes the folder (plus time for a loaded machine).
    poll(lambda: not folder.exists(), SWEPT_WITHIN_S + 30, "the sweeper to free the closed tab", every_s=0.5)
    late = visit(browser, address)            # too late: a fresh session, a new address, no error
    settle(late)
    expect(main(late).get_by_text("First choose a text")).to_be_visible()
    assert token_in(late.url) != token_in(address)
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
    old = page.url

    page.get_by_test_id("stSidebar").get_by_role("button", name="Start afresh").click()
    button = page.get_by_role("button", name="Forget it all and start afresh")
    expect(button).to_be_visible()
    shot(page, "reload-4-start-afresh")
    button.click()
    expect(page.get_by_role("heading", name="Generate", level=1)).to_be_visible()
    settle(page)
    assert token_in(page.url) != token_in(old)
    assert page.get_by_test_id("stTextArea").locator("textarea").input_value() == "The "   # the default prime
    go_to(page, "Corpus")
    expect(page.get_by_text("fox.txt")).to_have_count(0)
    shot(page, "reload-5-after-start-afresh")

    stale = visit(browser, old)               # the old address reaches nothing any more
    settle(stale)
    expect(stale.get_by_text("fox.txt")).to_have_count(0)
    assert token_in(stale.url) != token_in(old)


def test_the_same_address_opened_in_a_second_tab_takes_the_session_and_the_first_starts_afresh(served, browser):
    server, _, _ = served
    first = visit(browser, server)
    upload_text(first, "fox.txt", FOX)
    go_to(first, "Generate")
    address = first.url

    second = visit(browser, address)          # the address pasted into another window
    settle(second)
    go_to(second, "Corpus")
    expect(second.get_by_role("heading", name="Using uploaded file fox.txt")).to_be_visible()

    main(first).get_by_role("button", name="Write").click()   # the first tab's next run
    expect(first.get_by_text("This session was opened in another tab or window")).to_be_visible()
    settle(first)
    assert token_in(first.url) != token_in(address)
    shot(first, "reload-6-first-tab-after-its-session-moved")
    go_to(first, "Corpus")
    expect(first.get_by_text("fox.txt")).to_have_count(0)
