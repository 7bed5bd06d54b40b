"""The command line's model and recipe flags, its encodings, samples at each evaluation, and written files."""

from __future__ import annotations

import pytest

from charlm.modelfile import checkpoint as ckpt_io

from helpers import assert_clean_error

SMALL = ["--preset", "tiny", "--hidden", "24", "--embed", "8", "--seq-len", "16", "--batch-size", "8"]


def test_the_architecture_and_recipe_flags_shape_the_model_and_are_kept_in_it(charlm_here, text_file, tmp_path):
    out = tmp_path / "m.safetensors"
    run = charlm_here("train", text_file, *SMALL, "--layers", "2", "--dropout", "0.25", "--lr", "0.02",
                      "--epochs", "0.2", "--out", out)
    assert run.returncode == 0, run.stderr
    ckpt = ckpt_io.load(out)
    assert (ckpt.model_config["num_layers"], ckpt.model_config["hidden_size"], ckpt.model_config["embed_dim"],
            ckpt.model_config["dropout"]) == (2, 24, 8, 0.25)
    assert (ckpt.train_config["seq_len"], ckpt.train_config["batch_size"], ckpt.train_config["lr"]) == (16, 8, 0.02)


def test_each_evaluation_prints_what_the_model_writes(charlm_here, text_file, tmp_path):
    run = charlm_here("train", text_file, *SMALL, "--epochs", "0.2", "--out", tmp_path / "m.safetensors", "--seed", "3")
    samples = [row["sample"] for row in ckpt_io.load(tmp_path / "m.safetensors").history]
    assert samples and samples[-1]
    assert "    " + samples[-1].replace("\n", "\n    ") in run.stderr   # indented under its progress line
    quiet = charlm_here("train", text_file, *SMALL, "--epochs", "0.2", "--out", tmp_path / "q.safetensors", "--quiet")
    assert "\n    " not in quiet.stderr


@pytest.mark.parametrize("flags, words", [
    (["--hidden", "0"], ["--hidden: hidden_size must be at least 1"]),
    (["--dropout", "1.5"], ["--dropout: dropout must be in [0, 1)"]),
    (["--batch-size", "-3"], ["--batch-size:", "batch_size"]),
    (["--lr", "nan"], ["--lr:", "lr"]),
    (["--weight-drop", "1"], ["--weight-drop: weight_drop must be in [0, 1)"]),
])
def test_a_bad_flag_value_is_one_line_naming_the_flag(charlm_here, text_file, tmp_path, flags, words):
    assert_clean_error(charlm_here("train", text_file, "--preset", "tiny", *flags, "--out", tmp_path / "m.pt"), *words)


def test_fp32_and_weight_drop_reach_the_run_and_the_arithmetic_is_said(charlm_here, text_file, tmp_path):
    out = tmp_path / "m.safetensors"
    cpu_fast = ["--preset", "cpu-fast", *SMALL[2:]]   # the default's recipe (its average of the weights), small
    run = charlm_here("train", text_file, *cpu_fast, "--weight-drop", "0.3", "--fp32", "--epochs", "0.1", "--out", out)
    assert run.returncode == 0, run.stderr
    ckpt = ckpt_io.load(out)
    assert ckpt.model_config["weight_drop"] == 0.3
    assert ckpt.train_config["amp"] is False and ckpt.info["arithmetic"] == "fp32"
    assert "computing in fp32 (bf16 turned off)" in run.stderr
    assert " chars/s fp32 ETA" in run.stderr   # on every progress line
    info = charlm_here("info", out).stdout
    assert ", weight drop 0.3, " in info and " on cpu in fp32 (corpus " in info
    trained = ckpt.history[-1]["val_loss_trained"]
    assert f"weights: their moving average from 50% of the run on (the weights as trained scored {trained:.4f}" in info
    assert_clean_error(charlm_here("train", text_file, "--resume", tmp_path / "m.last.pt", "--fp32"),
                       "--fp32 cannot change a resumed run")


