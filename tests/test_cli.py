"""Tests for the command line: python -m charlm train | generate | evaluate | info, and its errors.

Each command and each kind of error runs once as a person runs it, `python -m charlm` in a new process.
Starting Python and torch costs seconds per process on this machine, so the variations of one command
(every strategy, option errors) call cli.main() in this process: the function `python -m charlm` runs.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from charlm import checkpoint as ckpt_io
from charlm.arrays import load_npz
from charlm.cli import main
from charlm.decoding import STRATEGIES, DecodeConfig, generate
from charlm.sampling import write_ids
from charlm.train import evaluate

from conftest import PERIODIC_TEXT

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "CHARLM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def charlm(*args, timeout: float = 60) -> subprocess.CompletedProcess:
    """python -m charlm ARGS in a new process."""
    return subprocess.run([sys.executable, "-m", "charlm", *map(str, args)], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def charlm_here(capsys, monkeypatch):
    """cli.main(ARGS) in this process, as a CompletedProcess like charlm()'s."""
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


def assert_clean_error(run: subprocess.CompletedProcess, *words: str):
    """Exit status 2, one line on stderr that starts with "error:" and says what is wrong, no traceback."""
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("error: ")
    for word in words:
        assert word in lines[0]
    assert run.stdout == ""


# --- train ----------------------------------------------------------------------------------------


def test_train_for_an_epoch_writes_a_loadable_checkpoint_and_names_it_on_stdout(text_file, tmp_path):
    out = tmp_path / "cat.pt"
    run = charlm("train", text_file, "--preset", "tiny", "--epochs", "1", "--out", out, "--device", "cpu",
                 "--seed", "1")
    assert run.returncode == 0, run.stderr
    assert run.stdout == f"checkpoint: {out}\n"
    assert "Traceback" not in run.stderr and "Warning" not in run.stderr
    assert "best validation loss" in run.stderr
    assert f"latest (resume from this): {tmp_path / 'cat.last.pt'}" in run.stderr
    saved = ckpt_io.load(out)
    assert saved.preset == "tiny" and saved.train_config["seed"] == 1
    train_chars = len(PERIODIC_TEXT) - round(len(PERIODIC_TEXT) * 0.1)
    assert train_chars <= saved.progress["chars_seen"] < 2 * train_chars
    assert ckpt_io.load(tmp_path / "cat.last.pt").optimizer is not None


# --- generate -------------------------------------------------------------------------------------


def test_generate_prints_only_the_text_and_the_seed_reproduces_it(trained):
    run = charlm("generate", trained.path, "--length", 77, "--seed", 11, "--prime", "the ", "--temperature", "1.3")
    assert run.returncode == 0, run.stderr
    # Another process (this one) with the same seed writes the same text; stdout holds nothing else.
    expected = generate(trained.model, trained.vocab, prime="the ", length=77, seed=11,
                        cfg=DecodeConfig("top-p", temperature=1.3)).texts[0]
    assert run.stdout == expected + "\n"
    assert run.stderr == ""


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_generate_writes_exactly_the_asked_length_with_every_strategy(trained, charlm_here, strategy):
    run = charlm_here("generate", trained.path, "--strategy", strategy, "--length", 77, "--seed", 3,
                      "--temperature", "1.3")
    assert run.returncode == 0, run.stderr
    expected = generate(trained.model, trained.vocab, length=77, seed=3,
                        cfg=DecodeConfig(strategy, temperature=1.3)).texts[0]
    assert run.stdout == expected + "\n" and len(expected) == 77


def test_generate_separates_several_samples(trained, charlm_here):
    run = charlm_here("generate", trained.path, "--strategy", "sample", "--length", 30, "--num-samples", 3,
                      "--seed", 0)
    assert run.returncode == 0
    texts = run.stdout[:-1].split("\n" + "-" * 40 + "\n")
    assert len(texts) == 3 and all(len(text) == 30 for text in texts)


def test_generate_reports_unseen_prime_characters_on_stderr(trained, charlm_here):
    run = charlm_here("generate", trained.path, "--prime", "the zoo", "--length", 10, "--strategy", "greedy")
    assert run.returncode == 0
    assert len(run.stdout) == 11
    assert "'z'" in run.stderr and "left out" in run.stderr


# --- evaluate and info ------------------------------------------------------------------------------


