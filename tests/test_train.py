"""Tests for charlm.train.trainer and its parts: presets and configs, evaluation, the Trainer's decisions; it learns,
it reports, it stops, it resumes the same curve, it survives a NaN."""

import math
import threading
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from charlm.modelfile import checkpoint as ckpt_io
from charlm.train import resume as resume_file
from charlm.train import trainer as train_module
from charlm.config import TRAIN_FIELDS, ModelConfig, TrainConfig
from charlm.text.corpus import load_corpus
from charlm.train.estimate import estimate
from charlm.train.evaluate import evaluate
from charlm.nn.model import CharLSTM
from charlm.train.optim import lr_at
from charlm.presets import PRESETS, get_preset
from charlm.train.resume import Resume, last_path_for
from charlm.train.trainer import DIVERGED, MAX_ROLLBACKS, Trainer, train

from helpers import SMALL_RUN, configs, made_up_text


def unigram_entropy(text: str) -> float:
    """Nats per character of the best model that ignores context."""
    counts = np.array(list(Counter(text).values()), dtype=np.float64)
    probs = counts / counts.sum()
    return float(-(probs * np.log(probs)).sum())


def small_train(corpus, preset="tiny", **kwargs):
    """train() with the small model and run settings from conftest, plus training settings and train()'s own."""
    run = {key: kwargs.pop(key) for key in list(kwargs) if key in TRAIN_FIELDS}
    return train(corpus, *configs(corpus, preset, **run), preset=preset, **kwargs)


def random_model(vocab_size: int, dropout: float = 0.0) -> CharLSTM:
    torch.manual_seed(0)
    return CharLSTM(ModelConfig(vocab_size=vocab_size, hidden_size=16, num_layers=1, embed_dim=8, dropout=dropout))


# --- it learns -----------------------------------------------------------------------------------


def test_periodic_text_is_learned_to_near_zero_validation_loss(trained):
    # "the cat sat on the mat. " * 200 with the tiny preset for 150 steps (the session fixture).
    assert trained.result.steps == 150
    assert trained.result.final_val_loss < 0.2
    assert trained.result.final_val_loss < unigram_entropy(trained.corpus.text) / 10


@pytest.mark.slow   # 12 s of real training
def test_seed_2017_preset_learns_below_the_unigram_entropy(tmp_path):
    text = "abcde" * 400                      # period 5: the last character tells the next one
    corpus = load_corpus(text)
    # The preset's model and recipe (LSTM(256), scaled index input, one target per window, Adam, batch 128)
    # with two changes so the test takes seconds: 10-character windows instead of 100 (a step costs a tenth)
    # and lr 1e-2 instead of 1e-3 (50 steps instead of several hundred). With these it learns at every seed tried.
    preset = get_preset("seed-2017")
    result = train(corpus, preset.model_config(len(corpus.vocab)),
                   preset.train_config(seq_len=10, lr=1e-2, max_steps=50, device="cpu", sample_chars=20),
                   preset="seed-2017", out=tmp_path / "2017.pt")
    assert result.final_val_loss < 0.5 * unigram_entropy(text)
    saved = ckpt_io.load(tmp_path / "2017.pt")
    assert saved.window == 10                 # it is scored and writes with the window it was trained on
    assert saved.model_config["input_mode"] == "scaled_index"
    assert saved.train_config["objective"] == "last" and saved.train_config["optimizer"] == "adam"
    assert saved.preset == "seed-2017" and saved.train_config["rereads_window"] is True


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


