"""The command line given hostile input: a text built to be slow to normalise, encodings that are not text
encodings, odd corpus folders (symlinks out, empty files, FIFOs), crafted corpus caches and crafted resume
files. Each is read, skipped with a note, or refused with one line and exit status 2; never a traceback."""

from __future__ import annotations

import copy
import encodings.aliases
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from charlm.modelfile import checkpoint as ckpt_io
from charlm.train import resume as resume_file
from charlm.cli.main import main

from helpers import made_up_text, one_error_line

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "CHARLM_THREADS": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
QUICK = ["--preset", "tiny", "--hidden", "16", "--embed", "8", "--batch-size", "4", "--seq-len", "16",
         "--device", "cpu", "--fp32", "--save-every", "0"]


def charlm(*args, timeout: float = 120) -> subprocess.CompletedProcess:
    """python -m charlm ARGS in a new process, as a person runs it."""
    return subprocess.run([sys.executable, "-m", "charlm", *map(str, args)], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=timeout)


def in_process(capsys, *args) -> subprocess.CompletedProcess:
    """cli.main(ARGS) in this process (cheaper than a new one), as a CompletedProcess."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CHARLM_THREADS", "1")
        status = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(args, status, out, err)


assert_one_line_error = one_error_line   # exit 2, one 'error:' line holding each word, no traceback


# --- a text that is slow to normalise; encodings ------------------------------------------------------------


def test_the_400_kb_combining_mark_text_is_refused_in_one_line(tmp_path):
    hostile = tmp_path / "marks.txt"
    hostile.write_text("a" + "\u0301" * 100_000 + "\u0316" * 100_000, encoding="utf-8")   # 400 KB
    run = charlm("train", hostile, *QUICK, "--out", tmp_path / "m.safetensors", timeout=60)
    assert_one_line_error(run, "200,000 combining marks in a row", "from character 2", "at most 30")


@pytest.mark.parametrize("name", ["rot13", "base64", "zlib_codec", "hex"])
def test_a_codec_that_is_not_a_text_encoding_is_refused_in_one_line(capsys, tmp_path, name):
    text = tmp_path / "t.txt"
    text.write_text(made_up_text(3_000), encoding="utf-8")
    assert_one_line_error(in_process(capsys, "train", text, "--encoding", name), f"'{name}'",
                          "is not one a text file is saved in")


def test_rot13_from_the_command_line_is_one_line(tmp_path):
    text = tmp_path / "t.txt"
    text.write_text(made_up_text(3_000), encoding="utf-8")
    assert_one_line_error(charlm("train", text, "--encoding", "rot13"), "'rot13' is not one a text file is saved in")


def test_unicode_escape_naming_a_lone_surrogate_is_refused_in_one_line(capsys, tmp_path):
    text = tmp_path / "t.txt"
    text.write_bytes(made_up_text(3_000).encode() + b"\\udc80 and on")
    assert_one_line_error(in_process(capsys, "train", text, "--encoding", "unicode_escape"),
                          "lone surrogate (U+DC80)")


def test_every_encoding_python_knows_is_read_or_refused_in_one_line(capsys, tmp_path):
    # Too short to train on: an encoding that reads it ends in the too-short refusal, so nothing trains.
    text = tmp_path / "short.txt"
    text.write_bytes(b"abc def ghi")
    names = sorted(set(encodings.aliases.aliases.values()) | {"undefined", "punycode", "idna", "unicode_escape",
                                                               "raw_unicode_escape", "utf_7", "hex", "rot_13"})
    for name in names:
        assert_one_line_error(in_process(capsys, "train", text, "--encoding", name))


# --- corpus folders: links out, empty files, FIFOs -----------------------------------------------------------


@pytest.fixture
def folder(tmp_path) -> Path:
    """A corpus folder of two small texts."""
    folder = tmp_path / "books"
    folder.mkdir()
    (folder / "one.txt").write_text(made_up_text(3_000, seed=1), encoding="utf-8")
    (folder / "two.txt").write_text(made_up_text(3_000, seed=2), encoding="utf-8")
    return folder


def train_folder(folder: Path, tmp_path: Path, *more) -> subprocess.CompletedProcess:
    return charlm("train", folder, *QUICK, "--epochs", "0.05", "--out", tmp_path / "m.safetensors", *more)


@pytest.mark.slow
def test_a_link_leading_out_of_a_corpus_folder_is_skipped_with_one_warning_naming_it(folder, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET " * 1_000, encoding="utf-8")
    (folder / "innocent.txt").symlink_to(secret)
    (folder / "also.txt").symlink_to(secret)
    run = train_folder(folder, tmp_path)
    assert run.returncode == 0, run.stderr
    warnings = [line for line in run.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [f"warning: skipped 2 links leading outside the folder: also.txt, innocent.txt in the "
                        f"folder {folder}"]
    from charlm.modelfile.checkpoint import load
    assert "S" not in load(tmp_path / "m.safetensors").vocab   # nothing of the secret was read


def test_a_link_within_the_folder_is_read(folder, tmp_path):
    from charlm.text.encoded import found_files
    (folder / "again.txt").symlink_to(folder / "one.txt")
    files, notes = found_files([folder])
    assert sorted(f.resolve().name for f in files) == ["one.txt", "two.txt"] and notes == []   # the same file, once


@pytest.mark.slow
def test_an_empty_file_in_a_corpus_folder_is_skipped_with_a_note(folder, tmp_path):
    (folder / "empty.txt").write_bytes(b"")
    run = train_folder(folder, tmp_path)
    assert run.returncode == 0, run.stderr
    assert f"note: skipped 1 empty file: empty.txt in the folder {folder}" in run.stderr.splitlines()


@pytest.mark.slow
def test_a_fifo_given_as_the_corpus_is_named_as_one_and_not_read(tmp_path):
    pipe = tmp_path / "pipe.txt"
    os.mkfifo(pipe)   # no writer: opening it to read would wait for ever
    run = charlm("train", pipe, *QUICK, timeout=60)
    assert_one_line_error(run, f"{pipe} is a FIFO (named pipe), not a file")
    assert "no such file" not in run.stderr


def test_a_fifo_in_a_corpus_folder_is_skipped_with_a_note_naming_it(folder, tmp_path):
    from charlm.text.encoded import found_files
    os.mkfifo(folder / "pipe.txt")
    files, notes = found_files([folder])
    assert [f.name for f in files] == ["one.txt", "two.txt"]
    assert notes == [("note", f"skipped what is not a file: pipe.txt (a FIFO (named pipe)) in the folder {folder}")]


@pytest.mark.parametrize("command", ["evaluate", "score"])
def test_a_fifo_given_to_evaluate_or_score_is_named_as_one(capsys, tmp_path, command):
    pipe = tmp_path / "pipe.txt"
    os.mkfifo(pipe)
    run = in_process(capsys, command, ROOT / "checkpoints" / "python-docs.safetensors", pipe)
    assert_one_line_error(run, f"{pipe} is a FIFO (named pipe), not a file")


# --- crafted resume files -----------------------------------------------------------------------------------


def _wrong_optimizer(state):
    state.optimizer["state"][0]["exp_avg"] = torch.zeros(3, 3)


def _wrong_carry(state):
    state.carry = [torch.zeros(1, 4, 5), torch.zeros(1, 4, 5)]   # hidden 5, not the model's 16


def _wrong_average(state):
    state.average = {name: torch.zeros(2) for name in state.state_dict}


def _garbage_random_state(state):
    state.rng["batches"] = torch.zeros(7, dtype=torch.uint8)


def _missing_moment(state):
    del state.optimizer["state"][1]["exp_avg_sq"]


CRAFTS = {"optimizer": _wrong_optimizer, "carry": _wrong_carry, "average": _wrong_average,
          "random": _garbage_random_state, "moment": _missing_moment}


@pytest.fixture(scope="module")
def resume_run(tmp_path_factory):
    """A short run's text and resume file, and each crafted copy of the file."""
    folder = tmp_path_factory.mktemp("resume")
    text = folder / "words.txt"
    text.write_text(made_up_text(6_000), encoding="utf-8")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CHARLM_THREADS", "1")
        assert main(["train", str(text), *QUICK, "--epochs", "0.2", "--out", str(folder / "m.safetensors")]) == 0
    good = resume_file.load(folder / "m.last.pt")
    assert good.carry and good.rng and good.optimizer["state"]   # what the crafts change is there to change
    crafted = {}
    for name, craft in CRAFTS.items():
        state = copy.deepcopy(good)
        craft(state)
        crafted[name] = resume_file.save(state, folder / f"{name}.last.pt")
    return text, crafted


