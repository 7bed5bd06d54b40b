"""Tests for charlm.learn.guessing: Shannon's bounds from guess counts, worked out by hand."""

import json
import math

import numpy as np
import pytest

from charlm.learn.guessing import Guess, GuessScore, model_rank, shannon_bounds


def small_game() -> GuessScore:
    score = GuessScore(vocab_size=5)
    score.add(1, model_rank=1, model_prob=0.5)
    score.add(1, model_rank=2, model_prob=0.25)
    score.add(2, model_rank=1, model_prob=0.5)
    score.add(None, model_rank=4, model_prob=0.125)   # gave up: counted as 5 guesses
    return score


def test_the_scores_of_a_small_game_match_the_hand_computed_values():
    score = small_game()
    assert score.count == 4 and score.gave_up == 1
    # Visitor: guesses 1, 1, 2, 5 -> q1 = 1/2, q2 = 1/4, q5 = 1/4.
    assert score.visitor_bits == pytest.approx(0.5 * 1 + 0.25 * 2 + 0.25 * 2)
    # lower = sum i (q_i - q_{i+1}) log2 i: i = 2: 2 * 1/4 * 1; i = 4: 4 * (0 - 1/4) * 2; i = 5: 5 * 1/4 * log2 5.
    assert score.visitor_lower_bits == pytest.approx(0.5 - 2 + 1.25 * math.log2(5))
    # Model ranks 1, 2, 1, 4 -> q1 = 1/2, q2 = 1/4, q4 = 1/4.
    assert score.model_rank_bits == pytest.approx(1.5)
    assert score.model_rank_lower_bits == pytest.approx(0.5 - 0.75 * math.log2(3) + 2)
    # -log2 p: 1, 2, 1, 3.
    assert score.model_bits == pytest.approx(7 / 4)
    assert score.visitor_mean_guesses == pytest.approx(9 / 4)
    assert score.model_mean_guesses == pytest.approx(2.0)


def test_always_right_first_time_means_zero_bits():
    score = GuessScore(vocab_size=30)
    for _ in range(10):
        score.add(1, 1, 1.0)
    assert score.visitor_bits == 0 and score.visitor_lower_bits == 0
    assert score.model_rank_bits == 0 and score.model_bits == 0


def test_needing_one_to_four_guesses_equally_often_bounds_the_entropy_by_two_bits():
    lower, upper = shannon_bounds([1, 2, 3, 4] * 5)
    assert upper == pytest.approx(2.0)
    # q_i = 1/4 for i = 1..4: only i = 4 has q_i > q_{i+1}: 4 * 1/4 * log2 4 = 2.
    assert lower == pytest.approx(2.0)


def test_the_upper_bound_is_never_below_the_lower_one_for_decreasing_guess_shares():
    rng = np.random.default_rng(0)
    for _ in range(20):
        counts = rng.geometric(rng.uniform(0.2, 0.9), size=200)   # fewer guesses are commoner
        counts = np.minimum(counts, 40)
        lower, upper = shannon_bounds(counts)
        assert 0 <= lower <= upper + 1e-12


def test_the_model_rank_is_one_plus_the_strictly_likelier_characters():
    probs = np.array([0.1, 0.4, 0.4, 0.05, 0.05])
    assert model_rank(probs, 1) == 1 and model_rank(probs, 2) == 1   # a tie counts in the model's favour
    assert model_rank(probs, 0) == 3
    assert model_rank(probs, 4) == 4


def test_a_game_survives_a_round_trip_through_plain_data():
    score = small_game()
    data = json.loads(json.dumps(score.to_dict()))
    again = GuessScore.from_dict(data)
    assert again.records == score.records
    assert again.visitor_bits == score.visitor_bits and again.model_bits == score.model_bits
    assert again.records[-1] == Guess(None, 4, 0.125)


def test_an_empty_game_scores_nan():
    score = GuessScore(vocab_size=10)
    for value in (score.visitor_bits, score.model_rank_bits, score.model_bits, score.visitor_mean_guesses):
        assert math.isnan(value)
    assert score.count == 0


@pytest.mark.parametrize("guesses, rank, prob, message", [
    (0, 1, 0.5, "guesses must be a whole number from 1 to 5"),
    (6, 1, 0.5, "guesses must be"),
    (2.0, 1, 0.5, "guesses must be"),
    (1, 0, 0.5, "model_rank must be"),
    (1, True, 0.5, "model_rank must be"),
    (1, 1, 0.0, "model_prob must be a probability"),
    (1, 1, 1.5, "model_prob must be"),
    (1, 1, float("nan"), "model_prob must be"),
])
def test_a_bad_record_is_refused_with_a_clear_message(guesses, rank, prob, message):
    score = GuessScore(vocab_size=5)
    with pytest.raises(ValueError, match=message):
        score.add(guesses, rank, prob)
    assert score.count == 0


def test_bad_saved_data_is_refused_with_a_clear_message():
    data = small_game().to_dict()
    data["model_ranks"] = data["model_ranks"][:-1]
    with pytest.raises(ValueError, match="not a saved guessing game"):
        GuessScore.from_dict(data)
    with pytest.raises(ValueError, match="not a saved guessing game"):
        GuessScore.from_dict({"vocab_size": 5})
    with pytest.raises(ValueError, match="vocab_size must be"):
        GuessScore(vocab_size=0)
