"""Shared fixtures: texts made in code, small settings, and one tiny model trained once per session."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import charlm  # noqa: F401  (before torch: it caps numpy's BLAS threads, and torch loads numpy)
import pytest
import torch

from charlm.modelfile import checkpoint as ckpt_io
from charlm.config import ModelConfig, TrainConfig
from charlm.text.corpus import Corpus, Vocab, load_corpus
from charlm.train.events import TrainResult
from charlm.nn.model import CharLSTM
from charlm.presets import get_preset
from charlm.train.resume import last_path_for
from charlm.train.trainer import train

# The suite runs tiny models on a machine whose few cores are shared; one thread is the fastest there.
torch.set_num_threads(1)

APP = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")


@pytest.fixture
def app_env(tmp_path, monkeypatch):
    """An app test's surroundings: its own download cache, and one torch thread as in the rest of the suite."""
    monkeypatch.setenv("CHARLM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CHARLM_THREADS", "1")


PERIOD = "the cat sat on the mat. "
PERIODIC_TEXT = PERIOD * 200          # 4,800 characters, 11 distinct

# A small model and run for tests of the training machinery (not of how well it learns): a step takes
# milliseconds. Evaluation and samples are kept short for the same reason.
SMALL_MODEL = dict(hidden_size=32, embed_dim=16)
SMALL_RUN = dict(batch_size=8, seq_len=16, warmup_steps=2, device="cpu", eval_chars=400, sample_chars=20,
                 eval_interval_s=1e9, amp=False)   # fp32: runs compared step for step compute alike (no probe)


def configs(corpus: Corpus, preset: str = "tiny", model: dict | None = None,
            **run) -> tuple[ModelConfig, TrainConfig]:
    """A preset's configs for corpus with the small model and run settings, plus these overrides."""
    chosen = get_preset(preset)
    return (chosen.model_config(len(corpus.vocab), **{**SMALL_MODEL, **(model or {})}),
            chosen.train_config(**{**SMALL_RUN, **run}))


def made_up_text(n_chars: int, seed: int = 0) -> str:
    """Irregular but learnable text: words drawn at random from a small list, in short lines."""
    words = "river stone light garden walks under over slowly bright the a of".split()
    rng = random.Random(seed)
    lines = []
    while sum(len(line) + 1 for line in lines) < n_chars:
        lines.append(" ".join(rng.choice(words) for _ in range(rng.randint(3, 9))) + ".")
    return "\n".join(lines) + "\n"


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


def one_error_line(run, *words: str) -> str:
    """Exit status 2 and one line on stderr starting "error:" that holds each word; no traceback. -> the line."""
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("error: ")
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]
