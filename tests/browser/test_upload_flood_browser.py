"""A script floods Streamlit's upload endpoint of a real `streamlit run` server, speaking its protocol (no browser).

It opens sessions over the websocket as a page would, asks for upload URLs as the frontend does, and PUTs
45 MB files: to ids it made up, and past the budgets of app/uploads.py. The server's resident memory is read
from /proc before and after.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
import requests
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.web.server.starlette.starlette_app_utils import generate_xsrf_token_string
from websockets.sync.client import connect

from .browsing import streamlit_server

FILE_BYTES = 45 * 1024 * 1024         # under config.toml's maxUploadSize (50 MiB)
SERVER_BUDGET_MB = 4 * 50             # app/uploads.py: a session holds 2 x maxUploadSize, the server 4 x
NOISE_MB = 60                         # what the server's memory may move by for reasons of its own


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc")


class Session:
    """One page session, as a script holds it: its websocket, its id, and the XSRF pair a page has."""

    def __init__(self, url: str, stack: contextlib.ExitStack):
        self.url = url
        self.ws = stack.enter_context(connect(url.replace("http://", "ws://") + "/_stcore/stream",
                                              subprotocols=["streamlit"], max_size=None))
        rerun = BackMsg()
        rerun.rerun_script.query_string = ""
        self.ws.send(rerun.SerializeToString())
        self.id = self._next("new_session").new_session.initialize.session_id
        self._next("script_finished")   # the app's first run is done: its memory is in the baseline
        self.xsrf = generate_xsrf_token_string()
        self.http = requests.Session()
        self.http.cookies.set("_streamlit_xsrf", self.xsrf)

    def _next(self, kind: str) -> ForwardMsg:
        while True:
            msg = ForwardMsg()
            msg.ParseFromString(self.ws.recv(timeout=120))
            if msg.WhichOneof("type") == kind:
                return msg

    def issued_ids(self, count: int) -> list[str]:
        """Ids the server issues when the page asks for upload URLs (the frontend does before each upload)."""
        ask = BackMsg()
        ask.file_urls_request.request_id = "flood"
        ask.file_urls_request.session_id = self.id
        ask.file_urls_request.file_names.extend(f"f{i}.bin" for i in range(count))
        self.ws.send(ask.SerializeToString())
        return [url.file_id for url in self._next("file_urls_response").file_urls_response.file_urls]

    def put(self, file_id: str, nbytes: int = FILE_BYTES) -> int:
        response = self.http.put(f"{self.url}/_stcore/upload_file/{self.id}/{file_id}",
                                 files={"file": ("flood.bin", bytes(nbytes), "application/octet-stream")},
                                 headers={"X-Xsrftoken": self.xsrf}, timeout=120)
        return response.status_code

    def close(self) -> None:
        self.ws.close()


@pytest.fixture(scope="module")
def flood_server(tmp_path_factory):
    with streamlit_server(tmp_path_factory.mktemp("flood-server")) as served:
        yield served


@contextlib.contextmanager
def sessions(url: str, count: int):
    with contextlib.ExitStack() as stack:
        yield [Session(url, stack) for _ in range(count)]


def test_files_under_made_up_ids_are_refused_and_the_server_keeps_none(flood_server):
    url, process = flood_server
    with sessions(url, 1) as (page,):
        before = rss_mb(process.pid)
        statuses = [page.put(f"made-up-{i}") for i in range(8)]
        growth = rss_mb(process.pid) - before
    print(f"\nserver memory grew {growth:.0f} MB over 8 x 45 MB under made-up ids")
    assert statuses == [403] * 8
    assert growth < NOISE_MB


def test_issued_files_past_the_session_and_server_budgets_are_refused_and_memory_stays_within(flood_server):
    url, process = flood_server
    with sessions(url, 4) as (a, b, c, d):
        before = rss_mb(process.pid)
        # A session may hold two 45 MB files (100 MiB), all sessions together four (200 MiB).
        assert [a.put(file_id) for file_id in a.issued_ids(3)] == [204, 204, 413]
        assert [b.put(file_id) for file_id in b.issued_ids(2)] == [204, 204]
        assert [c.put(file_id) for file_id in c.issued_ids(1)] == [413]
        growth = rss_mb(process.pid) - before
        print(f"\nserver memory grew {growth:.0f} MB holding four 45 MB files")
        assert growth < SERVER_BUDGET_MB * 1.05 + NOISE_MB   # MiB to MB
        # A closed tab's files are dropped: its share of the budget is free again.
        a.close()
        assert [d.put(file_id) for file_id in d.issued_ids(1)] == [204]