def test_embed_is_refused_for_the_2017_design_which_has_no_embedding(charlm_here, text_file, tmp_path):
    assert_clean_error(charlm_here("train", text_file, "--preset", "seed-2017", "--embed", "8"),
                       "--embed does not apply to seed-2017")


def test_a_resumed_run_refuses_a_new_shape(charlm_here, text_file, tmp_path):
    out = tmp_path / "m.safetensors"
    assert charlm_here("train", text_file, *SMALL, "--epochs", "0.1", "--out", out).returncode == 0
    assert_clean_error(charlm_here("train", text_file, "--resume", tmp_path / "m.last.pt", "--hidden", "32"),
                       "--hidden cannot change a resumed run")


def test_encoding_overrides_the_guess_on_train_and_score(charlm_here, text_file, tmp_path):
    greek = tmp_path / "greek.txt"
    greek.write_bytes(("Ο Σωκράτης ήταν φιλόσοφος και η ζωή είναι ωραία. " * 60).encode("cp1253"))
    out = tmp_path / "g.safetensors"
    assert charlm_here("train", greek, *SMALL, "--epochs", "0.1", "--out", out).returncode == 0
    assert "Σ" in ckpt_io.load(out).vocab                                  # found by itself
    assert charlm_here("train", greek, *SMALL, "--epochs", "0.1", "--out", out, "--encoding", "cp1252").returncode == 0
    assert "Σ" not in ckpt_io.load(out).vocab and "Ó" in ckpt_io.load(out).vocab   # read as the person said
    assert_clean_error(charlm_here("train", greek, "--encoding", "utf-8"), "not valid utf-8")
    scored = charlm_here("score", out, greek, "--encoding", "cp1252")
    # The first line is the mean; then the characters from the second on: " ", then "Σ", read as cp1252's "Ó".
    assert scored.returncode == 0 and scored.stdout.splitlines()[2].startswith("Ó\t")


def test_generate_writes_to_a_file_with_the_prime_when_asked(charlm_here, text_file, tmp_path):
    model = tmp_path / "m.safetensors"
    assert charlm_here("train", text_file, *SMALL, "--epochs", "0.2", "--out", model).returncode == 0
    shown = charlm_here("generate", model, "--prime", "the ", "--length", "40", "--seed", "5", "--include-prime")
    written = tmp_path / "out.txt"
    saved = charlm_here("generate", model, "--prime", "the ", "--length", "40", "--seed", "5", "--include-prime",
                        "--out", written)
    assert saved.returncode == 0 and saved.stdout == ""
    assert written.read_text(encoding="utf-8") == shown.stdout
    assert shown.stdout.startswith("the ") and len(shown.stdout) == len("the ") + 40 + 1
    bare = charlm_here("generate", model, "--prime", "the ", "--length", "40", "--seed", "5")
    assert "the " + bare.stdout == shown.stdout
    assert_clean_error(charlm_here("generate", model, "--out", tmp_path), "is a folder")


def test_the_train_command_offers_each_knob_of_the_presets_table_and_splits_them_by_config():
    from charlm.cli.main import build_parser
    from charlm.config import MODEL_FIELDS, TrainConfig
    from charlm.presets import KNOBS, PRESETS, split
    train = build_parser().parse_args(["train", "x.txt"])
    assert all(getattr(train, knob.flag) is None for knob in KNOBS)   # each is an option, unset by default
    shape, recipe = split({knob.field: 1 for knob in KNOBS})
    assert set(shape) <= set(MODEL_FIELDS) and set(recipe) <= set(TrainConfig.__dataclass_fields__)
    assert len(shape) + len(recipe) == len(KNOBS)
    embed = next(knob for knob in KNOBS if knob.field == "embed_dim")
    assert PRESETS["tiny"].takes(embed) and not PRESETS["seed-2017"].takes(embed)
