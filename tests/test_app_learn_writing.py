"""App tests (AppTest) for the Learn pages on training and writing (Training over time, 2017 vs today,
Baselines, Decoding lab, Guess the next character) and the Train page's baseline reference lines."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from app import models, training
from charlm import workload
from charlm.modelfile import checkpoint
from charlm.text import datasets
from charlm.engine import sampling
from charlm.learn.baselines import fit_baselines
from charlm.text.corpus import load_corpus
from charlm.engine.decoding import DecodeConfig, encode_prime, engine_for
from charlm.units import LN2

import hostile_files as hostile
from helpers import APP, FOX, chart_data

CHECKPOINTS = Path(APP).parent / "checkpoints"
PAGE = "app/pages/learn/{}.py"


def open_page(at: AppTest, module: str, model_key: str | None = None) -> AppTest:
    at.switch_page(PAGE.format(module)).run()
    if model_key is not None:
        at.selectbox(key="learn_model").set_value(model_key).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def history(name: str) -> list[dict]:
    return checkpoint.load(CHECKPOINTS / name).history


def choose_text(at: AppTest, text: str = FOX) -> AppTest:
    at.switch_page("app/pages/corpus.py").run()
    at.file_uploader(key="corpus_upload").set_value(("fox.txt", text.encode(), "text/plain"))
    at.run()
    assert not at.error and "corpus" in at.session_state
    return at


def train_here(at: AppTest, minutes: float = 0.05) -> AppTest:
    """A short run of the tiny preset on the Train page, waited for."""
    at.switch_page("app/pages/train.py").run()
    at.selectbox(key="train_preset").set_value("tiny").run()
    at.number_input(key="budget_minutes").set_value(minutes)
    at.button(key="start").click().run()
    assert not at.exception
    at.session_state["job"].join(60)
    at.run()
    assert at.session_state["job"].snapshot().status == "done"
    return at


# --- Training over time -------------------------------------------------------------------------

def test_training_over_time_shows_the_sample_of_the_evaluation_chosen_on_the_slider(visitor):
    at = open_page(visitor(), "training_over_time", "shipped")
    assert at.title[0].value == "Training over time"
    rows = history("demo.safetensors")
    slider = at.select_slider(key="tot_step:shipped")
    assert slider.value == rows[-1]["step"]   # it opens at the end of training
    assert any(c.value == rows[-1]["sample"] for c in at.code)
    slider.set_value(rows[1]["step"]).run()
    assert not at.exception
    assert at.code[0].value == rows[1]["sample"]
    assert not any(c.value == rows[-1]["sample"] for c in at.code)
    marker = chart_data(at.get("vega_lite_chart")[0])[-1]   # the rule marking the chosen evaluation
    assert list(marker["step"]) == [rows[1]["step"]]


def upload_model(at: AppTest, name: str, data: bytes) -> AppTest:
    at.switch_page("app/pages/train.py").run()
    at.file_uploader(key="checkpoint_upload").set_value((name, data, "application/octet-stream"))
    at.run()
    assert not at.exception and not at.error
    return at


@pytest.mark.slow
def test_training_over_time_skips_history_rows_of_the_wrong_kind_and_says_how_many(visitor, trained):
    row = [row for row in trained.checkpoint.history if row.get("sample")][-1]
    good = [{**row, "step": 10, "sample": "the cat"}, {**row, "step": 50, "sample": "the cat sat on the mat."}]
    bad = [{**row, "step": 20, "val_loss": "1.5"},       # a loss written as text
           {**row, "step": 30, "sample": ["a", "b"]},    # a sample as a list
           {**row, "step": 40, "train_loss": [1.0]}]
    data = hostile.with_fields(trained.checkpoint, history=good[:1] + bad + good[1:])
    at = upload_model(visitor(), "odd-history.pt", data)
    key = next(iter(at.session_state["uploaded_models"]))
    open_page(at, "training_over_time", key)
    assert not at.error
    assert [o.split(" · ")[0] for o in at.select_slider(key=f"tot_step:{key}").options] == ["step 10", "step 50"]
    assert any("3 rows of this model's training record were left out" in c.value for c in at.caption)
    assert any(c.value == good[-1]["sample"] for c in at.code)
    for module in ("text_to_numbers", "guess_game", "baselines_page"):   # pages that read its samples too
        open_page(at, module, key)


# --- 2017 vs today ------------------------------------------------------------------------------

def test_2017_vs_today_shows_both_shipped_models_curves_and_last_samples(visitor):
    at = open_page(visitor(), "then_and_now")
    assert at.title[0].value == "2017 vs today"
    assert not at.warning
    samples = [c.value for c in at.code]
    for name in ("seed-2017.safetensors", "demo.safetensors"):
        last = [row["sample"] for row in history(name) if row.get("sample")][-1]
        assert last in samples
    curves = chart_data(at.get("vega_lite_chart")[0])[0]
    for run, name in (("2017 design (seed-2017)", "seed-2017.safetensors"),
                      ("today's default (cpu-fast)", "demo.safetensors")):
        points = curves[curves["run"] == run]
        rows = history(name)
        assert list(points["minutes"]) == pytest.approx([row["elapsed_s"] / 60 for row in rows])
        assert list(points["bits per character"]) == pytest.approx([row["val_loss"] / LN2 for row in rows])
    assert "Choose a text on the Corpus page" in at.info[0].value


class _HeldSlot:
    """Something holding a training slot, as another visitor's job would."""
    holder = None

    def finished(self) -> bool:
        return False

    def seconds_left(self) -> None:
        return None


