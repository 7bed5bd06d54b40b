"""Tests for `python -m charlm score CHECKPOINT FILE`: the mean on the first line, then one line per character
with its surprise, escaped where a character would break the line; errors as one clean line."""

import math
from pathlib import Path

import numpy as np
import pytest

from charlm.modelfile import format as modelfile
from charlm.engine.arrays import ArrayLSTM
from charlm.engine.scoring import score_text

from helpers import assert_clean_error, charlm

SHIPPED = Path(__file__).resolve().parents[1] / "checkpoints" / "demo.safetensors"
# Line breaks and quotes the shipped model knows, and a tab and an accent it never saw.
TEXT = 'Whoever fights "monsters" should take care.\nThat\tis all; café (2 words).\n'


def unescape(field: str) -> str:
    return field.encode("ascii", "backslashreplace").decode("unicode_escape")


def parse(stdout: str) -> tuple[float, list[tuple[str, float]]]:
    first, *rest = stdout.split("\n")[:-1]
    pairs = [line.split("\t") for line in rest]
    assert all(len(pair) == 2 for pair in pairs), rest
    return float(first), [(unescape(char), float(value)) for char, value in pairs]


def test_score_prints_the_mean_then_each_characters_surprise(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text(TEXT, encoding="utf-8")
    run = charlm("score", SHIPPED, path)
    assert run.returncode == 0, run.stderr
    mean, lines = parse(run.stdout)
    assert "".join(char for char, _ in lines) == TEXT[1:]          # one line per character from the second
    values = np.array([value for _, value in lines])
    unseen = [i for i, (char, _) in enumerate(lines) if char in "\té"]
    assert len(unseen) == 2 and np.isnan(values[unseen]).all()      # not scored, and said so
    assert mean == pytest.approx(np.nanmean(values), abs=1e-4)     # both rounded to 4 places
    read = modelfile.read(SHIPPED)
    engine = ArrayLSTM.from_weights(read.config.to_dict(), read.weights, read.window)
    expected = score_text(engine, read.vocab, TEXT).surprise
    np.testing.assert_allclose(values, expected, atol=6e-5)
    assert "never saw" in run.stderr and "nats/char" in run.stderr


def test_characters_that_would_break_a_line_are_escaped(tmp_path, charlm_here):
    path = tmp_path / "odd.txt"
    path.write_text("a\\b\tc\nd\u00a0e\x0bf", encoding="utf-8")
    run = charlm_here("score", SHIPPED, path)
    assert run.returncode == 0, run.stderr
    chars = [line.split("\t")[0] for line in run.stdout.splitlines()[1:]]
    assert chars == ["\\\\", "b", "\\t", "c", "\\n", "d", "\\u00a0", "e", "\\u000b", "f"]
    unseen = [math.isnan(float(line.split("\t")[1])) for line in run.stdout.splitlines()[1:]]
    assert unseen == [char in ("\\\\", "\\t", "\\u00a0", "\\u000b") for char in chars]   # the model knows none of them


def test_the_help_says_how_the_lines_are_written(charlm_here):
    run = charlm_here("score", "--help")
    assert run.returncode == 0
    for words in ("first line is the mean", "nats", "\\n", "\\t", "\\\\", "\\uXXXX", "nan"):
        assert words in run.stdout


@pytest.mark.parametrize("content, words", [(None, "no such file"), (b"%PDF-1.4 \x00\x01", "PDF"),
                                            ("x", "at least two"), ("\t\t\n", "no text"),
                                            ("\u4e2d\u6587\u4e2d\u6587", "none of the characters")])
def test_a_file_that_cannot_be_scored_is_a_clean_error(tmp_path, charlm_here, content, words):
    path = tmp_path / "text.txt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content, encoding="utf-8")
    assert_clean_error(charlm_here("score", SHIPPED, path), words)


def test_a_file_over_the_cap_is_refused_before_it_is_scored(tmp_path, charlm_here):
    path = tmp_path / "long.txt"
    path.write_text("the cat sat. " * 100, encoding="utf-8")
    assert_clean_error(charlm_here("score", SHIPPED, path, "--max-chars", "500"), "--max-chars")


def test_a_checkpoint_that_is_not_a_model_is_a_clean_error(tmp_path, charlm_here):
    path, bad = tmp_path / "text.txt", tmp_path / "bad.safetensors"
    path.write_text("some text", encoding="utf-8")
    bad.write_bytes(b"not a model")
    assert_clean_error(charlm_here("score", bad, path), "not a charlm model file")
