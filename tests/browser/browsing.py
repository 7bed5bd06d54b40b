"""What the browser tests share that is not a fixture: `streamlit run` on a free port, a page opened in
Chromium and connected, waiting for the app's script runs, the sidebar's pages, and screenshots.

Fixtures (the module's server, the Chromium browser) are in conftest.py, which also skips these tests where
there is no Chromium.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from playwright import sync_api as playwright_api

expect = playwright_api.expect
expect.set_options(timeout=60_000)   # a loaded CI machine can take its time; the flows still end

# No sandbox (containers have no user namespaces), no GPU, no shared-memory disk, and no updates or pings.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update"]
CONNECTED = '[data-testid="stApp"][data-test-connection-state="CONNECTED"]'
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
    """A new tab in a browser context of its own (no cookies or storage shared), at url, connected."""
    page = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT}).new_page()
    page.set_default_timeout(60_000)
    page.add_init_script(COUNT_FINISHED_RUNS)
    page.goto(url)
    page.wait_for_selector(CONNECTED)
    return page


def reload(page) -> None:
    """Reload the page and wait until it is connected again and its script run is over."""
    page.reload()
    page.wait_for_selector(CONNECTED)
    settle(page)


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


def shot(page, name: str) -> Path | None:
    """The whole page (the app scrolls inside its main area, so the viewport grows to fit it), when
    CHARLM_SCREENSHOTS asks for them (a picture for a person, not a check: each costs a second or two)."""
    if not os.environ.get("CHARLM_SCREENSHOTS"):
        return None
    SHOTS.mkdir(parents=True, exist_ok=True)
    height = page.evaluate("() => Math.max(...[...document.querySelectorAll('[data-testid=stMain], "
                           "[data-testid=stMainBlockContainer]')].map(e => e.scrollHeight), 0)")
    page.set_viewport_size({"width": WIDTH, "height": min(max(HEIGHT, height + 80), 5000)})
    page.wait_for_timeout(800)   # charts re-render at the new size; only a picture for a person follows
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




def new_tab(context, url: str):
    """Another tab in a browser context already open (its cookies shared with the context's other tabs), at url,
    connected."""
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.add_init_script(COUNT_FINISHED_RUNS)
    page.goto(url)
    page.wait_for_selector(CONNECTED)
    return page


def cookie(page, name: str) -> dict:
    """The cookie of that name in the page's browser (its value, max-age as `expires`, SameSite ...), once the
    page has written it: a script the app's run put in the page writes it, which can be a moment after the run
    is over."""
    page.wait_for_function("name => document.cookie.split('; ').some(c => c.startsWith(name + '='))", arg=name)
    return next(c for c in page.context.cookies() if c["name"] == name)