@pytest.mark.slow
def test_2017_vs_today_trains_both_designs_on_the_visitors_text(visitor, monkeypatch):
    monkeypatch.setenv("CHARLM_MAX_JOBS", "3")   # a set of slots of its own: other tests' jobs cannot fill it
    at = open_page(choose_text(visitor()), "then_and_now")
    at.number_input(key="race_minutes").set_value(0.05)
    at.button(key="race_start").click().run()
    assert not at.exception and not any("busy" in w.value for w in at.warning)
    race = at.session_state["then_and_now_race"]
    jobs = list(race.jobs.values())
    assert [job.preset for job in jobs] == ["seed-2017", "cpu-fast"]
    assert jobs[0].workdir != jobs[1].workdir
    assert "job" not in at.session_state   # the Train page's job is another matter
    assert all(job in at.session_state["visitor_dir"].jobs for job in jobs)   # stopped when the session goes
    for job in jobs:
        job.join(90)
    at.run()
    assert not at.exception
    snaps = [job.snapshot() for job in jobs]
    assert [snap.status for snap in snaps] == ["done", "done"], [snap.error for snap in snaps]
    shown = [c.value for c in at.code]
    for snap in snaps:
        assert snap.samples[-1][1] in shown   # each design's last sample, side by side
    runs = set(chart_data(at.get("vega_lite_chart")[1])[0]["run"])
    assert runs == {"2017 design (seed-2017)", "today's default (cpu-fast)"}


@pytest.mark.slow
def test_a_new_race_frees_the_last_ones_folders_and_jobs(visitor, monkeypatch):
    monkeypatch.setenv("CHARLM_MAX_JOBS", "3")
    at = open_page(choose_text(visitor()), "then_and_now")
    at.number_input(key="race_minutes").set_value(0.05)
    at.button(key="race_start").click().run()
    first = list(at.session_state["then_and_now_race"].jobs.values())
    for job in first:
        job.join(90)
    at.run()
    assert all(job.workdir.is_dir() for job in first)
    at.button(key="race_start").click().run()
    assert not at.exception
    second = list(at.session_state["then_and_now_race"].jobs.values())
    assert not set(second) & set(first)
    assert not any(job.workdir.exists() for job in first)   # its model files go now, not with the session
    registered = at.session_state["visitor_dir"].jobs
    assert all(job in registered for job in second) and not any(job in registered for job in first)
    assert all(job.workdir.is_dir() for job in second)


