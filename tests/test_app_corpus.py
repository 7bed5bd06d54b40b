"""App tests (AppTest) for the Corpus page: uploads good and bad, pasting, the built-in corpora."""

import functools
import http.server
import socket
import threading

import pytest
from streamlit.testing.v1 import AppTest

from charlm.text import datasets

from helpers import APP
TEXT = "the quick brown fox jumps over the lazy dog; the five boxing wizards jump quickly.\n" * 60


@pytest.fixture
def at(app_env):
    app = AppTest.from_file(APP, default_timeout=60)
    app.run()
    app.switch_page("app/pages/corpus.py").run()
    assert app.title[0].value == "Corpus"
    return app


def upload(at, name: str, data: bytes):
    at.file_uploader(key="corpus_upload").set_value((name, data, "text/plain"))
    return at.run()


def metrics(at) -> dict:
    return {m.label: m.value for m in at.metric}


@pytest.mark.slow
def test_a_good_upload_shows_what_the_engine_reports(at):
    upload(at, "fox.txt", TEXT.encode("utf-8"))
    assert not at.exception and not at.error
    assert metrics(at)["Characters"] == f"{len(TEXT):,}"
    assert metrics(at)["Distinct characters"] == str(len(set(TEXT)))
    page = " ".join(m.value for m in at.markdown)
    assert "read as utf-8" in page
    assert "for training" in page and "for validation" in page
    assert "per pass over the training text" in page   # the training-time estimate
    assert at.code[0].value.startswith("the quick brown fox")   # the preview
    assert len(at.get("vega_lite_chart")) == 1   # character frequencies
    assert at.session_state["corpus"].corpus.name == "fox.txt"


@pytest.mark.parametrize("name, data, message", [
    ("picture.txt", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8, "looks like a PNG image"),
    ("empty.txt", b"", "There is no text"),
    ("blob.bin", bytes(range(256)) * 40, "binary data"),
    ("broken.txt", b"\xff\xfe" + b"\x00\xd8" * 1500, "byte-order mark but is not valid"),
    ("short.txt", b"too short", "at least 1,000 are needed"),
])
def test_a_bad_upload_gets_a_clear_error_and_the_app_keeps_working(at, name, data, message):
    upload(at, "fox.txt", TEXT.encode("utf-8"))
    upload(at, name, data)
    assert not at.exception
    assert message in at.error[0].value.replace("\\", "")   # shown escaped: no markdown from the file
    assert at.session_state["corpus"].corpus.name == "fox.txt"   # the good text is still the one in use
    at.switch_page("app/pages/generate.py").run()
    assert not at.exception and at.title[0].value == "Generate"


def test_a_text_over_the_servers_cap_is_refused(at, monkeypatch):
    monkeypatch.setenv("CHARLM_MAX_CORPUS_MB", "0.002")   # 2,000 characters
    at.run()   # the uploader follows the new cap
    upload(at, "fox.txt", TEXT.encode("utf-8"))
    assert "the limit is 2,000 characters" in at.error[0].value
    assert "corpus" not in at.session_state


def test_a_file_name_is_shown_as_it_is_not_as_markdown(at):
    upload(at, "war_and_peace.txt", TEXT.encode("utf-8"))
    assert at.subheader[0].value == "Using uploaded file war\\_and\\_peace\\.txt"


def test_a_legacy_encoding_is_read_with_a_notice(at):
    upload(at, "café.txt", ("Café crème à la française. " * 60).encode("cp1252"))
    assert not at.error
    assert "not UTF-8" in at.info[0].value


def test_pasted_text_is_used(at):
    at.text_area(key="paste_text").input(TEXT)
    at.button(key="FormSubmitter:paste_form-Use this text").click().run()
    assert not at.exception and not at.error
    assert at.session_state["corpus"].source.startswith("pasted text")
    at.text_area(key="paste_text").input("short")
    at.button(key="FormSubmitter:paste_form-Use this text").click().run()
    assert "at least 1,000 are needed" in at.error[0].value


def test_the_python_documentation_is_always_there(at):
    at.radio(key="builtin_choice").set_value("Python reference documentation (always available)")
    at.button(key="builtin_load").click().run()
    assert not at.exception and not at.error
    assert at.session_state["corpus"].stats.chars > 100_000


@pytest.fixture
def nietzsche_server(tmp_path):
    root = tmp_path / "site"
    root.mkdir()
    line = "What is noble? What does the word noble still mean for us nowadays?\n"
    (root / "nietzsche.txt").write_bytes((line * 10_000)[: datasets.NIETZSCHE_CHARS].encode())

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/nietzsche.txt"
    httpd.shutdown()
    httpd.server_close()


def test_nietzsche_is_downloaded_on_request(at, nietzsche_server, monkeypatch):
    monkeypatch.setenv(datasets.URL_ENV, nietzsche_server)
    at.radio(key="builtin_choice").set_value("Nietzsche (2017 tutorial)")
    at.button(key="builtin_load").click().run()
    assert not at.exception and not at.error
    assert at.session_state["corpus"].stats.chars == datasets.NIETZSCHE_CHARS


def test_no_network_for_nietzsche_gets_a_clear_message(at, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv(datasets.URL_ENV, f"http://127.0.0.1:{port}/nietzsche.txt")
    at.radio(key="builtin_choice").set_value("Nietzsche (2017 tutorial)")
    at.button(key="builtin_load").click().run()
    assert not at.exception
    assert "no network" in at.error[0].value and "Upload the file yourself" in at.error[0].value


def test_a_cyrillic_file_is_read_in_its_script_and_the_encoding_can_be_chosen_by_hand(at):
    russian = "Все счастливые семьи похожи друг на друга, каждая несчастливая семья несчастлива по-своему.\n" * 30
    upload(at, "tolstoy.txt", russian.encode("cp1251"))
    assert not at.exception and not at.error
    assert at.session_state["corpus"].corpus.text == russian
    assert "Windows-1251 (Cyrillic)" in " ".join(i.value for i in at.info)   # the notice names what was read
    at.selectbox(key="corpus_encoding").set_value("cp1252").run()             # "it looks wrong": override
    assert at.session_state["corpus"].corpus.text == russian.encode("cp1251").decode("cp1252")
    at.selectbox(key="corpus_encoding").set_value("utf-8").run()              # not valid UTF-8: said plainly
    assert "not valid utf-8" in at.error[0].value.replace("\\", "")


def test_the_nietzsche_choice_names_the_address_this_server_downloads_from(at, monkeypatch):
    monkeypatch.setenv(datasets.URL_ENV, "http://mirror.example/nietzsche.txt")
    at.run()
    captions = list(at.radio(key="builtin_choice").proto.captions)
    assert "downloaded once from http://mirror.example/nietzsche.txt into a local cache." in captions[1]
    assert datasets.NIETZSCHE_URL not in " ".join(captions)