def test_minutes_budget_ends_at_the_first_step_after_its_time(periodic_corpus):
    clock, events = FakeClock(), []

    def on_progress(event):   # each step takes 0.7 s on the run's clock: the 3 s budget is spent by the fifth
        events.append(event)
        if event.kind == "step":
            clock.now += 0.7

    result = Trainer(periodic_corpus, *configs(periodic_corpus, minutes=0.05), clock=clock,
                     on_progress=on_progress).run()
    steps = [e for e in events if e.kind == "step"]
    assert not result.stopped and result.steps == len(steps) == 5
    assert [e.elapsed_s for e in steps] == pytest.approx([0.0, 0.7, 1.4, 2.1, 2.8])   # it trained until the time
    assert all(e.fraction < 1.0 for e in steps)                                          # was up ...
    assert result.elapsed_s == pytest.approx(3.5)
    assert events[-1].kind == "done" and events[-1].fraction == 1.0                      # ... and not a step more


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
            # The remaining budget at the pace so far.
            assert e.eta_s == pytest.approx(e.elapsed_s * (1 - e.fraction) / e.fraction, rel=1e-6)
            assert e.eta_s > 0
        else:
            assert e.eta_s is None
    assert [e.chars_seen for e in steps] == sorted(set(e.chars_seen for e in steps))
    assert [e.elapsed_s for e in events] == sorted(e.elapsed_s for e in events)
    assert [e.step for e in evals] == list(range(13))   # the untrained model at step 0 too
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
    last = resume_file.load(result.last_path)
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


# --- presets and configs -------------------------------------------------------------------------


def test_a_preset_makes_configs_with_overrides_and_keeps_the_rest_of_its_recipe():
    tiny = PRESETS["tiny"]
    model = tiny.model_config(40, hidden_size=64)
    assert model == ModelConfig(vocab_size=40, hidden_size=64, num_layers=1, embed_dim=32, dropout=0.0)
    recipe = tiny.train_config(minutes=2, seed=3)
    assert (recipe.minutes, recipe.seed) == (2.0, 3)
    assert (recipe.seq_len, recipe.batch_size, recipe.lr) == (64, 32, 1e-2)      # the preset's, not the defaults
    assert tiny.train_config() == tiny.train and tiny.train.minutes is None       # the preset leaves the budget


def test_the_2017_preset_rereads_a_window_of_its_sequence_length():
    recipe = PRESETS["seed-2017"].train_config()
    assert recipe.rereads_window is True and recipe.window == recipe.seq_len == 100
    assert PRESETS["seed-2017"].train_config(seq_len=10).window == 10
    assert all(PRESETS[name].train.window is None for name in PRESETS if name != "seed-2017")


@pytest.mark.parametrize("make, words", [
    (lambda p: p.model_config(40, hiden_size=64), "unknown model setting 'hiden_size'"),
    (lambda p: p.train_config(minuts=2), "unknown training setting 'minuts'"),
    (lambda p: p.train_config(window=100), "unknown training setting 'window'"),
])
def test_a_preset_refuses_unknown_settings_by_name(make, words):
    with pytest.raises(ValueError, match=words):
        make(PRESETS["tiny"])


def test_a_preset_checks_the_values_it_is_given():
    with pytest.raises(ValueError, match="hidden_size must be at least 1"):
        PRESETS["tiny"].model_config(40, hidden_size=0)
    with pytest.raises(ValueError, match="learning rate"):
        PRESETS["tiny"].train_config(lr=-1.0)


def test_configs_are_frozen():
    with pytest.raises(AttributeError):
        PRESETS["tiny"].train.lr = 1.0
    with pytest.raises(TypeError):
        PRESETS["tiny"].model["hidden_size"] = 1


@pytest.mark.parametrize("data, words", [
    ({"seq_len": "64"}, "seq_len .* must be a whole number, not str"),
    ({"seq_len": 64.5}, "seq_len .* must be a whole number, not float"),
    ({"batch_size": True}, "batch_size .* must be a whole number, not bool"),
    ({"lr": "fast"}, "learning rate.* must be a finite number, not str"),
    ({"lr": 10**400}, "learning rate.* must be a finite number"),
    ({"epochs": [1]}, "epochs must be a finite number, not list"),
    ({"max_steps": 2.5}, "max_steps must be a whole number, not float"),
    ({"stateful": 1}, "stateful must be true or false, not int"),
    ({"rereads_window": "yes"}, "rereads_window must be true or false, not str"),
    ({"optimizer": 3}, "optimizer must be one of adamw, adam; not int"),
    ({"device": {"kind": "cuda"}}, "device must be one of .*; not dict"),
    (["seq_len", 64], "not a table of settings"),
])
def test_train_config_from_a_file_refuses_wrong_types_with_a_plain_message(data, words):
    with pytest.raises(ValueError, match=words):    # a ValueError (the app and the CLI show it), never a TypeError
        TrainConfig.from_dict(data)