def test_2017_vs_today_says_how_many_slots_are_busy_and_starts_nothing(visitor, monkeypatch):
    monkeypatch.setenv("CHARLM_MAX_JOBS", "4")
    slots = training.slots()   # the server's slots as the page finds them, with CHARLM_MAX_JOBS=4
    held = [_HeldSlot() for _ in range(3)]
    for holder in held:
        slots.acquire(holder)
    try:
        at = open_page(choose_text(visitor()), "then_and_now")
        at.number_input(key="race_minutes").set_value(0.05)
        at.button(key="race_start").click().run()
        assert not at.exception
        assert "3 of its 4 training slots are in use" in at.warning[0].value
        assert "then_and_now_race" not in at.session_state
        started = at.session_state["visitor_dir"].jobs   # the first design got the last slot, then gave it back
        for job in started:
            job.join(60)
        assert all(job.finished() for job in started)
    finally:
        for holder in held:
            slots.release(holder)


def test_2017_vs_today_on_a_server_with_one_slot_says_they_cannot_train_side_by_side(visitor, monkeypatch):
    monkeypatch.setenv("CHARLM_MAX_JOBS", "1")
    at = open_page(choose_text(visitor()), "then_and_now")
    at.button(key="race_start").click().run()
    assert "cannot train side by side" in at.warning[0].value
    assert "then_and_now_race" not in at.session_state


# --- Baselines ----------------------------------------------------------------------------------

def python_docs_text() -> str:
    return load_corpus(datasets.python_docs(), "python-docs.txt").text


def test_baselines_on_the_python_docs_model_measure_uniform_and_the_ngrams(visitor):
    at = open_page(visitor(), "baselines_page", "shipped:python-docs")
    assert at.title[0].value == "Baselines"
    table = at.dataframe[0].value
    vocab = len(models.shipped("shipped:python-docs").chars)
    uniform = table[table["model"] == "uniform"]["bits/char"].item()
    assert uniform == pytest.approx(math.log2(vocab), rel=1e-12)
    assert {"letter frequencies", "2-gram", "3-gram", "5-gram", "LSTM (this model)"} <= set(table["model"])
    bits = dict(zip(table["model"], table["bits/char"]))
    assert bits["5-gram"] < bits["letter frequencies"] < bits["uniform"]


@pytest.mark.slow
def test_baselines_find_a_pasted_passage_as_the_longest_copied_span(visitor):
    at = open_page(visitor(), "baselines_page", "shipped:python-docs")
    passage = python_docs_text()[20_000:20_060]
    at.segmented_control(key="bl_source").set_value("Paste a text").run()
    at.text_area(key="bl_paste").input(f"☃☃ my own words ☃ {passage} ☃ more of mine").run()
    assert not at.exception
    assert any("Longest copied span: 60 characters" in m.value for m in at.markdown)
    assert passage in [c.value for c in at.code]


def test_baselines_without_the_training_text_say_so_and_show_uniform(visitor):
    at = open_page(visitor(), "baselines_page", "shipped")   # Nietzsche: not downloaded here
    assert any("not at hand" in c.value for c in at.caption)
    table = at.dataframe[0].value
    assert list(table["model"]) == ["uniform", "LSTM (this model)"]
    assert table["bits/char"][0] == pytest.approx(math.log2(len(models.shipped("shipped").chars)), rel=1e-12)
    assert "Copied spans are looked for in the model's training text" in at.info[0].value


# --- Decoding lab -------------------------------------------------------------------------------

def test_decoding_lab_greedy_column_is_what_greedy_writing_gives(visitor):
    at = open_page(visitor(), "decoding_lab", "shipped")
    assert at.title[0].value == "Decoding lab"
    prime = "Man is "
    at.text_input(key="dl_prime").input(prime)
    at.slider(key="dl_length").set_value(120).run()
    assert not at.exception
    engine = engine_for(checkpoint.load(CHECKPOINTS / "demo.safetensors"))
    vocab = models.shipped("shipped").vocab
    ids, _ = encode_prime(vocab, prime)
    greedy = vocab.decode(sampling.write(engine, ids, 120, DecodeConfig("greedy"), np.random.default_rng(0))[0])
    assert at.code[0].value == prime + greedy
    assert len(at.code) == 6   # every strategy, side by side
    assert len(at.dataframe[0].value) == 6


def test_decoding_lab_shows_only_the_strategies_picked_and_names_unknown_prime_characters(visitor):
    at = open_page(visitor(), "decoding_lab", "shipped")
    at.multiselect(key="dl_strategies").set_value(["top-k", "beam"]).run()
    at.text_input(key="dl_prime").input("Price: 5 € ").run()
    assert not at.exception
    assert len(at.code) == 2
    assert any("never saw these characters" in i.value and "€" in i.value for i in at.info)


