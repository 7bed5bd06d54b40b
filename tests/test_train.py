"""Tests for charlm.train: it learns, it reports, it stops, it resumes the same curve, it survives a NaN."""

import math
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from charlm import checkpoint as ckpt_io
from charlm import train as train_module
from charlm.corpus import load_corpus
from charlm.model import CharLSTM, ModelConfig
from charlm.train import TrainConfig, evaluate, last_path_for, train

from conftest import SMALL_MODEL, SMALL_RUN, made_up_text


def unigram_entropy(text: str) -> float:
    """Nats per character of the best model that ignores context."""
    counts = np.array(list(Counter(text).values()), dtype=np.float64)
    probs = counts / counts.sum()
    return float(-(probs * np.log(probs)).sum())


def small_train(corpus, preset="tiny", **overrides):
    """train() with the small model and run settings from conftest, plus the run's own keyword arguments."""
    run = {key: overrides.pop(key) for key in list(overrides) if key in TrainConfig.__dataclass_fields__}
    return train(corpus, preset, model_overrides=SMALL_MODEL, train_overrides={**SMALL_RUN, **run}, **overrides)


def random_model(vocab_size: int, dropout: float = 0.0) -> CharLSTM:
    torch.manual_seed(0)
    return CharLSTM(ModelConfig(vocab_size=vocab_size, hidden_size=16, num_layers=1, embed_dim=8, dropout=dropout))


# --- it learns -----------------------------------------------------------------------------------


def test_periodic_text_is_learned_to_near_zero_validation_loss(trained):
    # "the cat sat on the mat. " * 200 with the tiny preset for 150 steps (the session fixture).
    assert trained.result.steps == 150
    assert trained.result.final_val_loss < 0.2
    assert trained.result.final_val_loss < unigram_entropy(trained.corpus.text) / 10


def test_seed_2017_preset_learns_below_the_unigram_entropy(tmp_path):
    text = "abcde" * 400                      # period 5: the last character tells the next one
    corpus = load_corpus(text)
    # The preset's model and recipe (LSTM(256), scaled index input, one target per window, Adam, batch 128)
    # with two changes so the test takes seconds: 10-character windows instead of 100 (a step costs a tenth)
    # and lr 1e-2 instead of 1e-3 (50 steps instead of several hundred). With these it learns at every seed tried.
    result = train(corpus, "seed-2017", out=tmp_path / "2017.pt",
                   train_overrides=dict(seq_len=10, lr=1e-2, max_steps=50, device="cpu", sample_chars=20))
    assert result.final_val_loss < 0.5 * unigram_entropy(text)
    saved = ckpt_io.load(tmp_path / "2017.pt")
    assert saved.window == 10                 # it is scored and writes with the window it was trained on
    assert saved.model_config["input_mode"] == "scaled_index"
    assert saved.train_config["objective"] == "last" and saved.train_config["optimizer"] == "adam"


# --- evaluate() --------------------------------------------------------------------------------


def test_evaluate_returns_the_mean_cross_entropy_and_the_count_of_scored_chars():
    model = random_model(7).eval()
    ids = np.random.default_rng(0).integers(0, 7, 300).astype(np.uint8)
    loss, count = evaluate(model, ids, batch_size=1)
    # One stream carrying its state through the whole text: every character after the first is scored.
    with torch.no_grad():
        logits, _ = model(torch.from_numpy(ids[:-1].astype(np.int64))[None])
        expected = F.cross_entropy(logits[0], torch.from_numpy(ids[1:].astype(np.int64))).item()
    assert count == 299
    assert loss == pytest.approx(expected, rel=1e-5)


