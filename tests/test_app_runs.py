"""Several runs per visitor: each run a visitor starts is kept, listed in Generate, and drawn on one chart."""

from __future__ import annotations

import pytest

from app import state as state_mod
from helpers import chart_data, choose_text, job_of, poll_until, start

# Each test trains two runs in the app (about 10 s each here): none is quick.
pytestmark = pytest.mark.slow


def finished(at) -> bool:
    job = job_of(at)
    return job is not None and not job.is_alive() and job.best_checkpoint() is not None


def test_two_runs_of_one_visitor_appear_together_in_generate_and_on_one_chart(visitors):
    at = start(choose_text(visitors()), minutes=0.05)            # run 1: today's design (tiny)
    poll_until(at, finished)
    first = job_of(at)
    at.selectbox(key="train_preset").set_value("seed-2017").run()   # run 2: the 2017 design, same text
    at.number_input(key="budget_minutes").set_value(0.05)
    at.button(key="start").click().run()
    assert not at.exception
    poll_until(at, finished)
    second = job_of(at)
    assert second is not first
    assert [run.job for run in at.session_state["kept_runs"]] == [first]

    # One chart, one y scale: both runs' validation curves, labelled.
    charts = [chart_data(c)[0] for c in at.get("vega_lite_chart") if "run" in chart_data(c)[0].columns]
    assert len(charts) == 1
    assert set(charts[0]["run"]) == {"Run 1: tiny on fox.txt", "Run 2 (this one): seed-2017 on fox.txt"}

    # Generate lists both, each writing with its own model.
    at.switch_page("app/pages/generate.py").run()
    labels = set(at.selectbox(key="gen_model").options)   # as shown
    assert "Trained here: fox.txt (run 2)" in labels and "Run 1: tiny on fox.txt" in labels
    at.selectbox(key="gen_model").set_value("run:1").run()
    assert not at.exception
    assert "preset tiny" in at.text[0].value


def test_the_oldest_run_makes_room_and_takes_its_folder_along(visitors, monkeypatch):
    monkeypatch.setattr(state_mod, "MAX_RUNS", 2)   # the current run and one before it
    at = choose_text(visitors())
    folders = []
    for _ in range(3):
        start(at, minutes=0.05)
        poll_until(at, finished)
        folders.append(job_of(at).workdir)
    kept = at.session_state["kept_runs"]
    assert [run.number for run in kept] == [2]
    assert not folders[0].exists() and folders[1].exists() and folders[2].exists()
