"""Tests for the command line: python -m charlm train | generate | evaluate | info, and its errors.

Each command and each kind of error runs once as a person runs it, `python -m charlm` in a new process.
Starting Python and torch costs seconds per process on this machine, so the variations of one command
(every strategy, option errors) call cli.main() in this process: the function `python -m charlm` runs.
"""

import argparse
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from charlm.modelfile import checkpoint as ckpt_io
from charlm.train import resume as resume_file
from charlm.engine import sampling
from charlm.cli.main import build_parser, main
from charlm.engine.decoding import STRATEGIES, DecodeConfig, generate
from charlm.train.evaluate import evaluate
from charlm.presets import PRESETS
from charlm.units import format_duration

from helpers import ENV, PERIODIC_TEXT, ROOT, assert_clean_error, charlm

# test_crash_safety takes these from here; they live in helpers.py and conftest.py (charlm_here) now.


# --- train ----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_train_for_an_epoch_writes_a_loadable_checkpoint_and_names_it_on_stdout(text_file, tmp_path):
    out = tmp_path / "cat.pt"
    run = charlm("train", text_file, "--preset", "tiny", "--epochs", "1", "--out", out, "--device", "cpu",
                 "--seed", "1")
    assert run.returncode == 0, run.stderr
    assert run.stdout == f"checkpoint: {out}\n"
    assert "Traceback" not in run.stderr and "Warning" not in run.stderr
    assert run.stderr.startswith("training tiny on cat.txt (4,800 characters, 11 distinct) on ")
    assert "best validation loss" in run.stderr
    assert f"latest (resume from this): {tmp_path / 'cat.last.pt'}" in run.stderr
    saved = ckpt_io.load(out)
    assert saved.preset == "tiny" and saved.train_config["seed"] == 1
    train_chars = len(PERIODIC_TEXT) - round(len(PERIODIC_TEXT) * 0.1)
    assert train_chars <= saved.progress["chars_seen"] < 2 * train_chars
    assert resume_file.load(tmp_path / "cat.last.pt").optimizer is not None


class TrainingBegan(Exception):
    """Raised by a stand-in for charlm.train.trainer.train: the command got as far as training."""


def training_begins(*args, **kwargs):
    raise TrainingBegan


@pytest.mark.parametrize("out, words", [
    ("a-file/model.pt", ["cannot write the checkpoint in", "a-file", "choose another --out"]),
    (".", ["is a folder", "--out"]),
])
def test_train_refuses_an_out_it_cannot_write_before_training(text_file, charlm_here, tmp_path, monkeypatch,
                                                               out, words):
    monkeypatch.setattr("charlm.train.trainer.train", training_begins)
    (tmp_path / "a-file").write_text("a file where a folder would have to be\n")
    assert_clean_error(charlm_here("train", text_file, "--preset", "tiny", "--out", tmp_path / out), *words)


def test_train_removes_the_temporaries_a_killed_run_left_and_nothing_else(text_file, tmp_path, monkeypatch):
    stale = ["cat.pt.k3j2h1a0.tmp", "cat.last.pt.a8b7c6d5.tmp"]             # checkpoint.save's NAME.<random>.tmp
    kept = ["cat.pt", "dog.pt.k3j2h1a0.tmp", "notes.tmp", "cat.pt.tmp.keep"]   # someone else's, or not temporaries
    for name in stale + kept:
        (tmp_path / name).write_text("x")
    seen = {}

    def train(*args, **kwargs):
        seen["files"] = sorted(path.name for path in tmp_path.iterdir())
        raise TrainingBegan

    monkeypatch.setattr("charlm.train.trainer.train", train)
    with pytest.raises(TrainingBegan):
        main(["train", str(text_file), "--preset", "tiny", "--out", str(tmp_path / "cat.pt")])
    assert seen["files"] == sorted(kept)


def test_refused_resume_prints_its_one_error_line_and_no_header(trained, charlm_here, tmp_path):
    other = tmp_path / "other.txt"
    other.write_text("Quite another text, with Capitals and digits 0123456789.\n" * 30)
    run = charlm_here("train", other, "--resume", trained.last_path, "--out", tmp_path / "other.pt")
    assert_clean_error(run, "other characters", "same corpus")


def test_a_seed_for_a_resumed_run_is_refused_before_training(trained, charlm_here, text_file, tmp_path, monkeypatch):
    monkeypatch.setattr("charlm.train.trainer.train", training_begins)
    run = charlm_here("train", text_file, "--resume", trained.last_path, "--seed", "3", "--out", tmp_path / "m.pt")
    assert_clean_error(run, "--seed", "resumed run")


