"""A server shared by strangers, in Debian's Chromium and over Streamlit's own websocket protocol: a bare client's
`clear_cache` message leaves the training slots, the line and every visitor's session as they were, and sessions
from one address get no more than that address's share of the line.

The server here has one training slot, so a second run waits in line, and allows two runs per network address
(every visitor here comes from 127.0.0.1).
"""

from __future__ import annotations

import re
import time

import pytest
from streamlit.proto.BackMsg_pb2 import BackMsg
from websockets.sync.client import connect
from .browsing import (FOX, WAVES, expect, go_to, main, reload, settle, shot, start_training, streamlit_server,
                       upload_text, visit)

IN_LINE = "Every training slot on this server is taken"
TRAINING = re.compile(r"^Training \d+%")   # the progress bar of a run that has its slot


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shared-server")
    with streamlit_server(folder, CHARLM_MAX_JOBS="1", CHARLM_MAX_RUNS_PER_ADDRESS="2",
                          CHARLM_ABANDON_AFTER_S="120") as (url, process):
        yield url


def stop(page) -> None:
    """Stop the page's run and wait until it has ended (the Train page offers to Resume it).

    Not stop_training's "Stopped:" summary: with a second visitor's run waiting behind this one, the page
    sometimes draws its finished view without that line until the next reload (seen in 3 runs of 8 here).
    """
    go_to(page, "Train")
    main(page).get_by_role("button", name="Stop").click()
    expect(main(page).get_by_role("button", name="Resume")).to_be_visible()
    settle(page)


def send_clear_cache(server: str, times: int = 2) -> None:
    """What any client may send: Streamlit's BackMsg `clear_cache`, from a bare websocket (no browser, no page)."""
    address = server.replace("http://", "ws://") + "/_stcore/stream"
    with connect(address, subprotocols=["streamlit"]) as socket:
        for _ in range(times):
            message = BackMsg()
            message.clear_cache = True
            socket.send(message.SerializeToString())
        try:   # the server answers nothing to it; give it a moment to take the messages before the socket closes
            socket.recv(timeout=1.0)
        except TimeoutError:
            pass


def test_a_bare_clients_clear_cache_leaves_the_slots_the_line_and_sessions_alone(served, browser):
    alice = visit(browser, served)
    upload_text(alice, "fox.txt", FOX)
    start_training(alice, minutes="3")
    expect(main(alice).get_by_role("heading", name="Training on fox.txt (tiny)")).to_be_visible()

    send_clear_cache(served)

    bob = visit(browser, served)
    upload_text(bob, "waves.txt", WAVES)
    start_training(bob, minutes="3")
    expect(main(bob).get_by_text(IN_LINE)).to_be_visible()   # one slot: Bob waits, as before the message
    expect(main(bob).get_by_text("it is next.")).to_be_visible()
    shot(bob, "shared-1-after-clear-cache-the-second-run-waits")

    address = alice.url
    reload(alice)                                            # her private address still leads to her session
    assert alice.url == address
    expect(main(alice).get_by_role("heading", name="Training on fox.txt (tiny)")).to_be_visible()
    expect(main(alice).get_by_role("button", name="Stop")).to_be_visible()
    expect(main(alice).get_by_text(IN_LINE)).to_have_count(0)
    stop(alice)
    expect(main(bob).get_by_text(TRAINING)).to_be_visible()   # the slot passed on to Bob
    expect(main(bob).get_by_text(IN_LINE)).to_have_count(0)
    stop(bob)
    for page in (alice, bob):
        page.context.close()


def test_sessions_from_one_address_get_its_share_and_a_closed_tab_gives_its_place_up(served, browser):
    first = visit(browser, served)
    upload_text(first, "fox.txt", FOX)
    start_training(first, minutes="3")
    second = visit(browser, served)
    upload_text(second, "waves.txt", WAVES)
    start_training(second, minutes="3")
    expect(main(second).get_by_text(IN_LINE)).to_be_visible()

    third = visit(browser, served)                            # a third session, same address: over its share
    upload_text(third, "fox.txt", FOX)
    go_to(third, "Train")
    main(third).get_by_role("button", name="Start training").click()
    expect(main(third).get_by_text("2 training runs from your network address are going or waiting")).to_be_visible()
    expect(main(third).get_by_role("button", name="Stop")).to_have_count(0)
    shot(third, "shared-2-an-address-over-its-share")

    second.context.close()                                    # the waiting run's tab closes: its place goes in seconds
    closed = time.monotonic()
    while not main(third).get_by_text(IN_LINE).is_visible():
        assert time.monotonic() - closed < 30, "the closed tab's run kept its place in line"
        main(third).get_by_role("button", name="Start training").click()
        settle(third)
    stop(first)
    expect(main(third).get_by_text(TRAINING)).to_be_visible()   # the freed slot went to the third, not the closed tab
    stop(third)
    for page in (first, third):
        page.context.close()