def test_evaluate_prints_one_line_of_loss_bits_and_count(trained, text_file):
    run = charlm("evaluate", trained.path, text_file)
    assert run.returncode == 0, run.stderr
    assert re.fullmatch(r"\d+\.\d{4} nats/char  \d+\.\d{4} bits/char  \d+ chars\n", run.stdout)
    nats, bits, count = re.findall(r"[\d.]+", run.stdout)
    loss, scored = evaluate(trained.model, trained.corpus.split()[1])   # the text's last 10%
    assert nats == f"{loss:.4f}" and int(count) == scored
    assert float(bits) == pytest.approx(float(nats) / 0.6931471805599453, abs=1e-4)


def test_info_describes_the_checkpoint(trained):
    run = charlm("info", trained.path)
    assert run.returncode == 0, run.stderr
    assert "preset: tiny" in run.stdout
    assert "1 x LSTM(128), input embedding (embedding 32)" in run.stdout
    assert f"vocabulary: {len(trained.vocab)} characters" in run.stdout
    assert "trained: 150 steps" in run.stdout
    assert f"best validation loss: {trained.result.best_val_loss:.4f} nats/char" in run.stdout


def test_export_writes_arrays_that_write_the_same_text_as_the_checkpoint(trained, charlm_here, tmp_path):
    out = tmp_path / "model.npz"
    run = charlm_here("export", trained.path, "--out", out)
    assert run.returncode == 0, run.stderr
    assert str(out) in run.stdout
    arrays, chars, info = load_npz(out)
    assert chars == list(trained.vocab.chars) and info["preset"] == "tiny"
    prime = [chars.index(c) for c in "the "]
    ids = write_ids(arrays.step, *arrays.read(prime), 80, DecodeConfig(), np.random.default_rng(4))[0]
    expected = generate(trained.model, trained.vocab, prime="the ", length=80, seed=4).texts[0]
    assert "".join(chars[i] for i in ids) == expected


# --- errors speak to the user -------------------------------------------------------------------


def test_missing_corpus_file_is_a_clean_error(tmp_path):
    assert_clean_error(charlm("train", tmp_path / "nowhere.txt", "--preset", "tiny"), "no such file", "nowhere.txt")


def test_binary_corpus_file_is_a_clean_error(tmp_path):
    path = tmp_path / "paper.txt"
    path.write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 10)
    assert_clean_error(charlm("train", path, "--preset", "tiny"), "PDF")


def test_bad_checkpoint_is_a_clean_error(tmp_path):
    path = tmp_path / "model.pt"
    path.write_text("not a model at all\n")
    assert_clean_error(charlm("generate", path), "not a charlm checkpoint")


def test_bad_strategy_is_a_clean_error(trained):
    assert_clean_error(charlm("generate", trained.path, "--strategy", "nucleus"), "--strategy", "nucleus", "top-p")


@pytest.mark.parametrize("args, words", [
    (["--temperature", "-1"], ["temperature"]),
    (["--top-p", "1.5"], ["top-p"]),
    (["--length", "many"], ["--length", "many"]),
    (["--length", "-5"], ["length"]),
    (["--seed", "-3"], ["seed", "0 or more"]),
])
def test_bad_generate_option_is_a_clean_error(trained, charlm_here, args, words):
    assert_clean_error(charlm_here("generate", trained.path, *args), *words)


def test_evaluate_on_text_with_unseen_characters_is_a_clean_error(trained, charlm_here, tmp_path):
    path = tmp_path / "other.txt"
    path.write_text("Quite another text, with Capitals and digits 0123456789.\n" * 30)
    assert_clean_error(charlm_here("evaluate", trained.path, path), "never saw")


def test_missing_checkpoint_is_a_clean_error(charlm_here, tmp_path):
    assert_clean_error(charlm_here("info", tmp_path / "nowhere.pt"), "no checkpoint file")


def test_resume_without_out_writes_beside_the_resumed_run_not_over_another_model(trained, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    corpus = tmp_path / "cat.txt"
    corpus.write_text(PERIODIC_TEXT, encoding="utf-8")
    resumed = tmp_path / "mine.last.pt"
    resumed.write_bytes(trained.last_path.read_bytes())
    steps_before = ckpt_io.load(resumed).progress["step"]
    assert main(["train", str(corpus), "--resume", str(resumed), "--epochs", "0.2", "--device", "cpu"]) == 0
    assert ckpt_io.load(resumed).progress["step"] > steps_before   # the run went on in its own files
    assert not (tmp_path / "runs").exists()                         # nothing written under the default name
