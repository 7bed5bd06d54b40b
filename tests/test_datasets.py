"""Tests for charlm.text.datasets: the offline Python docs, and the Nietzsche download against a local server."""

import functools
import http.server
import socket
import threading
from pathlib import Path

import pytest

from charlm.text import datasets
from charlm.text.corpus import load_corpus
from charlm.text.read import MIN_CHARS

SHARED_NIETZSCHE = Path(__file__).resolve().parents[2] / "shared" / "data" / "nietzsche.txt"


def text_of(n_chars: int) -> bytes:
    line = "Supposing that Truth is a woman--what then? Is there not ground for suspecting.\n"
    return (line * (n_chars // len(line) + 1))[:n_chars].encode("utf-8")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A local HTTP server on 127.0.0.1 serving a right-length and a wrong-length 'Nietzsche'."""
    root = tmp_path_factory.mktemp("site")
    (root / "nietzsche.txt").write_bytes(text_of(datasets.NIETZSCHE_CHARS))
    (root / "short.txt").write_bytes(text_of(datasets.NIETZSCHE_CHARS - 1000))
    if SHARED_NIETZSCHE.is_file():
        (root / "real.txt").write_bytes(SHARED_NIETZSCHE.read_bytes())

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/nietzsche.txt"   # nothing listens there any more


def test_python_docs_are_always_there_and_make_a_corpus():
    text = datasets.python_docs()
    assert len(text) > 100 * MIN_CHARS
    corpus = load_corpus(text, name="python-docs.txt")
    assert len(corpus.vocab) > 50


def test_nietzsche_is_downloaded_checked_and_cached(server, tmp_path):
    data = datasets.nietzsche(tmp_path, url=f"{server}/nietzsche.txt")
    assert data == text_of(datasets.NIETZSCHE_CHARS)
    assert (tmp_path / datasets.NIETZSCHE_FILE).read_bytes() == data
    assert not list(tmp_path.glob("*.tmp"))   # written atomically, nothing left behind


def test_a_verified_cache_is_used_without_the_network(server, tmp_path):
    datasets.nietzsche(tmp_path, url=f"{server}/nietzsche.txt")
    again = datasets.nietzsche(tmp_path, url=closed_port_url())
    assert len(again) == datasets.NIETZSCHE_CHARS


def test_the_address_comes_from_the_environment_when_set(server, tmp_path, monkeypatch):
    monkeypatch.setenv(datasets.URL_ENV, f"{server}/nietzsche.txt")
    assert len(datasets.nietzsche(tmp_path)) == datasets.NIETZSCHE_CHARS


def test_a_download_of_the_wrong_length_is_refused_and_not_cached(server, tmp_path):
    with pytest.raises(datasets.DatasetError, match="not the expected Nietzsche text.*599,901 characters"):
        datasets.nietzsche(tmp_path, url=f"{server}/short.txt")
    assert not (tmp_path / datasets.NIETZSCHE_FILE).exists()


def test_a_damaged_cache_is_downloaded_again(server, tmp_path):
    (tmp_path / datasets.NIETZSCHE_FILE).write_bytes(b"half a file")
    data = datasets.nietzsche(tmp_path, url=f"{server}/nietzsche.txt")
    assert len(data) == datasets.NIETZSCHE_CHARS


def test_no_network_gives_a_clear_message(tmp_path):
    with pytest.raises(datasets.DatasetError, match=r"Could not download .*\(no network\?.*Upload the file yourself"):
        datasets.nietzsche(tmp_path, url=closed_port_url(), timeout=5)


def test_a_missing_file_on_the_server_says_what_the_server_answered(server, tmp_path):
    with pytest.raises(datasets.DatasetError, match="404"):
        datasets.nietzsche(tmp_path, url=f"{server}/gone.txt")


@pytest.mark.skipif(not SHARED_NIETZSCHE.is_file(), reason="the real Nietzsche text is not beside this checkout")
def test_the_real_tutorial_text_passes_the_check(server, tmp_path):
    data = datasets.nietzsche(tmp_path, url=f"{server}/real.txt")
    assert len(load_corpus(data).text) == datasets.NIETZSCHE_CHARS
