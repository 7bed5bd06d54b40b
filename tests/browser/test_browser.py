"""Real-browser tests: Debian's Chromium, driven by Playwright, against `streamlit run` on 127.0.0.1.

A new visitor writes with the shipped model, brings a text, trains until the loss chart has points, stops,
and steps through the new model's writing; two visitors at once keep their own texts and jobs. Screenshots
of every page go to tests/screenshots/ (gitignored) for a person to look at.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("CHARLM_CHROMIUM", "/usr/bin/chromium")
if not Path(CHROMIUM).is_file() and os.environ.get("CI"):
    # In CI a missing browser is a broken setup, not a reason to pass without the browser tests.
    raise RuntimeError(f"CI=true but no Chromium at {CHROMIUM}: .ci/run should have installed it")
if not Path(CHROMIUM).is_file():
    pytest.skip(f"no Chromium at {CHROMIUM} (CI installs Debian's chromium; set CHARLM_CHROMIUM to use another)",
                allow_module_level=True)
playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect
expect.set_options(timeout=60_000)   # a loaded CI machine can take its time; the flows still end

REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "tests" / "screenshots"
WIDTH, HEIGHT = 1400, 900
FOX = "the quick brown fox jumps over the lazy dog; the five boxing wizards jump quickly.\n" * 60
WAVES = "waves fold on the shore, the tide turns, gulls call over grey water at dawn.\n" * 60


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def streamlit_server(folder: Path, **env: str):
    """`streamlit run streamlit_app.py` as a visitor's server would run it, on a free port; -> (url, process)."""
    port = free_port()
    env = {**os.environ, "CHARLM_CACHE_DIR": str(folder / "cache"), **env}
    log = (folder / "streamlit.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"streamlit did not start; see {log.name}")
        time.sleep(0.3)
    try:
        yield url, process
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The module's server: (url, process)."""
    with streamlit_server(tmp_path_factory.mktemp("server"), CHARLM_MAX_JOBS="2",
                          CHARLM_ABANDON_AFTER_S="60") as served:
        yield served


@pytest.fixture(scope="module")
def server(served):
    return served[0]


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                  "--disable-component-update"])
        yield chromium
        chromium.close()


# Counts the script runs that have finished, in every page: the app's data-test-script-state attribute going
# to "notRunning" from anything else. A MutationObserver sees every change of it, so a run that was over
# before settle() looked is counted all the same.
COUNT_FINISHED_RUNS = """
window.__runsFinished = 0;
window.__runsSettled = 0;
new MutationObserver(records => {
    records.forEach((record, i) => {
        const later = records.slice(i + 1).find(r => r.target === record.target);
        const value = later ? later.oldValue : record.target.getAttribute("data-test-script-state");
        if (value === "notRunning" && record.oldValue !== "notRunning") window.__runsFinished += 1;
    });
}).observe(document, {subtree: true, attributes: true, attributeOldValue: true,
                      attributeFilter: ["data-test-script-state"]});
"""
NO_RERUN_MS = 5_000   # how long settle() waits for a run to start before taking it that the action reran nothing


def visit(browser, url: str):
    page = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT}).new_page()
    page.set_default_timeout(60_000)
    page.add_init_script(COUNT_FINISHED_RUNS)
    page.goto(url)
    page.wait_for_selector('[data-testid="stApp"][data-test-connection-state="CONNECTED"]')
    return page


def settle(page) -> None:
    """Wait until the script run for the last action has finished: one has run since the last settle (it may
    already be over) and none is running now. An action that reran nothing (choosing the option already
    chosen) is let through after NO_RERUN_MS."""
    try:
        page.wait_for_function("() => window.__runsFinished > window.__runsSettled || document.querySelector("
                               "'[data-testid=stApp][data-test-script-state=running]') !== null", timeout=NO_RERUN_MS)
    except playwright_api.TimeoutError:
        pass
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]')
    page.evaluate("() => { window.__runsSettled = window.__runsFinished; }")


def shot(page, name: str) -> Path:
    """The whole page (the app scrolls inside its main area, so the viewport grows to fit it)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    height = page.evaluate("() => Math.max(...[...document.querySelectorAll('[data-testid=stMain], "
                           "[data-testid=stMainBlockContainer]')].map(e => e.scrollHeight), 0)")
    page.set_viewport_size({"width": WIDTH, "height": min(max(HEIGHT, height + 80), 5000)})
    page.wait_for_timeout(800)   # charts re-render at the new size
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    page.set_viewport_size({"width": WIDTH, "height": HEIGHT})
    return path


def main(page):
    """The page's own content (the header has a Stop button of its own while a script runs)."""
    return page.get_by_test_id("stMainBlockContainer")


def go_to(page, title: str) -> None:
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=title, exact=True).click()
    expect(page.get_by_role("heading", name=title, level=1)).to_be_visible()
    settle(page)


def choose(page, label: str, option: str) -> None:
    page.get_by_role("combobox", name=label).click()
    page.get_by_role("option", name=option, exact=True).click()
    settle(page)


def upload_text(page, name: str, text: str) -> None:
    go_to(page, "Corpus")
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(
        files=[{"name": name, "mimeType": "text/plain", "buffer": text.encode()}])
    expect(page.get_by_role("heading", name=f"Using uploaded file {name}")).to_be_visible()
    settle(page)


def start_training(page, minutes: str = "5") -> None:
    """Start a run long enough to still be going when the test stops it, however slow the machine."""
    go_to(page, "Train")
    choose(page, "Preset", "tiny (1 × 128)")
    minutes_box = page.get_by_label("Minutes of training")
    minutes_box.fill(minutes)
    minutes_box.press("Enter")
    settle(page)
    main(page).get_by_role("button", name="Start training").click()
    expect(main(page).get_by_role("button", name="Stop")).to_be_visible()


def written_text(page) -> str:
    return page.get_by_test_id("stCode").first.inner_text()


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
    assert page.get_by_test_id("stCode").count() == 5
    assert all(len(text) > 4 for text in page.get_by_test_id("stCode").all_inner_texts())
    assert all(len(text) < len("The ") + 2000 for text in page.get_by_test_id("stCode").all_inner_texts())

    upload_text(page, "fox.txt", FOX)
    expect(page.get_by_test_id("stVegaLiteChart")).to_be_visible()   # character frequencies
    expect(page.get_by_text("per pass over the training text").first).to_be_visible()   # the estimate
    shot(page, "2-corpus")

    start_training(page)
    expect(page.get_by_text("What the model writes at step")).to_be_visible()   # after the first evaluation
    expect(page.get_by_test_id("stVegaLiteChart").locator("canvas, svg").first).to_be_visible()
    page.wait_for_timeout(1500)
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