def test_evaluate_counts_what_its_streams_score():
    model = random_model(7)
    ids = np.random.default_rng(0).integers(0, 7, 1000).astype(np.uint8)
    assert evaluate(model, ids, batch_size=32)[1] == 32 * (999 // 32)
    assert evaluate(model, ids, max_chars=100, batch_size=4)[1] == 100


def test_evaluate_with_a_window_scores_each_char_from_the_window_before_it():
    model = random_model(7).eval()
    ids = np.random.default_rng(1).integers(0, 7, 40).astype(np.uint8)
    window = 5
    loss, count = evaluate(model, ids, window=window)
    losses = []
    with torch.no_grad():
        for t in range(window, len(ids)):
            logits, _ = model(torch.from_numpy(ids[t - window:t].astype(np.int64))[None])
            losses.append(F.cross_entropy(logits[:, -1], torch.tensor([int(ids[t])])).item())
    assert count == len(ids) - window
    assert loss == pytest.approx(float(np.mean(losses)), rel=1e-5)
    assert evaluate(model, ids, window=window, max_chars=10)[1] == 10


def test_evaluate_runs_in_eval_mode_and_restores_training_mode():
    model = random_model(7, dropout=0.5)
    ids = np.random.default_rng(0).integers(0, 7, 200).astype(np.uint8)
    model.train()
    first = evaluate(model, ids)
    assert model.training
    assert evaluate(model, ids) == first          # dropout was off: the same numbers twice
    model.eval()
    evaluate(model, ids)
    assert not model.training


def test_evaluate_refuses_a_text_too_short_to_score():
    with pytest.raises(ValueError, match="too short"):
        evaluate(random_model(7), np.array([1, 2, 3], dtype=np.uint8), window=5)


# --- budgets, progress and stopping -------------------------------------------------------------


def test_max_steps_budget_ends_at_that_step(periodic_corpus):
    events = []
    result = small_train(periodic_corpus, max_steps=7, on_progress=events.append)
    assert result.steps == 7 and not result.stopped
    assert [e.step for e in events if e.kind == "step"] == list(range(1, 8))
    assert events[-1].kind == "done"


def test_epochs_budget_ends_after_that_many_passes(periodic_corpus):
    events = []
    result = small_train(periodic_corpus, epochs=2.0, seq_len=64, on_progress=events.append)
    train_chars = len(periodic_corpus.split()[0])
    steps = [e for e in events if e.kind == "step"]
    assert result.chars_seen >= 2 * train_chars
    assert steps[-2].chars_seen < 2 * train_chars        # it stopped at the first step that completed the budget
    assert steps[-1].epoch == pytest.approx(result.chars_seen / train_chars)
    assert steps[-1].fraction == 1.0


def test_minutes_budget_ends_near_its_time(periodic_corpus):
    start = time.monotonic()
    result = small_train(periodic_corpus, minutes=0.05)
    wall = time.monotonic() - start
    assert not result.stopped
    assert result.elapsed_s >= 3.0
    assert wall < 20.0


def test_no_budget_means_one_epoch(periodic_corpus):
    result = small_train(periodic_corpus, seq_len=64)
    train_chars = len(periodic_corpus.split()[0])
    assert train_chars <= result.chars_seen < 2 * train_chars


def test_progress_events_have_the_documented_fields_and_plausible_values(periodic_corpus, tmp_path):
    events = []
    small_train(periodic_corpus, out=tmp_path / "m.pt", max_steps=12, eval_interval_s=0.0, on_progress=events.append)
    steps = [e for e in events if e.kind == "step"]
    evals = [e for e in events if e.kind == "eval"]
    assert {e.kind for e in events} == {"step", "eval", "checkpoint", "done"}
    assert events[-1].kind == "done"
    assert [e.step for e in steps] == list(range(1, 13))
    fractions = [e.fraction for e in steps]
    assert all(0.0 <= f <= 1.0 for f in fractions) and fractions == sorted(fractions) and fractions[-1] == 1.0
    for e in steps:
        assert e.chars_per_sec > 0
        assert math.isfinite(e.train_loss) and e.lr > 0
        assert e.epoch == pytest.approx(e.chars_seen / len(periodic_corpus.split()[0]))
        if e.fraction < 1.0:
            # The remaining budget at the pace so far (a few seconds here, not ages).
            assert e.eta_s == pytest.approx(e.elapsed_s * (1 - e.fraction) / e.fraction, rel=1e-6)
            assert 0 < e.eta_s < 60
        else:
            assert e.eta_s is None
    assert [e.chars_seen for e in steps] == sorted(set(e.chars_seen for e in steps))
    assert [e.elapsed_s for e in events] == sorted(e.elapsed_s for e in events)
    assert len(evals) == 12
    for e in evals:
        assert e.val_loss > 0 and e.val_bits == pytest.approx(e.val_loss / math.log(2))
        assert isinstance(e.sample, str) and len(e.sample) == SMALL_RUN["sample_chars"]
    written = {e.path for e in events if e.kind == "checkpoint"}
    assert written == {str(tmp_path / "m.pt"), str(tmp_path / "m.last.pt")}
    assert all(Path(path).exists() for path in written)


def test_stop_flag_is_honoured_within_one_step(periodic_corpus, tmp_path):
    stop = threading.Event()
    events = []

    def on_progress(event):
        events.append(event)
        if event.kind == "step" and event.step == 3:
            stop.set()

    result = small_train(periodic_corpus, out=tmp_path / "m.pt", max_steps=1000, on_progress=on_progress, stop=stop)
    assert result.stopped and result.steps in (3, 4)
    assert result.message == "stopped on request"
    assert events[-1].kind == "stopped"
    last = ckpt_io.load(result.last_path, for_resume=True)
    assert result.last_path == last_path_for(tmp_path / "m.pt")
    assert last.progress["step"] == result.steps and last.optimizer is not None
    assert result.history[-1]["step"] == result.steps     # a stopped run is still evaluated


def test_too_short_a_text_for_the_sequence_length_is_refused(periodic_corpus):
    with pytest.raises(ValueError, match="shorter than one sequence"):
        small_train(periodic_corpus, seq_len=10_000, max_steps=1)


@pytest.mark.parametrize("bad, words", [
    (dict(seq_len=0), "sequence length"),
    (dict(lr=0.0), "learning rate"),
    (dict(optimizer="sgd"), "optimizer"),
    (dict(objective="first"), "objective"),
    (dict(epochs=0.0), "epochs"),
    (dict(minutes=-1.0), "minutes"),
    (dict(max_steps=0), "max_steps"),
    (dict(seed=-1), "seed must be 0 or more"),
])
def test_train_config_refuses_bad_values_with_a_message(bad, words):
    with pytest.raises(ValueError, match=words):
        TrainConfig(**bad)


# --- best checkpoint -------------------------------------------------------------------------------


def test_best_checkpoint_holds_the_lowest_validation_loss(periodic_corpus, tmp_path, monkeypatch):
    # Validation loss that gets worse after step 6 (the real loss plus 5 nats), so the best is not the last.
    real_evaluate = train_module.evaluate
    calls = [0]

    def worse_after_step_6(*args, **kwargs):
        calls[0] += 1
        loss, count = real_evaluate(*args, **kwargs)
        return loss + (5.0 if calls[0] > 6 else 0.0), count

    monkeypatch.setattr(train_module, "evaluate", worse_after_step_6)
    result = small_train(periodic_corpus, out=tmp_path / "m.pt", max_steps=12, eval_interval_s=0.0)
    val_losses = [row["val_loss"] for row in result.history]
    assert [row["step"] for row in result.history] == list(range(1, 13))
    assert result.best_val_loss == min(val_losses) == val_losses[5]
    best = ckpt_io.load(result.best_path)
    assert best.best_val_loss == min(val_losses)
    assert best.progress["step"] == 6 and best.history == result.history[:6]
    # The weights in the file are the ones that scored that loss, not the last ones.
    _, val_ids = periodic_corpus.split()
    rescored, _ = real_evaluate(best.build_model(), val_ids, SMALL_RUN["eval_chars"])
    assert rescored == pytest.approx(best.best_val_loss, rel=1e-5)
    last = ckpt_io.load(result.last_path, for_resume=True)
    assert not np.array_equal(last.state_dict["head.weight"], best.state_dict["head.weight"])


# --- divergence guard ------------------------------------------------------------------------------


def nan_loss_on_calls(monkeypatch, calls):
    """Make training's cross-entropy (the one under autograd) NaN on the given call numbers (1-based)."""
    real = F.cross_entropy
    count = [0]

    def cross_entropy(*args, **kwargs):
        loss = real(*args, **kwargs)
        if torch.is_grad_enabled():
            count[0] += 1
            if calls == "all" or count[0] in calls:
                return loss * float("nan")
        return loss

    monkeypatch.setattr(F, "cross_entropy", cross_entropy)


def test_a_nan_loss_is_rolled_back_with_a_warning_and_training_goes_on(periodic_corpus, tmp_path, monkeypatch):
    nan_loss_on_calls(monkeypatch, {4})
    events = []
    result = small_train(periodic_corpus, out=tmp_path / "m.pt", max_steps=8, on_progress=events.append)
    warnings = [e for e in events if e.kind == "warning"]
    assert len(warnings) == 1
    assert "rolled back to step 0" in warnings[0].message and "halved the learning rate" in warnings[0].message
    assert not result.stopped and result.steps == 8
    assert math.isfinite(result.final_val_loss)
    for name, tensor in ckpt_io.load(result.last_path, for_resume=True).state_dict.items():
        assert np.isfinite(tensor).all(), name
    # After the rollback the steps start again from the good state, at half the learning rate.
    steps = [e for e in events if e.kind == "step"]
    assert [e.step for e in steps] == [1, 2, 3] + list(range(1, 9))
    assert steps[3].lr == pytest.approx(steps[0].lr / 2)


def test_a_loss_that_stays_nan_stops_the_run_with_a_message(periodic_corpus, tmp_path, monkeypatch):
    nan_loss_on_calls(monkeypatch, "all")
    events = []
    result = small_train(periodic_corpus, out=tmp_path / "m.pt", max_steps=8, on_progress=events.append)
    assert result.stopped and "diverged" in result.message
    assert len([e for e in events if e.kind == "warning"]) == 3
    assert events[-1].kind == "stopped"
    for tensor in ckpt_io.load(result.last_path, for_resume=True).state_dict.values():
        assert np.isfinite(tensor).all()


# --- resume -----------------------------------------------------------------------------------------


def assert_same_weights(a: dict, b: dict):
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.parametrize("preset", ["tiny", "seed-2017"])
def test_resume_continues_the_same_curve(periodic_corpus, tmp_path, preset):
    # tiny: contiguous streams with carried state, crossing epochs (new random offsets); dropout on, so the
    # torch RNG must be restored too. seed-2017: random windows drawn from the batch generator, its dropout.
    settings = dict(max_steps=20, seq_len=64, seed=5)
    model = {**SMALL_MODEL, "dropout": 0.2}
    whole = train(periodic_corpus, preset, out=tmp_path / "whole.pt", model_overrides=model,
                  train_overrides={**SMALL_RUN, **settings})
    stop = threading.Event()
    half = train(periodic_corpus, preset, out=tmp_path / "half.pt", model_overrides=model,
                 train_overrides={**SMALL_RUN, **settings}, stop=stop,
                 on_progress=lambda e: e.kind == "step" and e.step == 10 and stop.set())
    assert half.stopped and half.steps == 10
    saved = ckpt_io.load(half.last_path, for_resume=True)
    assert saved.optimizer and saved.rng and saved.progress["position"]
    assert (saved.carry is not None) == (preset == "tiny")
    resumed = train(periodic_corpus, out=tmp_path / "resumed.pt", resume=half.last_path)
    assert resumed.steps == whole.steps == 20
    assert resumed.chars_seen == whole.chars_seen
    assert resumed.final_val_loss == pytest.approx(whole.final_val_loss, rel=1e-5)
    assert resumed.history[-1]["train_loss"] is not None
    end_whole = ckpt_io.load(whole.last_path, for_resume=True)
    end_resumed = ckpt_io.load(resumed.last_path, for_resume=True)
    assert_same_weights(end_resumed.state_dict, end_whole.state_dict)
    assert end_resumed.progress["position"] == end_whole.progress["position"]
    if preset == "tiny":
        torch.testing.assert_close(end_resumed.carry[0], end_whole.carry[0], rtol=1e-5, atol=1e-6)


def test_resume_with_a_larger_step_budget_matches_one_long_run(periodic_corpus, tmp_path):
    # A constant learning rate: with the cosine schedule the first half of a 10-step run has other rates
    # than the first half of a 20-step run, by design.
    settings = dict(SMALL_RUN, seq_len=64, seed=2, schedule="constant")
    whole = train(periodic_corpus, "tiny", out=tmp_path / "whole.pt", model_overrides=SMALL_MODEL,
                  train_overrides={**settings, "max_steps": 20})
    first = train(periodic_corpus, "tiny", out=tmp_path / "first.pt", model_overrides=SMALL_MODEL,
                  train_overrides={**settings, "max_steps": 10})
    resumed = train(periodic_corpus, out=tmp_path / "resumed.pt", resume=first.last_path,
                    train_overrides={"max_steps": 20})
    assert resumed.steps == 20 and resumed.chars_seen == whole.chars_seen
    assert resumed.final_val_loss == pytest.approx(whole.final_val_loss, rel=1e-5)
    assert_same_weights(ckpt_io.load(resumed.last_path, for_resume=True).state_dict,
                        ckpt_io.load(whole.last_path, for_resume=True).state_dict)
    # The resumed run keeps the first run's history and adds to it.
    assert resumed.history[: len(first.history)] == first.history
    assert resumed.history[-1]["step"] == 20


def test_resume_on_a_text_with_other_characters_is_refused(trained):
    other = load_corpus(made_up_text(2_000))
    with pytest.raises(ValueError, match="other characters"):
        train(other, resume=trained.last_path)