@pytest.fixture(scope="module")
def window_at_caps() -> models.LoadedModel:
    """A 2017-design model at every cap (a 512-character window, 3 x 512): seconds for each character it writes."""
    import torch

    from charlm.config import ModelConfig
    from charlm.nn.model import CharLSTM

    vocab = models.shipped("shipped").chars
    config = ModelConfig(vocab_size=len(vocab), hidden_size=512, num_layers=3)
    torch.manual_seed(0)
    ckpt = checkpoint.Checkpoint(config.to_dict(), vocab, CharLSTM(config).state_dict(), window=512,
                                 info={"corpus": "made up"})
    return models._from_checkpoint(ckpt, "window-caps", "a window model at the caps")


def with_model(at: AppTest, monkeypatch, loaded: models.LoadedModel, **values) -> AppTest:
    """The Decoding lab with `loaded` offered and chosen, and these widget values from the first run on."""
    available = models.available
    monkeypatch.setattr(models, "available", lambda advice="": available(advice) + [loaded])
    at.session_state["learn_model"] = loaded.key
    for key, value in values.items():
        at.session_state[key] = value
    at.switch_page(PAGE.format("decoding_lab")).run(timeout=30)   # the bound holds a click to seconds
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_decoding_lab_refuses_a_window_model_at_the_caps_a_long_prime_and_computes_nothing(visitor, monkeypatch,
                                                                                           window_at_caps):
    # Before the bound: 500 characters of prime, re-read through 3 x 512 for each of 200 characters x 5
    # strategies, ran for minutes (and on after the tab closed).
    at = with_model(visitor(), monkeypatch, window_at_caps, dl_prime="the cat sat. " * 38, dl_length=200)
    assert [w.value for w in at.warning] == [
        "With this model (a 512-character window, 3 × 512) the lab cannot write 10 characters per strategy with "
        "this prime and these strategies here, to keep each click within about 6 seconds of the server's time; "
        "shorten the prime or the length, or pick fewer strategies."]
    assert "dl_results" not in at.session_state and not at.code and not at.dataframe


@pytest.mark.slow
def test_decoding_lab_shrinks_a_window_models_length_to_the_budget_and_leaves_the_demo_at_its_caps(
        visitor, monkeypatch, window_at_caps):
    at = with_model(visitor(), monkeypatch, window_at_caps, dl_prime="The ", dl_length=200,
                    dl_strategies=["greedy"])
    shape = workload.Shape.of(window_at_caps.engine)
    most = workload.largest_within(lambda n: workload.write_s(shape, 4, n) + workload.score_s(shape, 4 + n, n), 200)
    assert 10 <= most < 200
    assert [i.value for i in at.info] == [
        f"With this model (a 512-character window, 3 × 512) the lab writes at most {most} characters per strategy "
        "with this prime and these strategies here, to keep each click within about 6 seconds of the server's "
        "time; shorten the prime or the length, or pick fewer strategies."]
    greedy = sampling.write(window_at_caps.engine, encode_prime(window_at_caps.vocab, "The ")[0], most,
                            DecodeConfig("greedy"), np.random.default_rng(0))[0]
    assert at.code[0].value == "The " + window_at_caps.vocab.decode(greedy)
    # A model that carries its state, at every cap of the lab: all six strategies, as asked, no line about it.
    at = open_page(visitor(), "decoding_lab", "shipped")
    at.text_input(key="dl_prime").input("the cat sat on the mat. " * 20 + "the cat sat on the m").run()   # 500
    at.slider(key="dl_length").set_value(600)
    at.multiselect(key="dl_strategies").set_value(list(sampling.STRATEGIES))
    at.slider(key="dl_beam_width").set_value(16).run()
    assert not at.exception and not at.warning and not at.info
    assert [len(c.value) for c in at.code] == [500 + 600] * 6


