"""Tests for charlm.learn.baselines: uniform, letter frequencies and the smoothed character n-gram."""

import math
import random

import numpy as np
import pytest

from charlm.learn import baselines as baselines_module
from charlm.learn.baselines import NGram, fit_baselines

WORDS = "the river stone light garden walks under over slowly bright quiet morning".split()
CHARS = sorted(set(" ".join(WORDS) + ".\n")) + ["#", "@"]   # "#" and "@" never occur in the texts
VOCAB = len(CHARS)
ORDERS = (0, 1, 2, 3, 4, 5, 6)


def prose_ids(n_chars: int, seed: int) -> np.ndarray:
    """Made-up sentences from a small lexicon, encoded: learnable, and the same kind of text for any seed."""
    rng = random.Random(seed)
    text = ""
    while len(text) < n_chars:
        text += " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 9))).capitalize().lower() + ".\n"
    return np.array([CHARS.index(char) for char in text[:n_chars]], dtype=np.uint8)


TRAIN = prose_ids(20_000, seed=0)
HELD_OUT = prose_ids(4_000, seed=1)


@pytest.fixture(scope="module")
def models():
    return {order: NGram.fit(TRAIN, VOCAB, order) for order in ORDERS}


def test_every_distribution_sums_to_one_and_leaves_nothing_at_zero(models):
    rng = np.random.default_rng(0)
    starts = rng.integers(0, len(TRAIN) - 8, 40)
    contexts = [[], [CHARS.index("#")], list(HELD_OUT[:3])]
    contexts += [list(TRAIN[s:s + rng.integers(1, 8)]) for s in starts]           # seen
    contexts += [list(rng.integers(0, VOCAB, rng.integers(1, 8))) for _ in range(40)]  # mostly never seen
    for order, model in models.items():
        for context in contexts:
            probs = model.probs(context)
            assert probs.shape == (VOCAB,)
            assert probs.sum() == pytest.approx(1.0, abs=1e-12), (order, context)
            assert probs.min() > 0, (order, context)


def test_uniform_costs_ln_of_the_vocabulary_size(models):
    assert models[0].nats_per_char(HELD_OUT) == pytest.approx(math.log(VOCAB), abs=1e-12)
    assert np.allclose(models[0].probs([1, 2, 3]), 1 / VOCAB)


def test_letter_frequencies_score_their_training_text_at_its_letter_entropy(models):
    counts = np.bincount(TRAIN[1:], minlength=VOCAB)
    shares = counts[counts > 0] / counts.sum()
    entropy = float(-(shares * np.log(shares)).sum())
    nats = models[1].nats_per_char(TRAIN)
    # No distribution scores a text below the entropy of its own letter counts; the smoothing costs little.
    assert entropy <= nats < entropy + 1e-3
    assert np.allclose(models[1].probs([]), np.bincount(TRAIN, minlength=VOCAB) / len(TRAIN), atol=1e-4)


def test_higher_orders_predict_held_out_text_better(models):
    nats = [models[order].nats_per_char(HELD_OUT) for order in (0, 1, 2, 3, 5)]
    assert all(better < worse for worse, better in zip(nats, nats[1:])), nats
    assert nats[-1] < 0.6 * nats[1]   # knowing the words is worth far more than knowing the letters


def test_log_probs_agree_with_probs_at_each_position(models):
    for order, model in models.items():
        log_probs = model.log_probs(HELD_OUT[:300])
        assert log_probs.shape == (299,)
        for position in (1, 2, 3, 4, 5, 6, 7, 50, 299):
            expected = math.log(model.probs(HELD_OUT[:position])[HELD_OUT[position]])
            assert log_probs[position - 1] == pytest.approx(expected, abs=1e-12), (order, position)
        assert model.nats_per_char(HELD_OUT[:300]) == pytest.approx(-log_probs.mean())


def test_a_long_enough_context_makes_a_periodic_text_near_certain():
    period = [0, 1, 0, 2, 0, 3, 1, 1]   # after a 0 comes 1, 2 or 3: one character of context is not enough
    ids = np.array(period * 500, dtype=np.uint8)
    letters, five_gram = NGram.fit(ids, 5, 1), NGram.fit(ids, 5, 5)
    held_out = np.array(period * 20, dtype=np.uint8)
    full_context = -five_gram.log_probs(held_out)[4:]   # from the fifth character on, four characters before
    assert full_context.max() < 0.01 and letters.nats_per_char(held_out) > 1.0
    assert five_gram.probs([3, 1, 1, 0])[1] > 0.99


