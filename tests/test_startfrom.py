"""Starting a new run from a trained model: the vocabulary widened, the rows kept, and a head start that shows."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from charlm.modelfile import checkpoint as ckpt_io
from charlm.text.corpus import load_corpus
from charlm.text.datasets import python_docs
from charlm.train.startfrom import start_from
from charlm.train.trainer import train

from helpers import assert_clean_error, configs

SHIPPED = Path(__file__).resolve().parents[1] / "checkpoints" / "demo.safetensors"
WORDS = ("time year people way day man thing woman life child world school state family student group country "
         "problem hand part place case week company system program question work government number night point "
         "home water room mother area money story fact month lot right study book eye job word business issue side "
         "kind head house service friend father power hour game line end member law car city community name").split()
NEW_CHARS = "@#%&$+/"   # none of them is in the shipped model's Nietzsche text


def new_text(n_lines: int = 900, seed: int = 7) -> str:
    """English words the shipped model can spell, in new sentences, with characters it never saw."""
    rng = random.Random(seed)
    lines = []
    for _ in range(n_lines):
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 12)))
        lines.append(words.capitalize() + rng.choice([" @home", " #tag", " 50%", " A&B", " $5", " 1+1", " x/y", ""]) + ".")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def shipped():
    return ckpt_io.load(SHIPPED)


def test_new_characters_are_appended_and_every_learned_row_is_kept(shipped):
    corpus = load_corpus(new_text())
    start = start_from(shipped, corpus, "demo.safetensors")
    known = len(shipped.vocab)
    assert list(start.corpus.vocab.chars[:known]) == shipped.vocab
    assert sorted(start.corpus.vocab.chars[known:]) == sorted(NEW_CHARS)
    assert start.model_cfg.vocab_size == known + len(NEW_CHARS)
    assert start.corpus.vocab.decode(start.corpus.ids) == corpus.text
    for name in ("embed.weight", "head.weight", "head.bias"):
        assert torch.equal(start.weights[name][:known], torch.as_tensor(shipped.state_dict[name]))
    embed = torch.as_tensor(shipped.state_dict["embed.weight"])
    assert torch.allclose(start.weights["embed.weight"][known:], embed.mean(0).expand(len(NEW_CHARS), -1))
    # Each new character's bias gives it about its share of the text under the biases alone.
    bias = start.weights["head.bias"]
    prior = torch.softmax(bias, 0)[known:].numpy()
    counts = np.array([corpus.text.count(c) for c in start.corpus.vocab.chars[known:]])
    assert np.allclose(prior, (counts + 1) / (len(corpus.text) + len(NEW_CHARS)), rtol=0.2)
    assert start.origin["started_from"] == "demo.safetensors" and set(start.origin["new_chars"]) == set(NEW_CHARS)


def test_a_2017_design_model_cannot_take_new_characters_but_can_start_the_same_ones(tmp_path):
    text = new_text(200)
    plain = load_corpus(text.replace("@", "a"))
    model_cfg, train_cfg = configs(plain, preset="seed-2017", model=dict(hidden_size=16), seq_len=8, max_steps=2)
    result = train(plain, model_cfg, train_cfg, preset="seed-2017", out=tmp_path / "w.safetensors")
    window_model = ckpt_io.load(result.best_path)
    with pytest.raises(ValueError, match="2017-design model.*1 new one"):
        start_from(window_model, load_corpus(text), "w.safetensors")
    assert start_from(window_model, plain, "w.safetensors").model_cfg.vocab_size == len(plain.vocab)


def test_the_vocabulary_cap_counts_old_and_new_characters(shipped):
    with pytest.raises(ValueError, match="knows 85 characters and this text brings 7 more: over the cap of 90"):
        start_from(shipped, load_corpus(new_text()), "demo.safetensors", max_vocab=90)


@pytest.mark.slow
def test_twelve_seconds_from_the_shipped_model_beat_twelve_seconds_from_scratch(shipped, tmp_path):
    # Python's documentation: English the shipped model can spell, and symbols ({, *, <, #...) it never saw.
    corpus = load_corpus(python_docs()[:100_000])
    assert len(set(corpus.text) - set(shipped.vocab)) >= 5
    start = start_from(shipped, corpus, "demo.safetensors")
    recipe = ckpt_io.load(SHIPPED).train_config
    from charlm.config import TrainConfig
    cfg = TrainConfig.from_dict(recipe).replace(minutes=0.2, epochs=None, max_steps=None, device="cpu",
                                                eval_interval_s=1e9, sample_chars=0)
    tuned = train(start.corpus, start.model_cfg, cfg, preset="cpu-fast", start=start, out=tmp_path / "t.safetensors")
    from charlm.presets import get_preset
    preset = get_preset("cpu-fast")
    scratch = train(corpus, preset.model_config(len(corpus.vocab)), cfg, preset="cpu-fast",
                    out=tmp_path / "s.safetensors")
    print(f"\n12 s from the shipped model: {tuned.best_val_loss:.4f} nats/char; from scratch: {scratch.best_val_loss:.4f}")
    assert tuned.best_val_loss < scratch.best_val_loss - 0.1
    assert ckpt_io.load(tuned.best_path).info["started_from"] == "demo.safetensors"


@pytest.mark.slow
def test_the_command_line_starts_from_a_model_and_says_so(charlm_here, tmp_path):
    text = tmp_path / "new.txt"
    text.write_text(new_text(300), encoding="utf-8")
    out = tmp_path / "m.safetensors"
    run = charlm_here("train", text, "--init", SHIPPED, "--epochs", "0.05", "--out", out, "--quiet")
    assert run.returncode == 0, run.stderr
    assert "starting from demo.safetensors (cpu-fast, trained on nietzsche.txt" in run.stderr
    assert "7 new characters added" in run.stderr
    info = charlm_here("info", out)
    shipped_val = ckpt_io.load(SHIPPED).best_val_loss   # the shipped model's own figure, as the file records it
    assert f"started from: demo.safetensors (cpu-fast, trained on nietzsche.txt, validation {shipped_val:.4f}" \
        in info.stdout
    resumed = charlm_here("train", text, "--resume", tmp_path / "m.last.pt", "--epochs", "0.02", "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    assert "started from: demo.safetensors" in charlm_here("info", out).stdout   # a resumed run still says so
    assert_clean_error(charlm_here("train", text, "--init", SHIPPED, "--hidden", "64"),
                       "--hidden cannot be used with --init")
    assert_clean_error(charlm_here("train", text, "--init", SHIPPED, "--resume", tmp_path / "m.last.pt"),
                       "--init starts a new run")