def test_resumed_run_is_announced_with_its_own_preset(trained, charlm_here, tmp_path):
    corpus = tmp_path / "cat.txt"
    corpus.write_text(PERIODIC_TEXT, encoding="utf-8")
    resumed = tmp_path / "mine.last.pt"
    resumed.write_bytes(trained.last_path.read_bytes())
    run = charlm_here("train", corpus, "--resume", resumed, "--epochs", "0.05", "--device", "cpu")   # --preset: cpu-fast
    assert run.returncode == 0, run.stderr
    assert run.stderr.startswith("training tiny on cat.txt ")


@pytest.mark.slow
def test_sigterm_stops_training_cleanly_and_the_run_still_saves(text_file, tmp_path):
    out = tmp_path / "cat.pt"
    command = [sys.executable, "-m", "charlm", "train", str(text_file), "--preset", "tiny", "--minutes", "30",
               "--out", str(out), "--device", "cpu"]
    with subprocess.Popen(command, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as proc:
        header = proc.stderr.readline()     # said once training has begun
        proc.send_signal(signal.SIGTERM)
        stderr, stdout = proc.stderr.read(), proc.stdout.read()
        status = proc.wait(timeout=120)
    assert header.startswith("training tiny on cat.txt")
    assert status == 0, stderr
    assert "Traceback" not in stderr and "stopped on request" in stderr
    assert stdout == f"checkpoint: {out}\n"
    assert ckpt_io.load(tmp_path / "cat.last.pt").progress["step"] >= 1


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


def choices_of(command: str, option: str):
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    return next(a for a in commands[command]._actions if a.dest == option).choices


def test_the_choices_of_strategy_preset_and_device_are_the_engines_own():
    assert choices_of("generate", "strategy") is sampling.STRATEGIES       # one list, not a copy to keep in step
    assert list(choices_of("train", "preset")) == list(PRESETS)
    assert tuple(choices_of("train", "device")) == ("auto", "cpu", "cuda", "mps")


@pytest.mark.parametrize("seconds, words", [
    (None, "–"), (float("nan"), "–"), (0.4, "under a second"), (42.4, "42 s"), (187, "3 min 07 s"),
    (7500, "2 h 05 min"),
])
def test_durations_read_as_words_for_people(seconds, words):
    assert format_duration(seconds) == words


def test_generate_caps_default_to_a_million_characters_and_64_beams():
    args = build_parser().parse_args(["generate", "model.pt"])
    assert (args.max_chars, args.max_beam_width) == (1_000_000, 64)


@pytest.mark.parametrize("args, words", [
    (["--num-samples", 1000, "--length", 1001], ["1,000 samples x 1,001 characters = 1,001,000 characters",
                                                 "cap of 1,000,000", "--max-chars N"]),
    (["--num-samples", 3, "--length", 40, "--max-chars", 119], ["3 samples x 40 characters", "cap of 119",
                                                                "--max-chars N"]),
    (["--strategy", "beam", "--beam-width", 10, "--length", 20, "--max-chars", 199], ["10 beams x 20 characters",
                                                                                      "--max-chars N"]),
    (["--strategy", "beam", "--beam-width", 65, "--length", 5], ["65 beams", "cap of 64", "--max-beam-width N"]),
    (["--strategy", "beam", "--num-samples", 65, "--length", 5], ["65 beams", "cap of 64", "--max-beam-width N"]),
])
def test_generate_refuses_work_over_its_caps_and_names_the_flag_that_raises_them(trained, charlm_here, args, words):
    assert_clean_error(charlm_here("generate", trained.path, *args), *words)


@pytest.mark.parametrize("args, texts", [
    (["--num-samples", 3, "--length", 40, "--max-chars", 120], 3),
    (["--strategy", "beam", "--beam-width", 65, "--max-beam-width", 65, "--length", 40], 1),
])
def test_generate_caps_can_be_raised_on_ones_own_machine(trained, charlm_here, args, texts):
    run = charlm_here("generate", trained.path, *args)
    assert run.returncode == 0, run.stderr
    assert [len(text) for text in run.stdout[:-1].split("\n" + "-" * 40 + "\n")] == [40] * texts


def test_generate_into_a_pipe_closed_early_stops_quietly(trained):
    """`python -m charlm generate ... | head -c 10`: no error line, no traceback at exit."""
    command = [sys.executable, "-m", "charlm", "generate", str(trained.path), "--length", "200000"]
    with subprocess.Popen(command, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        first = proc.stdout.read(10)
        proc.stdout.close()   # far more than a pipe holds (64 KiB) is still to come, so a write meets the closed end
        stderr = proc.stderr.read()
        status = proc.wait(timeout=60)
    assert len(first) == 10
    assert stderr == b""
    assert status == 0


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
    assert bits == f"{loss / 0.6931471805599453:.4f}"   # the same loss in bits, rounded once


def test_info_describes_the_checkpoint(trained):
    run = charlm("info", trained.path)
    assert run.returncode == 0, run.stderr
    assert "preset: tiny" in run.stdout
    assert "1 x LSTM(128), input embedding (embedding 32)" in run.stdout
    assert f"vocabulary: {len(trained.vocab)} characters" in run.stdout
    assert "trained: 150 steps" in run.stdout
    assert f"best validation loss: {trained.result.best_val_loss:.4f} nats/char" in run.stdout


def test_info_counts_parameters_from_the_file_without_building_the_model(trained, charlm_here, monkeypatch):
    def build(*args, **kwargs):
        raise AssertionError("info built the model (a hostile file's config could ask for gigabytes)")

    monkeypatch.setattr("charlm.nn.model.CharLSTM", build)
    run = charlm_here("info", trained.path)
    assert run.returncode == 0, run.stderr
    assert f", {trained.model.num_parameters():,} parameters\n" in run.stdout


def test_export_turns_a_checkpoint_of_earlier_versions_into_a_model_file(charlm_here, tmp_path):
    legacy = Path(__file__).parent / "data" / "legacy-v1.pt"    # written by charlm before model files
    out = tmp_path / "model.safetensors"
    run = charlm_here("export", legacy, "--out", out)
    assert run.returncode == 0, run.stderr
    assert str(out) in run.stdout
    assert out.read_bytes()[8:9] == b"{"                       # safetensors: a length, then a JSON header
    before, after = ckpt_io.load(legacy), ckpt_io.load(out)
    assert after.vocab == before.vocab and after.preset == before.preset == "tiny"
    for name, weights in before.state_dict.items():
        np.testing.assert_array_equal(after.state_dict[name], weights)
    written = [charlm_here("generate", path, "--prime", "the ", "--length", "60", "--seed", "4").stdout
               for path in (legacy, out)]
    assert written[0] == written[1] and written[0].startswith("mat. the cat")   # it learnt the text


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
    assert_clean_error(charlm("generate", path), "is not a charlm model file")


def test_bad_strategy_is_a_clean_error(trained):
    assert_clean_error(charlm("generate", trained.path, "--strategy", "nucleus"), "--strategy", "nucleus", "top-p")


@pytest.mark.parametrize("args, words", [
    (["--temperature", "-1"], ["temperature"]),
    (["--top-p", "1.5"], ["top-p"]),
    (["--length", "many"], ["--length", "many"]),
    (["--length", "-5"], ["--length", "0 or more", "-5"]),
    (["--num-samples", "0"], ["--num-samples", "at least 1", "0"]),
    (["--num-samples", "-2"], ["--num-samples", "at least 1", "-2"]),
    (["--seed", "-3"], ["seed", "0 or more"]),
    (["--temperature", "nan"], ["temperature", "finite number", "nan"]),
    (["--temperature", "inf"], ["temperature", "finite number", "inf"]),
    (["--top-p", "nan"], ["top-p", "finite number", "nan"]),
    (["--min-p", "nan"], ["min-p", "finite number", "nan"]),
])
def test_bad_generate_option_is_a_clean_error(trained, charlm_here, args, words):
    assert_clean_error(charlm_here("generate", trained.path, *args), *words)


@pytest.mark.parametrize("args, words", [
    (["--num-samples", "0"], ["--num-samples"]),
    (["--length", "2000000"], ["--max-chars"]),
    (["--temperature", "nan"], ["temperature", "finite"]),
])
def test_generate_options_are_checked_before_the_checkpoint_is_read(charlm_here, tmp_path, args, words):
    assert_clean_error(charlm_here("generate", tmp_path / "nowhere.pt", *args), *words)


def test_evaluate_on_text_with_unseen_characters_is_a_clean_error(trained, charlm_here, tmp_path):
    path = tmp_path / "other.txt"
    path.write_text("Quite another text, with Capitals and digits 0123456789.\n" * 30)
    assert_clean_error(charlm_here("evaluate", trained.path, path), "never saw")


def test_missing_checkpoint_is_a_clean_error(charlm_here, tmp_path):
    assert_clean_error(charlm_here("info", tmp_path / "nowhere.pt"), "no model file at")


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


@pytest.mark.parametrize("bug", [KeyError("n_layers"), ValueError("a plain ValueError: ours, not the user's")])
def test_a_bug_leaves_the_cli_with_its_traceback_not_as_a_one_line_error(text_file, monkeypatch, bug):
    from charlm.cli import main as cli_main

    def broken(*args, **kwargs):
        raise bug
    monkeypatch.setattr(cli_main, "train_command", broken)
    with pytest.raises(type(bug)) as raised:
        main(["train", str(text_file), "--preset", "tiny"])
    assert raised.value is bug


def test_a_bug_in_a_cli_process_exits_1_with_a_traceback(tmp_path):
    run = subprocess.run([sys.executable, "-c", "import charlm.cli.main as m, sys\n"
                          "def broken(*a, **k): raise KeyError('n_layers')\n"
                          "m.train_command = broken\nsys.exit(m.main(sys.argv[1:]))", "train", str(tmp_path / "x.txt")],
                         cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and "Traceback" in run.stderr and "KeyError: 'n_layers'" in run.stderr