def test_after_an_unseen_context_characters_weigh_by_how_many_contexts_they_follow():
    # Kneser-Ney: "x" is five times as common as "y", but only ever after "a"; "y" follows ten letters.
    text = "ax" * 500 + "".join((letter + "y") * 10 for letter in "bcdefghijk")
    chars = sorted(set(text)) + ["z"]
    ids = np.array([chars.index(char) for char in text], dtype=np.uint8)
    x, y, z = chars.index("x"), chars.index("y"), chars.index("z")
    letters, two_gram = NGram.fit(ids, len(chars), 1), NGram.fit(ids, len(chars), 2)
    assert letters.probs([])[x] > 4 * letters.probs([])[y]
    assert two_gram.probs([z])[y] > 4 * two_gram.probs([z])[x]
    assert two_gram.probs([chars.index("a")])[x] > 0.99


def test_writing_with_a_seed_is_reproducible_and_stays_in_the_vocabulary(models):
    model = models[5]
    prime = list(HELD_OUT[:20])
    first = model.write(prime, 200, np.random.default_rng(7), temperature=0.8)
    again = model.write(prime, 200, np.random.default_rng(7), temperature=0.8)
    other = model.write(prime, 200, np.random.default_rng(8), temperature=0.8)
    assert first == again != other
    assert len(first) == 200 and all(0 <= i < VOCAB for i in first)
    # Temperature 0 takes the likeliest character each time.
    greedy = model.write(prime, 30, np.random.default_rng(0), temperature=0)
    context = prime[:]
    for chosen in greedy:
        assert chosen == int(np.argmax(model.probs(context)))
        context.append(chosen)
    assert len(model.write([], 5, np.random.default_rng(0))) == 5
    assert model.write(prime, 0, np.random.default_rng(0)) == []


def test_written_text_resembles_the_training_text(models):
    written = models[5].write(list(HELD_OUT[:30]), 400, np.random.default_rng(1), temperature=0.5)
    text = "".join(CHARS[i] for i in written)
    words = [word for word in text.replace(".", " ").split() if word]
    assert sum(word in WORDS for word in words) > 0.8 * len(words)


def test_fit_baselines_names_and_scores_each_order(monkeypatch):
    ticks = iter(range(0, 100, 2))   # a clock that reads 0, 2, 4, ...: each fit takes 2 "seconds"
    monkeypatch.setattr(baselines_module.time, "perf_counter", lambda: next(ticks))
    baselines = fit_baselines(TRAIN, HELD_OUT, VOCAB)
    assert [b.name for b in baselines] == ["uniform", "letter frequencies", "2-gram", "3-gram", "5-gram"]
    assert [b.order for b in baselines] == [0, 1, 2, 3, 5]
    for baseline in baselines:
        assert baseline.val_nats == pytest.approx(baseline.model.nats_per_char(HELD_OUT))
        assert baseline.fit_s == 2   # the time around counting alone, one clock reading before and one after


@pytest.mark.parametrize("call, message", [
    (lambda: NGram.fit(TRAIN, VOCAB, -1), "order must be 0 or more"),
    (lambda: NGram.fit(TRAIN, VOCAB, 2.5), "order must be a whole number"),
    (lambda: NGram.fit(TRAIN, 3, 2), r"ids must lie in \[0, 3\)"),
    (lambda: NGram.fit(np.array([], dtype=np.uint8), VOCAB, 3), "the text is empty"),
    (lambda: NGram.fit(TRAIN.astype(float), VOCAB, 2), "whole numbers"),
    (lambda: NGram.fit(TRAIN, VOCAB, 40), "too high"),
    (lambda: NGram.fit(TRAIN, VOCAB, 2).probs([VOCAB]), "ids must lie in"),
    (lambda: NGram.fit(TRAIN, VOCAB, 2).nats_per_char(TRAIN[:1]), "at least two characters"),
    (lambda: NGram.fit(TRAIN, VOCAB, 2).write([0], 5, np.random.default_rng(0), temperature=-1), "temperature"),
])
def test_bad_input_is_refused_with_a_clear_message(call, message):
    with pytest.raises(ValueError, match=message):
        call()
