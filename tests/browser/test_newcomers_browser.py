"""What newcomers tripped on (issue 12) that only a real browser shows: the frequency chart's order after a
new text, a ten-digit seed in the Seed box, the uploader's cap in characters, a stopped Write that stays as its
Stop reported. Screenshots of Step mode and of a beam Write (its labels, and the buttons that save and reuse a
text) go to tests/screenshots/.
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections import Counter

from app.charts import show_char
from .browsing import FOX, choose, expect, go_to, main, settle, shot, upload_text, visit

# FOX's characters, the rarest made the most common: the new text's bars must come in the opposite order.
_BY_COUNT = [char for char, _ in Counter(FOX).most_common()]
REVERSED_FOX = "".join(char * (rank + 1) for rank, char in enumerate(_BY_COUNT)) * 4


def frequency_order(text: str) -> list[str]:
    """The characters as the chart labels them, most common first (ties: first seen, as the Corpus page counts)."""
    counts = Counter(text)
    return [show_char(char) for char in sorted(counts, key=lambda char: (-counts[char], ord(char)))][:40]


def x_axis_labels(page) -> list[str]:
    """The labels along the first chart's x axis, left to right (Streamlit draws small charts as SVG)."""
    return page.evaluate("""() => {
        const chart = document.querySelector('[data-testid=stVegaLiteChart]');
        const axis = [...chart.querySelectorAll('g.role-axis')]
            .find(g => (g.getAttribute('aria-label') || '').startsWith('X-axis'));
        return axis ? [...axis.querySelectorAll('.role-axis-label text')].map(t => t.textContent) : [];
    }""")


def labels_become(page, expected: list[str], timeout_s: float = 15) -> list[str]:
    """The x-axis labels once they equal expected, or as they are when the time is up."""
    deadline = time.monotonic() + timeout_s
    while (labels := x_axis_labels(page)) != expected and time.monotonic() < deadline:
        page.wait_for_timeout(250)
    return labels


def test_the_frequency_chart_follows_the_order_of_a_new_text(server, browser):
    page = visit(browser, server)
    upload_text(page, "fox.txt", FOX)
    assert labels_become(page, frequency_order(FOX)) == frequency_order(FOX)
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(
        files=[{"name": "reversed.txt", "mimeType": "text/plain", "buffer": REVERSED_FOX.encode()}])
    expect(page.get_by_role("heading", name="Using uploaded file reversed.txt")).to_be_visible()
    settle(page)
    # The chart was drawn again with the new text's data; before the fix the bars kept fox.txt's order.
    assert labels_become(page, frequency_order(REVERSED_FOX)) == frequency_order(REVERSED_FOX)
    shot(page, "newcomers-1-frequency-chart-after-a-new-text")


def test_the_corpus_uploader_states_its_cap_in_characters(server, browser):
    page = visit(browser, server)
    go_to(page, "Corpus")
    uploader = main(page).get_by_test_id("stFileUploader")
    expect(uploader.get_by_text("up to 5,000,000 characters")).to_be_visible()
    expect(uploader.get_by_text("21MB per file")).to_be_hidden()   # Streamlit's own limit, in bytes of file
    shot(page, "newcomers-7-corpus-uploader")


def test_a_ten_digit_seed_shows_whole_in_the_seed_box(server, browser):
    page = visit(browser, server)
    settle(page)
    seed = page.get_by_role("spinbutton", name="Seed")
    seed.fill("2147483647")   # the largest seed the app draws itself: 2**31 - 1
    seed.press("Enter")
    settle(page)
    expect(seed).to_have_value("2147483647")
    hidden_px = seed.evaluate("input => input.scrollWidth - input.clientWidth")
    assert hidden_px <= 0, f"the Seed box hides {hidden_px} px of a ten-digit seed"
    shot(page, "newcomers-4-seed-box")


def test_screenshots_of_step_mode_and_of_a_beam_write(server, browser):
    """For a person to look at: the candidate buttons in a fixed grid with both probabilities; beam's texts
    each labelled; the download and use-as-prime buttons."""
    page = visit(browser, server)
    settle(page)
    page.get_by_role("radio", name="Step").click()
    settle(page)
    for _ in range(2):
        main(page).get_by_role("button", name="Next (model's pick)").click()
        settle(page)
    expect(main(page).get_by_role("button", name="Download the text (.txt)")).to_be_visible()
    shot(page, "newcomers-5-step-mode")
    page.get_by_role("radio", name="Write").click()
    settle(page)
    choose(page, "Strategy", "beam search")
    expect(page.get_by_role("spinbutton", name="Seed")).to_have_count(0)   # beam draws nothing at random
    samples = page.get_by_role("spinbutton", name="Samples")
    samples.fill("2")
    samples.press("Enter")
    settle(page)
    main(page).get_by_role("button", name="Write").click()
    settle(page)
    expect(main(page).get_by_text("log-probability").first).to_be_visible()
    expect(main(page).get_by_role("button", name="Use as prime")).to_have_count(2)
    shot(page, "newcomers-6-beam-write")


def test_a_stopped_write_stays_as_its_stop_reported(served, browser):
    """The Stop click's run shows the texts at once while the interrupted run winds down (Streamlit's
    fastReruns); what it showed must be what the Write keeps. The AppTest in tests/test_newcomers.py makes
    the overlap certain; here it happens as it does for a visitor."""
    server, process = served
    page = visit(browser, server)
    settle(page)
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
    os.kill(process.pid, signal.SIGSTOP)   # held, so the click lands mid-text however fast the machine writes
    try:
        main(page).get_by_role("button", name="Stop").click()
    finally:
        os.kill(process.pid, signal.SIGCONT)
    status = main(page).get_by_text("stopped after")
    expect(status).to_be_visible()
    settle(page)
    reported, texts = status.inner_text(), page.get_by_test_id("stCode").all_inner_texts()
    count = int(re.search(r"stopped after ([\d,]+) character", reported).group(1).replace(",", ""))
    assert 0 < count < 2000 and len(texts) == 5
    # Time for the interrupted run to have written on, if it could: a check that something does not happen, so
    # a bounded wait.
    page.wait_for_timeout(2000)
    go_to(page, "Corpus")
    go_to(page, "Generate")       # the page shows the Write again, as it now is
    expect(main(page).get_by_text("stopped after")).to_have_text(reported)
    assert page.get_by_test_id("stCode").all_inner_texts() == texts
