"""Every page in a real browser, with a model and a text whose names and metadata are written in markdown.

Each string a file or a visitor brings must show as the characters it is: no link, no remote image, no bold,
no coloured text or icon from a directive, and the image's address (a server of the test's own) is never asked
for. The pages are walked twice: before the model's text is chosen (the pages name the text the model file
records) and after (they name the visitor's file it was found in).
"""

from __future__ import annotations

import contextlib
import http.server
import threading

import pytest

import hostile_files as hostile
from app.learn import LEARN_PAGES
from helpers import PERIODIC_TEXT
from .browsing import choose, expect, go_to, main, settle, shot, streamlit_server, visit

MODEL_NAME = "[m](phish.example) **BOLD** :red[RED].pt"
TEXT_NAME = "[k](phish.example) **BOLD** :red[RED].txt"


@contextlib.contextmanager
def tracking_server():
    """A local web server that counts the requests it gets: -> (its address, the list of paths asked for)."""
    asked: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            asked.append(self.path)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", asked
    finally:
        server.shutdown()
        server.server_close()


def markdown_string(tracker: str) -> str:
    """Markdown a model file can carry: a link, a remote image, bold, a colour and an icon directive, LaTeX, and
    a bare address (which Streamlit would link)."""
    return (f"[c](https://phish.example/c) ![t]({tracker}/track.png) **BOLD** :red[RED] :material/skull: "
            "$x^2$ https://phish.example/bare")


def markdown_model(trained, text: str) -> bytes:
    """The session's tiny model with the markdown in every string of its metadata."""
    ckpt = trained.checkpoint
    info = {**ckpt.info, "corpus": text, "device": text, "started_from": text, "started_from_corpus": text,
            "started_from_preset": text, "notes": text}
    history = [{**row, "sample": text} for row in ckpt.history]
    return hostile.with_fields(ckpt, preset=text, info=info, history=history)


def nothing_rendered(page, where: str) -> None:
    """No markup from a file or a visitor took effect on this page."""
    assert page.locator('a[href*="phish.example"]').count() == 0, where
    assert page.locator('img[src*="track"]').count() == 0, where
    assert page.locator("strong", has_text="BOLD").count() == 0, where
    assert page.locator(".stMarkdownColoredText", has_text="RED").count() == 0, where
    assert page.locator('[aria-label="skull icon"]').count() == 0, where
    assert page.locator(".katex").count() == 0, where


def shown_literally(page, text: str, where: str) -> None:
    """The text is on the page as its characters (zero-width spaces that break patterns aside)."""
    shown = main(page).inner_text().replace("\u200b", "")
    assert text in shown, f"{where}: {text!r} is not shown as written"


def upload(page, name: str, data: bytes, mime: str) -> None:
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(
        files=[{"name": name, "mimeType": mime, "buffer": data}])
    settle(page)


def walk_learn(page, text: str, literal: str, tracker_hits: list[str], round_name: str) -> None:
    for number, (_, title, path, _) in enumerate(LEARN_PAGES, start=1):
        go_to(page, title)
        where = f"{round_name}: {title}"
        nothing_rendered(page, where)
        if title != "2017 vs today":   # the shipped pair, and the race's text: no model to choose there
            expect(main(page).get_by_role("combobox", name="Model to explore")).to_have_value(f"Uploaded: {MODEL_NAME}")
            shown_literally(page, text, where)   # its preset, in the model's summary
        if title in ("Text to numbers", "Windows and targets", "Surprise map", "Neuron explorer"):
            shown_literally(page, literal, where)   # the line saying where the model's text is
        shot(page, f"plain-{round_name}-{number:02d}-{path}")
        assert tracker_hits == [], where


@pytest.fixture(scope="module")
def plain_server(tmp_path_factory):
    with streamlit_server(tmp_path_factory.mktemp("plain-text")) as (url, _):
        yield url


def test_markdown_from_files_and_names_renders_nowhere(plain_server, browser, trained):
    with tracking_server() as (tracker, hits):
        text = markdown_string(tracker)
        page = visit(browser, plain_server)

        go_to(page, "Train")
        upload(page, MODEL_NAME, markdown_model(trained, text), "application/octet-stream")
        expect(main(page).get_by_text("Loaded the model.")).to_be_visible()
        nothing_rendered(page, "Train, after the upload")

        go_to(page, "Generate")
        choose(page, "Model", f"Uploaded: {MODEL_NAME}")
        nothing_rendered(page, "Generate")
        shown_literally(page, text, "Generate")

        go_to(page, "Text to numbers")
        choose(page, "Model to explore", f"Uploaded: {MODEL_NAME}")
        walk_learn(page, text, f"This model learned from {text}", hits, "recorded-name")

        go_to(page, "Corpus")
        upload(page, TEXT_NAME, PERIODIC_TEXT.encode(), "text/plain")   # the model's own text: Learn finds it
        expect(main(page).get_by_role("heading", name="Using uploaded file")).to_be_visible()
        nothing_rendered(page, "Corpus")
        shown_literally(page, f"Using uploaded file {TEXT_NAME}", "Corpus")

        go_to(page, "Train")
        choose(page, "Start from", f"Uploaded: {MODEL_NAME}")
        nothing_rendered(page, "Train")
        shown_literally(page, f"uploaded file {TEXT_NAME}", "Train")
        shown_literally(page, text, "Train")
        shot(page, "plain-train")

        walk_learn(page, text, f"this session's text (uploaded file {TEXT_NAME})", hits, "text-at-hand")
        assert hits == []
        page.context.close()