def test_train_config_round_trips_a_file_and_ignores_names_it_does_not_know():
    recipe = PRESETS["seed-2017"].train_config(minutes=1.5)
    assert TrainConfig.from_dict({**recipe.to_dict(), "from_a_later_version": 1}) == recipe
    assert TrainConfig.from_dict({"lr": 1}).lr == 1.0 and isinstance(TrainConfig.from_dict({"lr": 1}).lr, float)


def test_a_resume_file_with_a_damaged_config_or_progress_is_refused_with_a_message(trained, tmp_path):
    for damage, words in ((lambda c: c.train_config.update(batch_size="32"), "batch_size"),
                          (lambda c: c.progress.update(step="ten"), "damaged: its step")):
        state = resume_file.load(trained.last_path)
        damage(state)
        path = ckpt_io.save(state, tmp_path / "damaged.last.pt")
        with pytest.raises(ValueError, match=words):
            train(trained.corpus, resume=Resume(path))


def test_a_budget_given_on_resume_is_more_on_top_of_what_the_run_used():
    saved = TrainConfig(max_steps=10, eval_interval_s=30.0, device="cpu")
    used = {"elapsed_s": 120.0, "chars_seen": 500}
    assert Resume("run.last.pt").config_after(saved, used, 1000) == saved            # the original plan
    more_time = Resume("run.last.pt", minutes=1).config_after(saved, used, 1000)
    assert (more_time.minutes, more_time.epochs, more_time.max_steps) == (3.0, None, None)
    more_passes = Resume("run.last.pt", epochs=1).config_after(saved, used, 1000)
    assert (more_passes.minutes, more_passes.epochs, more_passes.max_steps) == (None, 1.5, None)
    elsewhere = Resume("run.last.pt", device="auto", eval_interval_s=5).config_after(saved, used, 1000)
    assert (elsewhere.device, elsewhere.eval_interval_s, elsewhere.max_steps) == ("auto", 5.0, 10)


# --- the Trainer's decisions, each on its own --------------------------------------------------------


