"""Built-in corpora: the Python reference docs (always there, offline) and the 2017 tutorial's Nietzsche text."""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path

from charlm.errors import UserError
from charlm.files import write_atomically
from charlm.text.read import MIN_CHARS, CorpusError, decode_bytes

NIETZSCHE_URL = "https://s3.amazonaws.com/text-datasets/nietzsche.txt"  # the 2017 tutorial's own address
NIETZSCHE_CHARS = 600_901   # characters after decoding and newline/NFC normalisation (the file is 600,918 bytes)
NIETZSCHE_FILE = "nietzsche.txt"
URL_ENV = "CHARLM_NIETZSCHE_URL"   # tests point the download at a local server
_MAX_DOWNLOAD_BYTES = 4 * NIETZSCHE_CHARS   # anything much bigger is not the file we want


class DatasetError(UserError):
    """A built-in corpus could not be provided; the message says why and what to do instead."""


def python_docs() -> str:
    """The Python reference documentation's topics (pydoc_data.topics), shipped with every Python."""
    try:
        from pydoc_data.topics import topics
    except ImportError:   # some distributions strip pydoc_data
        raise DatasetError("This Python has no pydoc_data module, so its documentation is not available. "
                           "Upload or paste a text instead.") from None
    text = "\n\n".join(topics[name].strip() for name in sorted(topics))
    if len(text) < MIN_CHARS:
        raise DatasetError("This Python's documentation is too short to train on. Upload or paste a text instead.")
    return text + "\n"


def nietzsche(cache_dir: str | Path, url: str | None = None, timeout: float = 20.0) -> bytes:
    """The Nietzsche text's bytes: from the cache when a verified copy is there, else downloaded and checked.

    Raises DatasetError when there is no network, the server refuses, or the file is not the expected text.
    """
    cache = Path(cache_dir).expanduser() / NIETZSCHE_FILE
    if cache.is_file():
        data = cache.read_bytes()
        if _problem(data) is None:
            return data
        cache.unlink(missing_ok=True)   # a damaged cache is fetched again
    url = url or nietzsche_url()
    data = _download(url, timeout)
    problem = _problem(data)
    if problem:
        raise DatasetError(f"The download from {url} is not the expected Nietzsche text: {problem}. "
                           "Try again later, or upload the file yourself.")
    _write_atomically(cache, data)
    return data


def nietzsche_url() -> str:
    """Where the Nietzsche text comes from on this server: CHARLM_NIETZSCHE_URL when set, else the tutorial's."""
    return os.environ.get(URL_ENV) or NIETZSCHE_URL


def _download(url: str, timeout: float) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            data = response.read(_MAX_DOWNLOAD_BYTES + 1)
    except urllib.error.HTTPError as err:
        raise DatasetError(f"Could not download {url}: the server answered {err.code} {err.reason}. "
                           "Upload the file yourself instead.") from None
    except (urllib.error.URLError, OSError, ValueError) as err:   # no route, DNS, refused, timeout, bad URL
        reason = getattr(err, "reason", err)
        raise DatasetError(f"Could not download {url} (no network? {reason}). "
                           "Upload the file yourself instead.") from None
    if len(data) > _MAX_DOWNLOAD_BYTES:
        raise DatasetError(f"The download from {url} is far larger than the Nietzsche text; it was not used. "
                           "Upload the file yourself instead.")
    return data


def _problem(data: bytes) -> str | None:
    """What is wrong with a download or cached copy, or None when it is the expected text."""
    try:
        text, _, _ = decode_bytes(data)
    except CorpusError as err:
        return str(err)
    if len(text) != NIETZSCHE_CHARS:
        return f"it has {len(text):,} characters, not {NIETZSCHE_CHARS:,} (an incomplete or different file)"
    return None


def _write_atomically(path: Path, data: bytes) -> None:
    try:
        write_atomically(path, data)
    except OSError:
        pass   # a read-only cache only costs a download next time; the text itself is fine
