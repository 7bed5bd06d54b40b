"""The browser tests' fixtures: a Streamlit server per module and one Chromium; every test here is marked
`browser`, and all are skipped where there is no Chromium (CI must have one)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
CHROMIUM = os.environ.get("CHARLM_CHROMIUM", "/usr/bin/chromium")
if not Path(CHROMIUM).is_file() and os.environ.get("CI"):
    # In CI a missing browser is a broken setup, not a reason to pass without the browser tests.
    raise RuntimeError(f"CI=true but no Chromium at {CHROMIUM}: .ci/run should have installed it")
if not Path(CHROMIUM).is_file():
    pytest.skip(f"no Chromium at {CHROMIUM} (CI installs Debian's chromium; set CHARLM_CHROMIUM to use another)",
                allow_module_level=True)
pytest.importorskip("playwright.sync_api")

from .browsing import CHROMIUM_ARGS, streamlit_server  # noqa: E402  (after the skips: it needs playwright)
from playwright.sync_api import sync_playwright  # noqa: E402


def pytest_collection_modifyitems(items):
    for item in items:
        if item.path.is_relative_to(HERE):   # the hook sees the whole session's tests
            item.add_marker(pytest.mark.browser)


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
    """Debian's Chromium, headless, shared by the module's tests; each visit() opens a context of its own."""
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
