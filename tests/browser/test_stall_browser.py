"""One visitor's hostile text stalls nobody: the 400 KB combining-mark text, pasted and then uploaded in Chromium,
is refused with its message while the server's health check, polled every 100 ms, answers within a second.

Unicode's NFC sorts a run of combining marks in quadratic time, holding the interpreter's lock: before the text
was checked for such runs, this text froze every visitor's page (and the health check) for about a minute.
The paste box has no character limit of its own, so the whole text reaches the server. Chromium itself lays out a
letter with n marks on it in quadratic time (a visible box took 37 s to show 80,000), which would stall the test's
own tab, not the server: the text goes into the box as typing would, with the box hidden while it holds it.
"""

from __future__ import annotations

import threading
import time
import urllib.request

import pytest

from .browsing import FOX, expect, go_to, main, settle, shot, streamlit_server, visit

MARKS = "a" + "\u0301" * 100_000 + "\u0316" * 100_000   # 400 KB of UTF-8: marks of two classes NFC must reorder
REFUSAL = ("The text has 200,000 combining marks in a row (accents stacked on one letter) from character 2; at "
           "most 30 are accepted, as Unicode's stream-safe form allows, since longer runs are not writing "
           "and take a long time to normalise. Remove that run and try again.")
# Sets the paste box's value as typing does (React reads the input event), hiding the box while the value is not
# empty; an empty value shows it again.
PASTE_HIDDEN = """text => {
    const box = document.querySelector('textarea[aria-label="Paste text"]');
    let hide = document.getElementById("hide-paste-box");
    if (hide === null) {
        hide = Object.assign(document.createElement("style"), {id: "hide-paste-box"});
        hide.textContent = 'textarea[aria-label="Paste text"] {display: none;}';
        document.head.appendChild(hide);
    }
    Object.getOwnPropertyDescriptor(HTMLTextAreaElement.prototype, "value").set.call(box, text);
    box.dispatchEvent(new Event("input", {bubbles: true}));
    if (text === "") hide.remove();
    return box.value.length;
}"""
HEALTHY_S = 1.0          # the slowest health answer allowed while the text is handled
POLL_EVERY_S = 0.1
ANSWER_WITHIN_MS = 180_000   # long enough for the old code's minute-long stall to end, so its figures are seen


class HealthPoller:
    """Asks /_stcore/health every POLL_EVERY_S from a thread of its own and keeps how long each answer took.

    As a context, it begins once the first answer is in and ends once one more has come after the block."""

    def __init__(self, url: str):
        self.url, self.times = f"{url}/_stcore/health", []
        self._answered = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                with urllib.request.urlopen(self.url, timeout=300) as response:
                    healthy = response.status == 200
            except OSError:
                healthy = False
            with self._answered:
                self.times.append(time.monotonic() - began if healthy else float("inf"))   # no answer: unhealthy
                self._answered.notify_all()
            self._stop.wait(POLL_EVERY_S)   # an interval between questions, not a wait for a condition

    def _wait_for(self, answers: int) -> None:
        with self._answered:
            assert self._answered.wait_for(lambda: len(self.times) >= answers, timeout=600), "health never answered"

    def __enter__(self) -> HealthPoller:
        self._thread.start()
        self._wait_for(1)
        return self

    def __exit__(self, *exc) -> None:
        self._wait_for(len(self.times) + 1)
        self._stop.set()
        self._thread.join()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    with streamlit_server(tmp_path_factory.mktemp("stall-server")) as (url, _):
        yield url


def handled_within_a_second(page, served: str, submit, refusal) -> None:
    """Submit the marks, wait for the page's answer (refusal, acceptance or error) with health polled, and check."""
    answered = refusal.or_(main(page).get_by_role("heading", name="Using")).or_(page.get_by_test_id("stException"))
    with HealthPoller(served) as health:
        submit()
        expect(answered.first).to_be_visible(timeout=ANSWER_WITHIN_MS)
        settle(page)
    worst = max(health.times)
    print(f"\n{len(health.times)} health answers; the slowest took {worst:.3f} s: "
          f"{', '.join(f'{t:.3f}' for t in health.times)}")
    assert worst < HEALTHY_S, f"the health check took {worst:.1f} s while the text was handled"
    expect(refusal).to_be_visible()
    expect(page.get_by_test_id("stException")).to_have_count(0)


def an_ordinary_paste_is_then_used(page) -> None:
    page.get_by_role("tab", name="Paste text").click()
    assert page.evaluate(PASTE_HIDDEN, "") == 0
    main(page).get_by_role("textbox", name="Paste text").fill(FOX)
    main(page).get_by_role("button", name="Use this text").click()
    expect(main(page).get_by_role("heading", name=f"Using pasted text ({len(FOX):,} characters)")).to_be_visible()
    settle(page)


def test_pasting_the_combining_mark_text_is_refused_and_health_answers_within_a_second(served, browser):
    page = visit(browser, served)
    go_to(page, "Corpus")
    page.get_by_role("tab", name="Paste text").click()
    main(page).get_by_role("textbox", name="Paste text").wait_for()
    assert page.evaluate(PASTE_HIDDEN, MARKS) == len(MARKS)   # the box took it all: it has no max_chars
    handled_within_a_second(page, served, main(page).get_by_role("button", name="Use this text").click,
                            main(page).get_by_text(REFUSAL))
    shot(page, "stall-1-combining-marks-pasted")
    an_ordinary_paste_is_then_used(page)
    page.context.close()


def test_uploading_the_combining_mark_text_is_refused_and_health_answers_within_a_second(served, browser):
    page = visit(browser, served)
    go_to(page, "Corpus")
    uploader = page.locator('[data-testid="stFileUploaderDropzoneInput"]')
    handled_within_a_second(
        page, served,
        lambda: uploader.set_input_files(files=[{"name": "marks.txt", "mimeType": "text/plain",
                                                 "buffer": MARKS.encode()}]),
        main(page).get_by_text(f"The file marks.txt was not used. {REFUSAL}"))
    shot(page, "stall-2-combining-marks-uploaded")
    an_ordinary_paste_is_then_used(page)
    page.context.close()
