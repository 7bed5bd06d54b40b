"""Shared fixtures: one tiny model trained once per session, the command line in this process, app visitors.
Plain helpers (texts, settings, polls) are in helpers.py; the browser tests' own are in browser/."""

from __future__ import annotations

import functools
import subprocess
from dataclasses import dataclass
from pathlib import Path

import charlm  # noqa: F401  (before torch: it caps numpy's BLAS threads, and torch loads numpy)
import pytest
import torch
from streamlit.components.v2 import manifest_scanner

from charlm.cli.main import main
from charlm.modelfile import checkpoint as ckpt_io
from charlm.text.corpus import Corpus, Vocab, load_corpus
from charlm.train.events import TrainResult
from charlm.nn.model import CharLSTM
from charlm.presets import get_preset
from charlm.train.resume import last_path_for
from charlm.train.trainer import train

from helpers import PERIODIC_TEXT, new_visitor, stop_every_job

# The suite runs tiny models on a machine whose few cores are shared; one thread is the fastest there.
torch.set_num_threads(1)

# Every new AppTest looks through every installed package's metadata for Streamlit components (Streamlit 1.67's
# BidiComponentManager): three quarters of a short AppTest's time here, to find the same none each time. The
# packages do not change while the suite runs, so the scan is done once. (A browser test's server scans as usual.)
manifest_scanner.scan_component_manifests = functools.cache(manifest_scanner.scan_component_manifests)


@pytest.fixture
def app_env(tmp_path, monkeypatch):
    """An app test's surroundings: its own download cache, and one torch thread as in the rest of the suite."""
    monkeypatch.setenv("CHARLM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CHARLM_THREADS", "1")


@pytest.fixture(scope="session")
def periodic_corpus() -> Corpus:
    return load_corpus(PERIODIC_TEXT, name="cat.txt")


@dataclass
class Trained:
    corpus: Corpus
    result: TrainResult
    path: Path            # the best checkpoint
    last_path: Path       # the latest one, for resume
    checkpoint: ckpt_io.Checkpoint
    model: CharLSTM
    vocab: Vocab


@pytest.fixture(scope="session")
def trained(tmp_path_factory, periodic_corpus) -> Trained:
    """The "tiny" preset trained 150 steps on the periodic text (a few seconds): it predicts it almost perfectly."""
    out = tmp_path_factory.mktemp("trained") / "cat.pt"
    tiny = get_preset("tiny")
    result = train(periodic_corpus, tiny.model_config(len(periodic_corpus.vocab)),
                   tiny.train_config(max_steps=150, device="cpu", seed=0, sample_chars=50), preset="tiny", out=out)
    checkpoint = ckpt_io.load(out)
    return Trained(periodic_corpus, result, out, last_path_for(out), checkpoint, CharLSTM.from_checkpoint(checkpoint, "cpu"),
                   checkpoint.get_vocab())



# --- the command line in this process -------------------------------------------------------------

@pytest.fixture
def charlm_here(capsys, monkeypatch):
    """cli.main(ARGS) in this process, as a CompletedProcess like helpers.charlm()'s."""
    monkeypatch.setenv("CHARLM_THREADS", "1")      # the commands set the thread count process-wide

    def run(*args) -> subprocess.CompletedProcess:
        try:
            status = main([str(a) for a in args])
        except SystemExit as exit:        # argparse's errors
            status = exit.code
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(args, status, out, err)
    return run


@pytest.fixture(scope="module")
def text_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("texts") / "cat.txt"
    path.write_text(PERIODIC_TEXT, encoding="utf-8")
    return path


# --- app visitors (AppTest) -----------------------------------------------------------------------

@pytest.fixture
def visitors(tmp_path, monkeypatch):
    """Make visitors; their jobs are stopped afterwards so no test leaves a training thread behind."""
    monkeypatch.setenv("CHARLM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CHARLM_THREADS", "1")   # as the rest of the suite; the app would share cores
    yield from _visitors_stopped_after()


@pytest.fixture
def visitor(app_env):
    """Make visitors in the app's test settings (app_env); every job they started, on any page, is stopped after."""
    yield from _visitors_stopped_after()


def _visitors_stopped_after():
    """A fixture's body: yields a maker of new visitors, then stops every job any of them started."""
    made = []

    def make():
        at = new_visitor()
        made.append(at)
        return at

    yield make
    stop_every_job(made)


@pytest.fixture
def downloads(monkeypatch):
    """Bytes handed to the browser for download buttons, by file name."""
    import streamlit.runtime.memory_media_file_storage as media_storage   # here: only app tests load streamlit
    saved = {}
    original = media_storage.MemoryMediaFileStorage.load_and_get_id

    def keep(self, path_or_data, mimetype, kind, filename=None):
        if filename:
            saved[filename] = path_or_data
        return original(self, path_or_data, mimetype, kind, filename)

    monkeypatch.setattr(media_storage.MemoryMediaFileStorage, "load_and_get_id", keep)
    return saved