@pytest.mark.slow
@pytest.mark.parametrize("craft", CRAFTS)
def test_a_crafted_resume_file_is_refused_in_one_line(resume_run, tmp_path, craft):
    text, crafted = resume_run
    run = charlm("train", text, "--resume", crafted[craft], "--epochs", "0.05", "--out", tmp_path / "m.safetensors")
    assert_one_line_error(run, "the resume file does not fit its own model", "start the run afresh")
    assert not (tmp_path / "m.safetensors").exists()


@pytest.mark.slow
def test_a_crafted_resume_file_under_torchrun_is_refused_once_by_rank_zero(resume_run, tmp_path):
    text, crafted = resume_run
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "charlm",
               "train", str(text), "--resume", str(crafted["moment"]), "--epochs", "0.05", "--device", "cpu",
               "--out", str(tmp_path / "m.safetensors")]
    run = subprocess.run(command, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=240)
    assert run.returncode != 0
    errors = [line for line in run.stderr.splitlines() if "does not fit its own model" in line]
    assert errors == ["error: the resume file does not fit its own model (its optimizer's exp_avg_sq for weight 1 "
                      "is missing or the wrong shape): it is damaged or was altered; start the run afresh without "
                      "--resume, or resume from the .last.pt file the run itself wrote"]
    # torchrun reports a process that failed with a traceback of its own; charlm's code is in none
    assert "charlm/" not in run.stderr.replace(str(tmp_path), "")
