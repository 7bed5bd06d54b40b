"""The Learn defects seen on a teacher's walk through the parts (issue 22), each pinned: a negative zero or a
"1 characters" on a page, an uncertain default prime, a prime with a line break, Shannon's bound explained,
the Decoding lab's conclusions drawn from its own table, Baselines' fit column, and where Windows and
targets takes its text from."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from app import plain
from app.learn import draw, lab
from app.learn.common import EXAMPLE_TEXT
from charlm.engine.decoding import engine_for
from charlm.learn.guessing import GuessScore, shannon_bounds
from charlm.modelfile import checkpoint
from charlm.text import datasets
from charlm.text.corpus import load_corpus
from charlm.units import format_duration, format_fixed

from helpers import APP, open_learn

CHECKPOINTS = Path(APP).parent / "checkpoints"
SHIPPED = checkpoint.load(CHECKPOINTS / "demo.safetensors")
SHIPPED_CHARS = list(SHIPPED.vocab)


def rerun(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def probabilities(engine, chars: list[str], text: str) -> np.ndarray:
    logits = engine.read([chars.index(c) for c in text])[0][0].astype(np.float64)
    p = np.exp(logits - logits.max())
    return p / p.sum()


# --- a number for people never reads -0.00 ------------------------------------------------------

def test_format_fixed_never_writes_a_negative_zero():
    assert format_fixed(-0.0) == "0.00"
    assert format_fixed(-0.004) == "0.00"            # rounds to zero: no sign
    assert format_fixed(-0.006) == "-0.01"           # a real negative keeps it
    assert format_fixed(1.23456, 3) == "1.235"
    assert format_fixed(math.nan) == "–" and format_fixed(None) == "–"


# --- Next-character distribution ---------------------------------------------------------------

def test_a_certain_next_character_reads_0_bits_and_1_character_left():
    stages = [("model", np.array([1.0, 0.0, 0.0])), ("top-k 2", np.array([0.5, 0.5, 0.0]))]
    chart = draw.distribution_chart(["a", "b", "c"], stages, shown=3)
    titles = set(chart.data["stage"])
    assert titles == {"model: 0.00 bits, 1 character left", "top-k 2: 1.00 bits, 2 characters left"}
    assert math.copysign(1.0, draw.entropy_bits(np.array([1.0, 0.0]))) == 1.0


def test_the_default_prime_leaves_the_shipped_model_unsure_of_the_next_character(app_env):
    at = open_learn("next_character")
    prime = at.session_state["next_prime"]
    assert EXAMPLE_TEXT.startswith(prime) and len(prime) >= 20   # the example passage: Nietzsche is not here
    p = probabilities(engine_for(SHIPPED), SHIPPED_CHARS, prime)
    assert p.max() < 0.5   # the old default, its first 40 characters, gave "o" 62%
    table = at.dataframe[0].value.set_index("distribution")
    assert table.loc["model", "its probability"] == pytest.approx(p.max(), abs=1e-6)


def test_the_prime_can_hold_a_line_break(app_env):
    at = open_learn("next_character")
    prime = "The end.\nThe"
    at.text_area(key="next_prime").set_value(prime)
    rerun(at)
    assert at.code[0].value == prime + "▮"   # the line break read as one
    p = probabilities(engine_for(SHIPPED), SHIPPED_CHARS, prime)
    table = at.dataframe[0].value.set_index("distribution")
    assert table.loc["model", "its probability"] == pytest.approx(p.max(), abs=1e-6)


# --- Guess the next character -------------------------------------------------------------------

def test_one_character_played_scores_0_bits_not_a_negative_zero():
    _, upper = shannon_bounds([7])
    assert upper == 0.0 and math.copysign(1.0, upper) == 1.0
    score = GuessScore(10)
    score.add(1, 1, 1.0)
    assert math.copysign(1.0, score.model_bits) == 1.0 and math.copysign(1.0, score.visitor_bits) == 1.0


def test_equal_bounds_for_7_guesses_against_4_are_explained(app_env):
    at = open_learn("guess_game", "shipped")
    game = at.session_state["guess_game"]
    game.score = GuessScore(len(SHIPPED_CHARS))
    game.score.add(7, 4, 0.25)   # you needed 7 guesses; the model ranked the answer 4th
    at.session_state["guess_game"] = game
    rerun(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["You (bits/char)"] == "0.00"
    assert metrics["Model, counted as guesses"] == "0.00"
    assert metrics["Model (bits/char)"] == "2.00"
    captions = [c.value for c in at.caption]
    assert ("Your bound and the model's read the same though you needed 7.00 guesses per character and the "
            "model 4.00: the bound counts how often each number of guesses came up, not how many guesses they "
            "were.") in captions
    bound = next(c for c in captions if c.startswith("Your bits/char, and the model's counted as guesses, is "
                                                     "Shannon's upper bound"))
    assert "−Σ qᵢ log2 qᵢ" in bound and "both score 0 bits" in bound


def test_unequal_bounds_get_no_equal_note(app_env):
    at = open_learn("guess_game", "shipped")
    game = at.session_state["guess_game"]
    game.score = GuessScore(len(SHIPPED_CHARS))
    for guesses, rank in ((1, 1), (2, 1)):   # you: 1 bit; the model, right first time twice: 0 bits
        game.score.add(guesses, rank, 0.5)
    at.session_state["guess_game"] = game
    rerun(at)
    assert {m.label: m.value for m in at.metric}["You (bits/char)"] == "1.00"
    assert not any(c.value.startswith("Your bound and the model's read the same") for c in at.caption)


# --- Decoding lab --------------------------------------------------------------------------------

def test_the_decoding_lab_concludes_from_the_numbers_it_measured():
    # A model for which greedy does not loop: the old fixed sentence said greedy and beam search do.
    rows = [("greedy", -0.512, 0.02, 0.61), ("temperature", -1.734, 0.10, 0.55),
            ("top-k", -1.2, 0.0249, 0.7)]
    assert lab.decoding_findings(rows) == [
        "The most probable text under the model: greedy (-0.512 bits/char); the least: temperature (-1.734).",
        "The most repetition: temperature (10% of 4-grams seen before in the text); the least: greedy and "
        "top-k (2%).",
        "The most distinct 2-grams: top-k (70%); the fewest: temperature (55%).",
        "Here the likeliest text was not the most repetitive one.",
    ]
    rows = [("greedy", -0.3, 0.4, 0.3), ("beam", -0.3001, 0.4, 0.2), ("top-p", -1.5, 0.4, 0.6)]
    assert lab.decoding_findings(rows) == [
        "The most probable text under the model: greedy and beam (-0.300 bits/char); the least: top-p (-1.500).",
        "Every strategy had the same repeated 4-grams (40%).",
        "The most distinct 2-grams: top-p (60%); the fewest: beam (20%).",
    ]
    rows = [("greedy", -0.3, 0.5, 0.3), ("top-k", -1.0, 0.1, 0.6), ("sample", math.nan, math.nan, math.nan)]
    assert lab.decoding_findings(rows)[-1] == ("Here the likeliest text was also the most repetitive (greedy): the "
                                               "likeliest text is not the best one.")
    assert lab.decoding_findings([("greedy", -0.3, 0.5, 0.3)]) == []


def test_the_decoding_labs_closing_lines_agree_with_its_table(app_env):
    at = open_learn("decoding_lab", "shipped")
    at.multiselect(key="dl_strategies").set_value(["greedy", "sample", "top-k"])
    at.slider(key="dl_length").set_value(80)
    rerun(at)
    table = at.dataframe[0].value
    names = [described.split(",")[0] for described in table["strategy"]]   # "top-k, k 20, …": top-k
    assert names == ["greedy", "temperature", "top-k"]
    rows = list(zip(names, table["log-probability (bits/char)"], table["repeated 4-grams"], table["distinct 2-grams"]))
    findings = lab.decoding_findings(rows)
    assert len(findings) >= 3 and findings[0].startswith("The most probable text under the model: ")
    assert plain.escape(" ".join(findings)) in [c.value for c in at.caption]
    assert not any("greedy and beam search score the highest" in c.value for c in at.caption)


# --- Baselines -----------------------------------------------------------------------------------

def test_baselines_fit_column_reads_a_time_for_every_row(app_env):
    at = open_learn("baselines_page", "shipped")   # Nietzsche is not here: uniform and the LSTM
    table = at.dataframe[0].value
    history = [row for row in SHIPPED.history if "val_loss" in row]
    best = min(history, key=lambda row: row["val_loss"])
    assert list(table["model"]) == ["uniform", "LSTM (this model)"]
    assert list(table["fit"]) == ["0.00 s", f"{format_duration(best['train_s'])} of training"]


# --- Windows and targets -------------------------------------------------------------------------

def test_windows_and_targets_says_where_its_window_moves(app_env):
    at = open_learn("windows_targets", "shipped:python-docs")   # its text, Python's docs, is built in
    corpus = load_corpus(datasets.python_docs(), "python-docs.txt")
    train_ids, _ = corpus.split()
    assert plain.escape(f"The window moves through a passage of the held-out part of the text (characters "
                        f"{len(train_ids) + 1:,} to {len(corpus.text):,}, which the model was validated on and "
                        "never trained on), not through the start of the text.") in [c.value for c in at.caption]
    at.selectbox(key="learn_model").set_value("shipped")   # Nietzsche is not here: the example passage
    rerun(at)
    assert plain.escape("The window moves through an example passage: the model's training text is not at "
                        "hand.") in [c.value for c in at.caption]
