"""Defects seen on a teacher's walk through training (issue 22): the Train page's validation loss (latest and
best), the loss chart's axis, and the two models of Learn's "Train both" (2017 vs today)."""

from __future__ import annotations

import json
import math

import pytest

from app import charts, run_view
from charlm.modelfile import checkpoint
from charlm.units import LN2
from helpers import choose_text, job_of, poll_until, resumed_worse_then_stopped, start

RACE_PAGE = "app/pages/learn/then_and_now.py"


def metric(at, label: str):
    return next(m for m in at.metric if m.label == label)


def y_scales(spec: dict) -> list[dict]:
    """The y scales a (layered) chart spec sets, one per layer that sets one."""
    found = []
    for layer in spec.get("layer", [spec]):
        if "layer" in layer:
            found += y_scales(layer)
        elif "scale" in layer.get("encoding", {}).get("y", {}):
            found.append(layer["encoding"]["y"]["scale"])
    return found


# --- the Validation loss metric -------------------------------------------------------------------

def test_the_best_evaluation_is_the_lowest_validation_loss_the_earliest_when_tied():
    losses = [(10, 3.0, None), (20, 2.0, 0.9), (30, 1.5, 0.7), (40, 1.2, None), (50, 1.0, 0.7), (60, 0.8, 0.8)]
    assert run_view.best_evaluation(losses) == (30, 0.7)
    assert run_view.best_evaluation([(10, 3.0, None)]) is None


@pytest.mark.slow
def test_the_train_page_shows_the_latest_and_the_best_validation_loss_and_which_one_the_model_keeps(
        visitor, monkeypatch):
    at = visitor()
    # Resumed, it scores 3 nats worse at every evaluation: the latest is worse than the best, which stays.
    first_best = resumed_worse_then_stopped(at, monkeypatch)
    snap = job_of(at).snapshot()
    assert snap.status == "stopped" and snap.latest.val_loss == first_best + 3.0

    latest = metric(at, "Val. latest (bits/char)")
    best = metric(at, "Val. best (bits/char)")
    assert latest.value == f"{(first_best + 3.0) / LN2:.3f}"
    assert best.value == f"{first_best / LN2:.3f}"
    assert "latest evaluation" in latest.help
    best_step = run_view.best_evaluation(at.session_state["earlier_runs"].losses + snap.losses)[0]
    assert best.help == (f"The lowest validation loss (held-out text) so far, at step {best_step:,}. The model file keeps the "
                         "weights of that evaluation: Generate, the Learn parts and the download use them, not "
                         "the latest ones.")
    assert not any(m.label == "Validation loss (bits/char)" for m in at.metric)   # no number without its kind

    # The page's loss chart draws on the fitted log axis (below).
    spec = json.loads(at.get("vega_lite_chart")[0].proto.spec)
    assert y_scales(spec) and all(scale == {"type": "log", "nice": False, "padding": 8} for scale in y_scales(spec))


# --- the loss chart's axis ----------------------------------------------------------------------

def test_the_loss_charts_axis_follows_the_data_so_a_late_rise_of_the_validation_loss_shows():
    """Training from 5 bits down to 0.3; validation at 0.49, then 0.63 (overfitting); a baseline at 4.3 bits."""
    bits = lambda value: value * LN2   # noqa: E731  (the chart takes nats)
    losses = [(1, bits(5.0), None), (100, bits(0.6), bits(0.49)), (200, bits(0.3), bits(0.63))]
    chart = charts.loss_chart(losses, references=[("letter frequencies", bits(4.3))])
    spec = chart.to_dict()
    scales = y_scales(spec)
    # A log scale with no rounding out and no zero, spanning the values Vega finds in the data, plus 8 pixels.
    assert scales == [{"type": "log", "nice": False, "padding": 8}] * 2   # the curve and the validation points
    assert "(log scale)" in spec["layer"][0]["encoding"]["y"]["title"]
    drawn = [row["bits per character"] for rows in spec["datasets"].values() for row in rows
             if "bits per character" in row]
    assert min(drawn) == pytest.approx(0.3) and max(drawn) == pytest.approx(5.0)
    # The rise takes a tenth of that axis's height, where a linear 0-5 axis gave it under 3 %.
    share = math.log(0.63 / 0.49) / math.log(max(drawn) / min(drawn))
    assert share > 0.08 and (0.63 - 0.49) / 5 < 0.03