def test_a_learn_pages_work_stops_when_streamlit_asks_its_run_to_stop_or_give_way():
    from streamlit.runtime.scriptrunner_utils.script_requests import RerunData, ScriptRequests

    from app.learn import common

    requests = ScriptRequests()
    assert not common._run_ends(requests)                           # running, nothing asked
    requests.request_rerun(RerunData(fragment_id="badge"))          # a fragment's timer: it waits for the run
    assert not common._run_ends(requests)
    requests.request_rerun(RerunData())                             # the visitor changed a widget
    assert common._run_ends(requests)
    stopped = ScriptRequests()
    stopped.request_stop()                                          # the session is shutting down
    assert common._run_ends(stopped)
    assert common.should_stop()() is False                          # outside a page run: nothing to watch


# --- Guess the next character -------------------------------------------------------------------

def guess(at: AppTest, char: str) -> AppTest:
    at.text_input(key="guess_input").input(char)
    next(b for b in at.button if b.label == "Guess").click().run()
    assert not at.exception
    return at


def test_guess_game_rules_out_a_wrong_guess_and_advances_on_the_right_one(visitor):
    at = open_page(visitor(), "guess_game", "shipped")
    assert at.title[0].value == "Guess the next character"
    game = at.session_state["guess_game"]
    position = game.pos
    answer = game.passage[position]
    wrong = next(c for c in "qzxjk" if c != answer)
    guess(at, wrong)
    assert any(m.value == f"**Ruled out:** {wrong}" for m in at.markdown)
    assert at.session_state["guess_game"].pos == position
    guess(at, answer)
    game = at.session_state["guess_game"]
    assert game.pos > position and game.score.count == 1
    assert game.score.records[0].guesses == 2
    assert next(m for m in at.metric if m.label == "Characters played").value == "1"
    assert not any(m.value.startswith("**Ruled out:**") for m in at.markdown)
    assert at.get("vega_lite_chart")   # the model's distribution, revealed


def test_guess_game_give_up_and_new_passage(visitor):
    at = open_page(visitor(), "guess_game", "shipped")
    position = at.session_state["guess_game"].pos
    at.button(key="guess_give_up").click().run()
    game = at.session_state["guess_game"]
    assert game.pos > position and game.score.gave_up == 1
    assert any("you gave up" in m.value for m in at.markdown)
    at.button(key="guess_new").click().run()
    assert at.session_state["guess_game"].score.count == 0


# --- The Train page's reference lines, and this session's model on the Learn pages ---------------

def test_the_train_pages_loss_chart_has_baseline_reference_lines(visitor):
    at = train_here(choose_text(visitor()))
    chart = at.get("vega_lite_chart")[0]
    corpus = at.session_state["job"].corpus
    train_ids, val_ids = corpus.split()
    fitted = fit_baselines(train_ids, val_ids, len(corpus.vocab))
    best = min((b for b in fitted if b.order >= 2), key=lambda b: b.val_nats)
    rules = next(frame for frame in chart_data(chart) if "reference" in frame)
    assert list(rules["reference"]) == ["letter frequencies", f"best n-gram ({best.name})"]
    letters = next(b for b in fitted if b.order == 1)
    assert list(rules["bits per character"]) == pytest.approx([letters.val_nats / LN2, best.val_nats / LN2])
    assert "rule" in json.dumps(json.loads(chart.proto.spec))


@pytest.mark.slow
def test_a_model_trained_in_the_session_replays_its_training_and_meets_its_baselines(visitor):
    at = train_here(choose_text(visitor()), minutes=0.35)   # evaluations every 10 s: at least two
    snap = at.session_state["job"].snapshot()
    at = open_page(at, "training_over_time", "trained")
    steps = [step for step, _ in snap.samples]
    assert len(steps) >= 2
    slider = at.select_slider(key="tot_step:trained")
    assert [label.split(" · ")[0] for label in slider.options] == [f"step {step:,}" for step in steps]
    assert slider.value == steps[-1]
    slider.set_value(steps[0]).run()
    assert at.code[0].value == snap.samples[0][1]
    at = open_page(at, "baselines_page", "trained")
    assert any("this session's text" in c.value for c in at.caption)
    assert {"uniform", "5-gram", "LSTM (this model)"} <= set(at.dataframe[0].value["model"])
    at.button(key="bl_write").click().run()
    assert not at.exception
    assert any(m.value.startswith("**Longest copied span:") for m in at.markdown)
