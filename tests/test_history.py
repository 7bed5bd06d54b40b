"""Tests that a model file keeps its run's whole history: every evaluation and sample (the early ones at steps
0, 10 and 30 too), the run's full steps and time across a stop and resume, while its weights stay the best
evaluation's and the file says which; `info` and Learn's Training over time agree with it."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from charlm.cli.main import main
from charlm.modelfile import checkpoint as ckpt_io
from charlm.modelfile import tables
from charlm.nn.model import CharLSTM
from charlm.train import trainer as train_module
from charlm.train.evaluate import evaluate
from charlm.train.resume import Resume, last_path_for
from charlm.train.state import EARLY_EVALS
from charlm.train.trainer import train
from charlm.units import format_duration

from helpers import APP, SMALL_RUN, configs


def overfitting(monkeypatch, after_call: int) -> None:
    """Validation loss 5 nats worse from evaluation after_call + 1 on, as a run that overfits after its best."""
    real, calls = train_module.evaluate, [0]

    def worse(*args, **kwargs):
        calls[0] += 1
        loss, count = real(*args, **kwargs)
        return loss + (5.0 if calls[0] > after_call else 0.0), count

    monkeypatch.setattr(train_module, "evaluate", worse)


def run(corpus, out, **settings):
    return train(corpus, *configs(corpus, **{"eval_interval_s": 0.0, "amp": False, **settings}), out=out)


def test_a_run_that_overfits_keeps_every_evaluation_with_the_best_weights(periodic_corpus, tmp_path, monkeypatch):
    overfitting(monkeypatch, after_call=4)   # evaluations at steps 0..3 are real; steps 4..10 worse
    out = tmp_path / "m.safetensors"
    result = run(periodic_corpus, out, max_steps=10)
    saved = ckpt_io.load(out)
    assert [row["step"] for row in saved.history] == list(range(11))
    assert saved.history == result.history and all(row["sample"] for row in saved.history)
    assert saved.progress["step"] == 10 and saved.progress["elapsed_s"] == result.elapsed_s
    best = min(range(4), key=lambda i: saved.history[i]["val_loss"])
    assert saved.best_step == best and saved.best_evaluation() == best
    assert saved.best_val_loss == saved.history[best]["val_loss"]
    # The weights are the ones that scored the best loss, not the last ones.
    _, val_ids = periodic_corpus.split()
    rescored, _ = evaluate(CharLSTM.from_checkpoint(saved), val_ids, SMALL_RUN["eval_chars"])
    assert rescored == pytest.approx(saved.best_val_loss, rel=1e-5)


def test_a_stopped_and_resumed_run_keeps_both_sessions_history_steps_and_time(periodic_corpus, tmp_path,
                                                                              monkeypatch):
    overfitting(monkeypatch, after_call=3)   # the best is among steps 0..2; every later evaluation is worse
    out = tmp_path / "m.safetensors"
    first = run(periodic_corpus, out, max_steps=5)
    weights_before = ckpt_io.load(out).state_dict
    second = train(periodic_corpus, resume=Resume(last_path_for(out), max_steps=9), out=out)
    saved = ckpt_io.load(out)
    assert [row["step"] for row in saved.history] == list(range(10))
    assert saved.progress["step"] == second.steps == 9
    assert saved.progress["elapsed_s"] == second.elapsed_s > first.elapsed_s
    assert saved.best_step == first.history.index(min(first.history[:3], key=lambda row: row["val_loss"]))
    for name, value in weights_before.items():   # the best weights came through the resume unchanged
        assert np.array_equal(saved.state_dict[name], value), name


def test_info_reports_the_runs_whole_steps_and_time_and_the_evaluation_of_its_weights(periodic_corpus, tmp_path,
                                                                                       monkeypatch, capsys):
    overfitting(monkeypatch, after_call=3)
    out = tmp_path / "m.safetensors"
    result = run(periodic_corpus, out, max_steps=8)
    best = ckpt_io.load(out).best_step
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    trained = next(line for line in lines if line.startswith("trained:"))
    assert trained.startswith(f"trained: 8 steps, {result.chars_seen:,} characters, "
                              f"{format_duration(result.elapsed_s)} on cpu")
    assert "history: 9 evaluations;" in "\n".join(lines)
    assert f"weights: from evaluation {best + 1} of 9, at step {best} (the best validation loss)" in lines


def test_the_early_evaluations_come_by_step_whatever_the_spacing(periodic_corpus, tmp_path):
    assert EARLY_EVALS == (0, 10, 30)
    result = run(periodic_corpus, tmp_path / "m.safetensors", max_steps=120, eval_interval_s=1e9)
    assert [row["step"] for row in result.history] == [0, 10, 30, 120]
    assert result.history[0]["train_loss"] is None and result.history[0]["epoch"] == 0.0   # before any step
    assert [row["step"] for row in ckpt_io.load(tmp_path / "m.safetensors").history] == [0, 10, 30, 120]


def test_a_run_stopped_before_its_first_step_keeps_its_untrained_evaluation(periodic_corpus, tmp_path):
    stop = threading.Event()
    stop.set()
    model_cfg, cfg = configs(periodic_corpus, max_steps=50, amp=False)
    result = train(periodic_corpus, model_cfg, cfg, out=tmp_path / "m.safetensors", stop=stop)
    assert result.steps == 0 and [row["step"] for row in result.history] == [0]


def test_a_very_long_history_is_thinned_to_fit_the_readers_cap_keeping_its_ends():
    rows = [{"step": i, "val_loss": 1.0, "train_loss": 1.0, "sample": "x" * 2_000} for i in range(3_000)]
    fitted = ckpt_io.fitted_history(rows)
    assert len(json.dumps(fitted)) <= ckpt_io.MAX_HISTORY_BYTES < tables.MAX_TABLE_BYTES
    assert len(fitted) == 3_000                                   # every evaluation's losses kept ...
    assert fitted[0]["sample"] and fitted[-1]["sample"]           # ... the first and last samples too
    assert ckpt_io.fitted_history(rows[:100]) == rows[:100]       # a history that fits is kept whole


def test_a_file_from_before_best_step_reads_its_weights_as_its_last_evaluation(trained):
    old = ckpt_io.load(trained.path)
    old.best_step = None
    old.history = old.history[:3]
    old.best_val_loss = old.history[-1]["val_loss"]
    again = ckpt_io.load(ckpt_io.to_bytes(old))
    assert again.best_step is None and again.best_evaluation() == 2


# --- Learn's Training over time ------------------------------------------------------------------------


def test_training_over_time_shows_every_evaluation_and_marks_the_weights_one(periodic_corpus, tmp_path,
                                                                              monkeypatch, app_env):
    overfitting(monkeypatch, after_call=4)
    out = tmp_path / "m.safetensors"
    run(periodic_corpus, out, max_steps=10)
    saved = ckpt_io.load(out)
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page("app/pages/train.py").run()
    at.file_uploader(key="checkpoint_upload").set_value(("overfit.safetensors", out.read_bytes(),
                                                         "application/octet-stream"))
    at.run()
    key = next(iter(at.session_state["uploaded_models"]))
    at.switch_page("app/pages/learn/training_over_time.py").run()
    at.selectbox(key="learn_model").set_value(key).run()
    assert not at.exception
    options = at.select_slider(key=f"tot_step:{key}").options
    assert [o.split(" · ")[0] for o in options] == [f"step {step}" for step in range(11)]
    marked = [o.split(" · ")[0] for o in options if o.endswith(" · the model's weights")]
    assert marked == [f"step {saved.best_step}"]
    at.select_slider(key=f"tot_step:{key}").set_value(saved.best_step).run()
    assert any(c.value.startswith("The model's weights are from this evaluation") for c in at.caption)
    spec = json.loads(at.get("vega_lite_chart")[0].proto.spec)
    assert spec["config"]["axisX"] == {"format": ",d", "tickMinStep": 1}   # "298", not "298.000000"