def test_the_runs_chart_uses_the_same_axis_and_a_perfect_prediction_stays_drawable():
    chart = charts.runs_chart([("a run", [(0.5, 0.0), (1.0, 0.7)])])
    spec = chart.to_dict()
    assert y_scales(spec) == [{"type": "log", "nice": False, "padding": 8}] * 2
    drawn = [row["bits per character"] for rows in spec["datasets"].values() for row in rows]
    assert drawn == pytest.approx([charts.LOG_FLOOR_BITS, 0.7 / LN2])   # a log axis has no 0


# --- Train both's two models --------------------------------------------------------------------

def race(at, minutes: float):
    at.switch_page(RACE_PAGE).run()
    at.number_input(key="race_minutes").set_value(minutes)
    at.button(key="race_start").click().run()
    assert not at.exception and not at.warning, [w.value for w in at.warning]
    return list(at.session_state["then_and_now_race"].jobs.values())


@pytest.mark.slow
def test_train_boths_models_reach_generate_and_learn_and_can_be_downloaded(visitor, monkeypatch, downloads):
    monkeypatch.setenv("CHARLM_MAX_JOBS", "3")   # a set of slots of its own: other tests' jobs cannot fill it
    at = choose_text(visitor())
    jobs = race(at, 0.05)
    for job in jobs:
        job.join(90)
    at.run()
    assert not at.exception
    labels = ["Run 1: seed-2017 on fox.txt (Train both: 2017 design)",
              "Run 2: cpu-fast on fox.txt (Train both: today's default)"]
    assert [run.label for run in at.session_state["kept_runs"]] == labels
    assert [run.job for run in at.session_state["kept_runs"]] == jobs

    # Each can be downloaded from the page, and the file is that run's model.
    for job, name in zip(jobs, ("charlm-fox-seed-2017.safetensors", "charlm-fox-cpu-fast.safetensors")):
        assert at.download_button(key=f"race_download_{job.preset}")
        assert checkpoint.load(downloads[name]).preset == job.preset
        assert downloads[name] == job.best_checkpoint().read_bytes()

    at.switch_page("app/pages/generate.py").run()
    assert set(labels) <= set(at.selectbox(key="gen_model").options)
    at.selectbox(key="gen_model").set_value("run:1")
    at.button(key="write").click().run()
    assert not at.exception and at.code[0].value

    at.switch_page("app/pages/learn/the_model.py").run()
    assert set(labels) <= set(at.selectbox(key="learn_model").options)

    # A Train page run counts on after them, and keeps them.
    at.switch_page("app/pages/train.py").run()
    start(at, minutes=0.05)
    job_of(at).join(60)
    at.switch_page("app/pages/generate.py").run()
    assert {*labels, "Trained here: fox.txt (run 3)"} <= set(at.selectbox(key="gen_model").options)

    # A new race replaces the last one's runs, models and folders.
    second = race(at, 0.05)
    assert [run.job for run in at.session_state["kept_runs"]] == second
    assert [run.number for run in at.session_state["kept_runs"]] == [4, 5]
    assert not any(job.workdir.exists() for job in jobs)


@pytest.mark.slow
def test_a_race_still_training_is_never_dropped_to_make_room(visitor, monkeypatch):
    monkeypatch.setenv("CHARLM_MAX_JOBS", "3")
    at = choose_text(visitor())
    jobs = race(at, 1.0)
    poll_until(at, lambda at: all(job.best_checkpoint() for job in jobs))   # each has its model file
    monkeypatch.setenv("CHARLM_MAX_DISK_MB", "0.001")   # their files alone are over this budget
    at.switch_page("app/pages/train.py").run()
    start(at, minutes=0.05)
    assert any("disk for visitors is full" in warning.value for warning in at.warning)
    assert all(job.is_alive() and job.workdir.is_dir() for job in jobs)
    assert [run.job for run in at.session_state["kept_runs"]] == jobs
