"""Cold start of the app: seconds from `streamlit run` to generated text on the page, median of a few runs.

first_text_s: the first view's sample on the page; write_button_s: the page usable; write_click_text_s:
a Write clicked as soon as it shows has written its text; server_rss_mb: the server's resident memory then.

Needs Debian's chromium and the playwright package (as the browser tests do). Run by hand:

    python bench/app_startup.py [--runs 3] [--against /tmp/old-checkout]

With --against, rounds alternate between this checkout and the other one, so both see the same machine.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("CHARLM_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
         "--disable-component-update"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def resident_mb(pid: int) -> float:
    """The server's resident memory once a visitor has written: torch, if a page loaded it, is most of it."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def one_cold_start(chromium, root: Path = ROOT) -> dict:
    port = free_port()
    started = time.perf_counter()
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.port",
                               str(port), "--server.address", "127.0.0.1", "--server.headless", "true"],
                              cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1):
                    break
            except OSError:
                time.sleep(0.05)
        healthy = time.perf_counter() - started
        page = chromium.new_context().new_page()
        page.goto(url)
        # The first view opens with a sample from the shipped model, written before torch has loaded.
        page.wait_for_function("() => (document.querySelector('[data-testid=stCode]') || {innerText: ''})"
                               ".innerText.length > 40", timeout=60_000)
        text = time.perf_counter() - started
        button = page.get_by_test_id("stMainBlockContainer").get_by_role("button", name="Write")
        button.wait_for()
        ready = time.perf_counter() - started
        button.click()
        # The click's own text: the caption loses "written as the page opened" once Write has written.
        page.wait_for_function("() => [...document.querySelectorAll('[data-testid=stCaptionContainer]')]"
                               ".some(c => /characters$/.test(c.innerText) && !c.innerText.includes('page opened'))",
                               timeout=60_000)
        written = time.perf_counter() - started
        page.context.close()
        return {"server_up_s": healthy, "first_text_s": text, "write_button_s": ready, "write_click_text_s": written,
                "server_rss_mb": resident_mb(server.pid)}
    finally:
        server.terminate()
        server.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--against", type=Path, help="another checkout, timed in alternating rounds")
    args = parser.parse_args()
    roots = {"this checkout": ROOT, **({f"against {args.against}": args.against} if args.against else {})}
    runs = {name: [] for name in roots}
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        for _ in range(args.runs):
            for name, root in roots.items():
                runs[name].append(one_cold_start(chromium, root))
        chromium.close()
    for name, results in runs.items():
        print(name)
        for key in results[0]:
            values = [r[key] for r in results]
            unit = "MB" if key.endswith("_mb") else "s"
            print(f"  {key:18s} median {statistics.median(values):6.2f} {unit}  runs: "
                  f"{', '.join(f'{v:.2f}' for v in values)}")


if __name__ == "__main__":
    main()