class FakeClock:
    """Seconds that pass only when a test says so."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def trainer_at(corpus, clock: FakeClock, stop: threading.Event | None = None, **run) -> Trainer:
    return Trainer(corpus, *configs(corpus, **run), clock=clock, stop=stop)


def test_evaluate_now_once_eval_interval_s_has_passed(periodic_corpus):
    clock = FakeClock()
    trainer = trainer_at(periodic_corpus, clock, max_steps=1_000, eval_interval_s=30.0)
    trainer.state.step = 150   # past the early evaluations (charlm.train.state.EARLY_EVALS), which come by step
    assert not trainer.should_evaluate()
    clock.now += 29.9
    assert not trainer.should_evaluate()
    clock.now += 0.1
    assert trainer.should_evaluate()
    trainer.evaluate_and_save()
    assert not trainer.should_evaluate()              # the interval counts from the last evaluation
    clock.now += 30.0
    assert trainer.should_evaluate()


def test_stop_now_on_the_stop_flag_with_its_message(periodic_corpus):
    stop = threading.Event()
    trainer = trainer_at(periodic_corpus, FakeClock(), stop=stop, max_steps=100)
    assert not trainer.should_stop() and not trainer.state.stopped
    stop.set()
    assert trainer.should_stop()
    assert trainer.state.stopped and trainer.state.message == "stopped on request"


@pytest.mark.parametrize("budget", [dict(max_steps=10), dict(minutes=1.0), dict(epochs=2.0)])
def test_stop_now_once_the_budget_is_spent_and_the_run_counts_as_done(periodic_corpus, budget):
    clock = FakeClock()
    trainer = trainer_at(periodic_corpus, clock, **budget)
    train_chars = len(periodic_corpus.split()[0])
    assert not trainer.should_stop()
    trainer.state.step, trainer.state.chars_seen = 10, 2 * train_chars
    clock.now += 60.0
    assert trainer.should_stop()
    assert not trainer.state.stopped and trainer.state.message is None     # it finished; nobody stopped it


def test_stop_now_after_a_divergence_rollbacks_did_not_cure(periodic_corpus):
    trainer = trainer_at(periodic_corpus, FakeClock(), max_steps=100)
    trainer.state.rollbacks = MAX_ROLLBACKS
    assert not trainer.should_stop()
    trainer.state.rollbacks += 1
    assert trainer.should_stop() and trainer.state.stopped and trainer.state.message == DIVERGED


def test_fraction_done_through_a_minutes_budget(periodic_corpus):
    clock = FakeClock()
    trainer = trainer_at(periodic_corpus, clock, minutes=2.0)
    assert trainer.fraction_done() == 0.0
    clock.now += 30.0
    assert trainer.fraction_done() == pytest.approx(0.25)
    assert trainer.fraction_done(elapsed=90.0) == pytest.approx(0.75)
    clock.now += 90.0
    assert trainer.fraction_done() == pytest.approx(1.0)


def test_fraction_done_through_an_epochs_budget(periodic_corpus):
    trainer = trainer_at(periodic_corpus, FakeClock(), epochs=2.0)
    train_chars = len(periodic_corpus.split()[0])
    trainer.state.chars_seen = train_chars // 2
    assert trainer.fraction_done() == pytest.approx(0.25, rel=1e-3)
    trainer.state.chars_seen = 2 * train_chars
    assert trainer.fraction_done() == pytest.approx(1.0)


def test_fraction_done_through_a_steps_budget_and_the_furthest_of_several(periodic_corpus):
    clock = FakeClock()
    trainer = trainer_at(periodic_corpus, clock, max_steps=10, minutes=1.0)
    trainer.state.step = 4
    assert trainer.fraction_done() == pytest.approx(0.4)
    clock.now += 45.0                                  # three quarters of the minutes: now those lead
    assert trainer.fraction_done() == pytest.approx(0.75)


def test_no_budget_means_one_pass_in_the_trainers_config(periodic_corpus):
    trainer = trainer_at(periodic_corpus, FakeClock())
    assert (trainer.cfg.epochs, trainer.cfg.minutes, trainer.cfg.max_steps) == (1.0, None, None)


def test_the_learning_rate_follows_the_fraction_of_the_budget_done(periodic_corpus):
    clock = FakeClock()
    trainer = trainer_at(periodic_corpus, clock, minutes=1.0, warmup_steps=0)
    clock.now += 30.0                                  # halfway through the budget
    trainer.model.train()
    assert trainer.step()
    cfg = trainer.cfg
    assert trainer.state.lr == lr_at(cfg, 0, 0.5) == \
        pytest.approx(cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) / 2))
    assert lr_at(cfg, 5, 0.0) == cfg.lr and lr_at(cfg, 5, 1.0) == pytest.approx(cfg.lr * cfg.min_lr_ratio)


# --- best checkpoint -------------------------------------------------------------------------------


def test_best_checkpoint_holds_the_lowest_validation_loss(periodic_corpus, tmp_path, monkeypatch):
    # Validation loss that gets worse after step 6 (the real loss plus 5 nats), so the best is not the last.
    real_evaluate = train_module.evaluate
    calls = [0]

    def worse_after_step_6(*args, **kwargs):
        calls[0] += 1
        loss, count = real_evaluate(*args, **kwargs)
        return loss + (5.0 if calls[0] > 7 else 0.0), count   # the 7th evaluation is step 6's (step 0 first)

    monkeypatch.setattr(train_module, "evaluate", worse_after_step_6)
    result = small_train(periodic_corpus, out=tmp_path / "m.pt", max_steps=12, eval_interval_s=0.0)
    val_losses = [row["val_loss"] for row in result.history]
    assert [row["step"] for row in result.history] == list(range(13))
    assert result.best_val_loss == min(val_losses) == val_losses[6]
    best = ckpt_io.load(result.best_path)
    assert best.best_val_loss == min(val_losses)
    # The file keeps the whole run (charlm.train.runfiles), and says which evaluation its weights are from.
    assert best.progress["step"] == 12 and best.history == result.history
    assert best.best_step == 6 and best.best_evaluation() == 6
    # The weights in the file are the ones that scored that loss, not the last ones.
    _, val_ids = periodic_corpus.split()
    rescored, _ = real_evaluate(CharLSTM.from_checkpoint(best), val_ids, SMALL_RUN["eval_chars"])
    assert rescored == pytest.approx(best.best_val_loss, rel=1e-5)
    last = resume_file.load(result.last_path)
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
    for name, tensor in resume_file.load(result.last_path).state_dict.items():
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
    for tensor in resume_file.load(result.last_path).state_dict.values():
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
    model = {"dropout": 0.2}
    whole = train(periodic_corpus, *configs(periodic_corpus, preset, model, **settings), preset=preset,
                  out=tmp_path / "whole.pt")
    stop = threading.Event()
    half = train(periodic_corpus, *configs(periodic_corpus, preset, model, **settings), preset=preset,
                 out=tmp_path / "half.pt", stop=stop,
                 on_progress=lambda e: e.kind == "step" and e.step == 10 and stop.set())
    assert half.stopped and half.steps == 10
    saved = resume_file.load(half.last_path)
    assert saved.optimizer and saved.rng and saved.progress["position"]
    assert (saved.carry is not None) == (preset == "tiny")
    resumed = train(periodic_corpus, out=tmp_path / "resumed.pt", resume=Resume(half.last_path))
    assert resumed.steps == whole.steps == 20
    assert resumed.chars_seen == whole.chars_seen
    assert resumed.final_val_loss == pytest.approx(whole.final_val_loss, rel=1e-5)
    assert resumed.history[-1]["train_loss"] is not None
    end_whole = resume_file.load(whole.last_path)
    end_resumed = resume_file.load(resumed.last_path)
    assert_same_weights(end_resumed.state_dict, end_whole.state_dict)
    assert end_resumed.progress["position"] == end_whole.progress["position"]
    if preset == "tiny":
        torch.testing.assert_close(end_resumed.carry[0], end_whole.carry[0], rtol=1e-5, atol=1e-6)


def test_resume_with_a_larger_step_budget_matches_one_long_run(periodic_corpus, tmp_path):
    # A constant learning rate: with the cosine schedule the first half of a 10-step run has other rates
    # than the first half of a 20-step run, by design.
    settings = dict(seq_len=64, seed=2, schedule="constant")
    whole = train(periodic_corpus, *configs(periodic_corpus, max_steps=20, **settings), out=tmp_path / "whole.pt")
    first = train(periodic_corpus, *configs(periodic_corpus, max_steps=10, **settings), out=tmp_path / "first.pt")
    resumed = train(periodic_corpus, out=tmp_path / "resumed.pt", resume=Resume(first.last_path, max_steps=20))
    assert resumed.steps == 20 and resumed.chars_seen == whole.chars_seen
    assert resumed.final_val_loss == pytest.approx(whole.final_val_loss, rel=1e-5)
    assert_same_weights(resume_file.load(resumed.last_path).state_dict,
                        resume_file.load(whole.last_path).state_dict)
    # The resumed run keeps the first run's history and adds to it.
    assert resumed.history[: len(first.history)] == first.history
    assert resumed.history[-1]["step"] == 20


def test_resume_on_a_text_with_other_characters_is_refused(trained):
    other = load_corpus(made_up_text(2_000))
    with pytest.raises(ValueError, match="other characters"):
        train(other, resume=Resume(trained.last_path))


# --- the estimate ------------------------------------------------------------------------------------


def test_the_estimate_times_the_configs_it_is_given_once_per_process():
    tiny = PRESETS["tiny"]
    model, recipe = tiny.model_config(20, hidden_size=16, embed_dim=8), tiny.train_config(seq_len=16, batch_size=4)
    first = estimate(model, recipe, "cpu")
    assert first.chars_per_sec > 0 and first.device == "cpu"
    assert estimate(model, recipe, "cpu") is first                                  # measured once
    assert estimate(model, tiny.train_config(seq_len=16, batch_size=4), "cpu") is first   # equal configs: the same
    assert first.seconds_per_epoch(round(first.chars_per_sec * 10)) == pytest.approx(10, rel=1e-3)
