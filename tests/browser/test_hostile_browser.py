"""A hostile visitor in a real browser: a zip bomb and a markdown-laden model uploaded, a tab closed mid-run.

The server's peak memory is read from /proc before and after the bomb; the page must show a message,
keep working, and render no link or image that came from a file. A lone visitor who closes the tab has
their folder removed by the sweeper, with nobody else connecting.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import hostile_files as hostile
from helpers import poll
from .browsing import choose, expect, go_to, main, settle, shot, streamlit_server, visit

BOMB_PEAK_MB = 100   # the bomb inflates to 1,500 MB in a loader that trusts it


def peak_mb(pid: int) -> float:
    """The process's peak resident memory so far (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc")


def upload_model(page, name: str, data: bytes) -> None:
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(
        files=[{"name": name, "mimeType": "application/octet-stream", "buffer": data}])


def no_link_or_image_from_the_file(page) -> None:
    assert page.locator('a[href*="example.com"]').count() == 0
    assert page.locator('img[src*="example.com"]').count() == 0


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory):
    with streamlit_server(tmp_path_factory.mktemp("hostile-server")) as served:
        yield served


def test_a_zip_bomb_upload_gets_a_message_and_the_server_memory_stays_flat(hostile_server, browser, trained):
    url, process = hostile_server
    page = visit(browser, url)
    go_to(page, "Train")
    before = peak_mb(process.pid)
    upload_model(page, "bomb.pt", hostile.zip_bomb(trained.checkpoint))
    expect(main(page).get_by_text("holds compressed data")).to_be_visible()
    settle(page)
    growth = peak_mb(process.pid) - before
    print(f"\nserver peak memory grew {growth:.0f} MB on the zip bomb")
    assert growth < BOMB_PEAK_MB
    shot(page, "8-zip-bomb-refused")
    go_to(page, "Generate")   # the app keeps working
    expect(main(page).get_by_role("button", name="Write")).to_be_visible()
    page.context.close()


def test_markdown_in_an_uploaded_model_is_shown_as_plain_text(hostile_server, browser, trained):
    url, _ = hostile_server
    page = visit(browser, url)
    go_to(page, "Train")
    upload_model(page, "fields.pt", hostile.with_fields(trained.checkpoint, preset=hostile.MARKDOWN_PRESET))
    expect(main(page).get_by_text("Loaded the model.")).to_be_visible()
    expect(main(page).get_by_text(hostile.MARKDOWN_PRESET)).to_be_visible()   # the characters, as written
    no_link_or_image_from_the_file(page)
    shot(page, "9-markdown-upload")
    go_to(page, "Generate")
    choose(page, "Model", "Uploaded: fields.pt")
    expect(main(page).get_by_text(hostile.MARKDOWN_PRESET).first).to_be_visible()
    no_link_or_image_from_the_file(page)
    shot(page, "10-markdown-model-on-generate")
    page.context.close()


def test_a_lone_closed_tab_is_swept_with_nobody_else_connecting(tmp_path, browser):
    temp = tmp_path / "tmp"
    temp.mkdir()
    with streamlit_server(tmp_path, TMPDIR=str(temp), CHARLM_ABANDON_AFTER_S="3",
                          CHARLM_SWEEP_EVERY_S="1") as (url, _):
        page = visit(browser, url)
        go_to(page, "Corpus")
        page.get_by_role("tab", name="Built-in corpora").click()
        main(page).get_by_role("button", name="Load").click()
        expect(page.get_by_role("heading", name="Using the Python reference documentation")).to_be_visible()
        go_to(page, "Train")
        choose(page, "Preset", "tiny (1 × 128)")
        main(page).get_by_role("button", name="Start training").click()
        expect(main(page).get_by_role("button", name="Stop")).to_be_visible()
        folders = list(temp.glob("charlm-visitor-*"))
        assert len(folders) == 1 and folders[0].is_dir()
        page.context.close()
        poll(lambda: not folders[0].exists(), 60, "the closed tab's folder to go", every_s=0.5)
