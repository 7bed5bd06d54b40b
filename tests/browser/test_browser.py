"""Real-browser tests: Debian's Chromium, driven by Playwright, against `streamlit run` on 127.0.0.1.

A new visitor writes with the shipped model, brings a text, trains until the loss chart has points, stops,
and steps through the new model's writing; two visitors at once keep their own texts and jobs. Screenshots
of every page go to tests/screenshots/ (gitignored) for a person to look at.
"""

from __future__ import annotations

import os
import signal
import time
import urllib.parse

from .browsing import (FOX, SHOTS, WAVES, choose, expect, go_to, main, settle, shot, start_training, upload_text,
                       visit, written_text)


def test_a_new_visitor_writes_brings_a_text_trains_stops_and_steps(served, browser):
    server, process = served
    page = visit(browser, server)
    loaded = time.monotonic()   # the page has loaded: the visitor presses Write as soon as it can be pressed
    # The first view opens with a sample from the shipped model.
    expect(page.get_by_text("written as the page opened")).to_be_visible(timeout=30_000)
    assert written_text(page).startswith("The ") and len(written_text(page)) > 100
    main(page).get_by_role("button", name="Write").click()
    expect(page.get_by_text("written as the page opened")).to_have_count(0, timeout=30_000)   # the click's own text
    expect(page.get_by_test_id("stCode").first).to_contain_text("The ")
    # The code block is redrawn as the text grows: between two draws there may be none for a moment.
    page.wait_for_function("() => (document.querySelector('[data-testid=stCode]')?.innerText.length ?? 0) > 40")
    first_text_s = time.monotonic() - loaded
    SHOTS.mkdir(parents=True, exist_ok=True)
    (SHOTS / "first_text_seconds.txt").write_text(f"{first_text_s:.2f}\n")
    print(f"\nfirst text from the shipped model {first_text_s:.1f} s after the page loaded")
    settle(page)
    assert len(written_text(page)) > 100
    shot(page, "1-generate-shipped-model")   # how long text took is measured in bench/app_startup.py

    # Stop a long write: what was written stays.
    samples = page.get_by_role("spinbutton", name="Samples")
    samples.fill("5")
    samples.press("Enter")
    settle(page)
    length = page.get_by_role("slider", name="Length (characters)")
    length.focus()
    length.press("End")   # 2,000 characters
    settle(page)
    main(page).get_by_role("button", name="Write").click()
    expect(page.get_by_text("Writing…")).to_be_visible()
    # The server is held while Stop is clicked, so the click lands mid-text however fast the machine writes.
    os.kill(process.pid, signal.SIGSTOP)
    try:
        main(page).get_by_role("button", name="Stop").click()
    finally:
        os.kill(process.pid, signal.SIGCONT)
    expect(page.get_by_text("stopped after")).to_be_visible()
    settle(page)
    expect(page.get_by_test_id("stCode")).to_have_count(5)
    assert all(len(text) > 4 for text in page.get_by_test_id("stCode").all_inner_texts())
    assert all(len(text) < len("The ") + 2000 for text in page.get_by_test_id("stCode").all_inner_texts())

    upload_text(page, "fox.txt", FOX)
    expect(page.get_by_test_id("stVegaLiteChart")).to_be_visible()   # character frequencies
    expect(page.get_by_text("per pass over the training text").first).to_be_visible()   # the estimate
    shot(page, "2-corpus")

    start_training(page)
    expect(page.get_by_text("What the model writes at step")).to_be_visible()   # after the first evaluation
    expect(page.get_by_test_id("stVegaLiteChart").locator("canvas, svg").first).to_be_visible()
    page.wait_for_timeout(1500)   # more points on the chart for the screenshot; no check follows
    shot(page, "3-train-running")
    main(page).get_by_role("button", name="Stop").click()
    expect(page.get_by_text("Stopped:")).to_be_visible()
    expect(main(page).get_by_role("button", name="Download the model")).to_be_visible()
    settle(page)
    shot(page, "4-train-stopped")

    go_to(page, "Generate")
    choose(page, "Model", "Trained here: fox.txt")
    page.get_by_test_id("stTextArea").locator("textarea").fill("the ")
    page.get_by_test_id("stTextArea").locator("textarea").press("Control+Enter")
    settle(page)
    page.get_by_role("radio", name="Step").click()
    settle(page)
    for _ in range(3):
        main(page).get_by_role("button", name="Next (model's pick)").click()
        settle(page)
    page.locator('[data-testid="stButton"] button').filter(has_text="%").nth(2).click()   # another candidate
    settle(page)
    page.get_by_label("Or type your own character").fill("q")
    main(page).get_by_role("button", name="Add").click()
    settle(page)
    assert written_text(page).endswith("q▌")
    main(page).get_by_role("button", name="Undo").click()
    settle(page)
    text = written_text(page)
    assert text.startswith("the ") and len(text) == len("the ") + 4 + 1   # four characters and the cursor
    expect(page.get_by_text("Last step:")).to_be_visible()
    shot(page, "5-generate-step-mode")


def test_two_visitors_keep_their_own_texts_and_jobs(server, browser):
    alice, bob = visit(browser, server), visit(browser, server)
    upload_text(alice, "fox.txt", FOX)
    upload_text(bob, "waves.txt", WAVES)
    start_training(alice)
    start_training(bob)
    expect(alice.get_by_role("heading", name="Training on fox.txt (tiny)")).to_be_visible()
    expect(bob.get_by_role("heading", name="Training on waves.txt (tiny)")).to_be_visible()
    expect(bob.get_by_text("What the model writes at step")).to_be_visible()
    sample = bob.get_by_test_id("stCode").first.inner_text()
    assert set(sample) <= set(WAVES), "Bob's model writes only the characters of Bob's text"
    shot(bob, "6-second-visitor-training")

    go_to(alice, "Corpus")
    expect(alice.get_by_role("heading", name="Using uploaded file fox.txt")).to_be_visible()
    expect(alice.get_by_text("waves.txt")).to_have_count(0)
    expect(alice.get_by_test_id("stSidebar").get_by_text("Training:")).to_be_visible()   # the badge keeps it alive
    go_to(alice, "Train")
    for page in (alice, bob):
        main(page).get_by_role("button", name="Stop").click()
        expect(page.get_by_text("Stopped:")).to_be_visible()
    shot(alice, "7-first-visitor-stopped")


def test_generate_opens_at_its_own_address_too(server, browser):
    # Generate, the default page, lives at /; /generate (the address people guess, and the old one) must open
    # it too, query and all, not a "Page not found" dialog over it.
    page = visit(browser, f"{server}/generate")
    settle(page)
    expect(main(page).get_by_role("heading", name="Generate", exact=False).first).to_be_visible()
    expect(main(page).get_by_role("button", name="Write")).to_be_visible()
    expect(page.get_by_text("Page not found")).to_have_count(0)
    assert urllib.parse.urlsplit(page.url).path == "/"
