"""Tests for charlm.learn.neurons: the text features on hand-made strings, activations read in rows as the whole
stream reads them, a unit ranked for quotes on one text following quotes on another, and writing with
units held."""

import dataclasses
import random
import textwrap
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch

from charlm.modelfile import format as modelfile
from charlm.learn import neurons
from charlm.engine import sampling
from charlm.engine.arrays import ArrayLSTM
from charlm.engine.decoding import engine_for
from charlm.nn.model import CharLSTM, ModelConfig
from charlm.learn.neurons import FEATURES, activations, clamped_write, correlations, rank_units, text_features
from charlm.engine.sampling import DecodeConfig
from charlm.workload import Stopped

SHIPPED = Path(__file__).resolve().parents[1] / "checkpoints" / "demo.safetensors"


@pytest.fixture(scope="module")
def shipped() -> tuple[ArrayLSTM, list[str]]:
    """The shipped model (Nietzsche, 1 x LSTM(384)) as the app loads it."""
    read = modelfile.read(SHIPPED)
    return ArrayLSTM.from_weights(read.config.to_dict(), read.weights, read.window), read.vocab


# Sentences written for these tests, some with quoted passages: one set to rank units on, another,
# with other words and other quotations, to check the chosen unit on.
RANKING = [
    'The philosopher said that "truth is a woman" and then fell silent for a long time.',
    'Every age has its own "virtue", and every virtue has its price.',
    'What they call "progress" is often only a change of masters.',
    'He wrote in the margin: "this too shall pass, but not quietly."',
    'There is no morality in itself, only a moral reading of things.',
    'The old question returns: "why do we want the truth at all?"',
    'Men of learning rarely laugh, and when they do it is at the wrong moment.',
    'A people is a detour of nature to arrive at six or seven great men.',
    'They spoke of "the good" as if it were a thing one could hold.',
    'Whoever fights monsters should take care not to become one himself.',
    'The scholar answered, "I have read everything and believe nothing."',
    'In every will there is a command, and in every command a will.',
]
HELD_OUT = [
    'She called it "the art of forgetting" and practised it daily.',
    'The crowd cried out "long live the king" and did not mean it.',
    'Nothing is more dangerous than a man who is certain of himself.',
    'One may ask whether "freedom" is not merely a new kind of chain.',
    'The poet said, "we have art so that we do not perish of the truth."',
    'Our deepest feelings are often the least honest ones.',
    'What is done out of love always takes place beyond good and evil.',
    'They named their fear "prudence" and their weakness "patience".',
    'The teacher asked, "what does it mean to be noble today?"',
    'Every great thought begins as a misunderstanding.',
    'He said only "perhaps" and left the question open for another century.',
    'A thinker needs solitude as a plant needs light.',
]


def passage(sentences: list[str], n_chars: int, seed: int) -> str:
    """Sentences drawn at random into lines of 70 characters, as the shipped model's text is laid out."""
    rng = random.Random(seed)
    words: list[str] = []
    while sum(len(word) + 1 for word in words) < n_chars:
        words += rng.choice(sentences).split()
    return textwrap.fill(" ".join(words), width=70) + "\n"


# --- features ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("feature, text, expected", [
    ("inside quotes", 'a "bc" d', [0, 0, 1, 1, 1, 0, 0, 0]),          # the opening mark is inside, the closing not
    ("inside quotes", "x “y” z", [0, 0, 1, 1, 0, 0, 0]),
    ("inside quotes", '"a"b"', [1, 1, 0, 0, 1]),                       # each straight quote opens or closes
    ("inside brackets", "f(a[b]) )c", [0, 1, 1, 1, 1, 1, 0, 0, 0, 0]),  # nested; a stray closer opens nothing
    ("inside brackets", "{x}", [1, 1, 0]),
    ("position in line", "ab\ncd\n\ne", [1, 2, 0, 1, 2, 0, 0, 1]),
    ("start of a word", "I'm 2x ok", [1, 0, 1, 0, 0, 1, 0, 1, 0]),
    ("inside a number", "a1.25b 7", [0, 1, 0, 1, 1, 0, 0, 1]),
])
def test_text_features_of_small_strings_are_exactly_as_described(feature, text, expected):
    values = text_features(text)[feature]
    assert values.dtype == np.float64
    np.testing.assert_array_equal(values, expected)


def test_every_feature_is_described_and_computed():
    assert list(FEATURES) == ["inside quotes", "inside brackets", "position in line", "start of a word",
                              "inside a number"]
    assert set(text_features("ab")) == set(FEATURES)
    assert all(len(v) == 0 for v in text_features("").values())


# --- activations --------------------------------------------------------------------------------------

@pytest.mark.slow
def test_a_long_text_read_in_rows_gives_the_states_of_reading_it_whole(shipped):
    engine, chars = shipped
    text = passage(RANKING + HELD_OUT, 9000, seed=2)
    ids = [chars.index(c) for c in text]
    _, h, c = engine.trace(ids)                                  # one stream, exact
    assert len(ids) > 4096                                       # so activations reads it in rows
    np.testing.assert_allclose(activations(engine, ids, "h"), h, atol=1e-4)
    np.testing.assert_allclose(activations(engine, ids, "c"), c, atol=1e-4)


def test_a_window_models_state_at_each_character_is_the_one_after_rereading_its_window():
    torch.manual_seed(0)
    model = CharLSTM(ModelConfig(vocab_size=9, hidden_size=16, num_layers=2, input_mode="scaled_index", dropout=0.0))
    window = 6
    engine = engine_for(model, window)
    ids = np.random.default_rng(0).integers(0, 9, 300)          # more windows than are re-read at once
    h, c = neurons.states(engine, ids)
    assert h.shape == c.shape == (300, 2, 16)
    for t in range(300):
        _, state = engine.reread(ids[max(0, t - window + 1):t + 1][None])
        for layer, (h_t, c_t) in enumerate(state):
            np.testing.assert_allclose(h[t, layer], h_t[0], atol=1e-6)
            np.testing.assert_allclose(c[t, layer], c_t[0], atol=1e-6)


def test_activations_refuse_an_unknown_kind(shipped):
    with pytest.raises(ValueError, match="kind"):
        activations(shipped[0], [1, 2, 3], "x")


# --- ranking ------------------------------------------------------------------------------------------

def test_a_unit_ranked_for_inside_quotes_follows_quotes_in_text_it_was_not_ranked_on(shipped):
    engine, chars = shipped
    ranking, held_out = passage(RANKING, 6000, seed=0), passage(HELD_OUT, 6000, seed=1)
    best = rank_units(engine, chars, ranking, "inside quotes", kind="both", top=5)[0]
    ids = [chars.index(c) for c in held_out]
    every_unit = activations(engine, ids, best.kind)[:, best.layer]                    # (T, hidden)
    r = correlations(every_unit, text_features(held_out)["inside quotes"])
    chosen = abs(r[best.unit])
    # Measured: about 0.55 for the shipped model's cell 26, against a median unit's 0.05.
    assert chosen > 0.4
    assert chosen > 5 * np.median(np.abs(r))
    assert chosen >= np.quantile(np.abs(r), 0.99)
    assert np.sign(r[best.unit]) == np.sign(best.correlation)                        # and the same way round


def test_ranked_units_come_best_first_with_the_correlation_of_their_own_activations(shipped):
    engine, chars = shipped
    text = passage(RANKING, 1500, seed=3)
    ranked = rank_units(engine, chars, text, "start of a word", kind="h", top=6)
    assert len(ranked) == 6 and all(unit.kind == "h" for unit in ranked)
    assert [abs(u.correlation) for u in ranked] == sorted((abs(u.correlation) for u in ranked), reverse=True)
    _, h, _ = engine.trace([chars.index(c) for c in text])
    feature = text_features(text)["start of a word"]
    for unit in ranked:
        assert unit.correlation == pytest.approx(np.corrcoef(h[:, unit.layer, unit.unit], feature)[0, 1], abs=1e-6)
    every = np.abs(correlations(h[:, 0], feature))
    assert abs(ranked[0].correlation) == pytest.approx(every.max(), abs=1e-9)


def test_ranking_both_kinds_mixes_outputs_and_cells_by_strength(shipped):
    engine, chars = shipped
    text = passage(RANKING, 1500, seed=4)
    both = rank_units(engine, chars, text, "inside quotes", kind="both", top=8)
    by_kind = rank_units(engine, chars, text, "inside quotes", kind="h", top=8) + \
        rank_units(engine, chars, text, "inside quotes", kind="c", top=8)
    assert both == sorted(by_kind, key=lambda u: -abs(u.correlation))[:8]


@pytest.mark.parametrize("feature, text, words", [
    ("inside bananas", "some text", "unknown feature"),
    ("inside quotes", "no quotation marks anywhere in this text", "does not change"),
])
def test_ranking_refuses_what_it_cannot_rank_with_a_message(shipped, feature, text, words):
    engine, chars = shipped
    with pytest.raises(ValueError, match=words):
        rank_units(engine, chars, text, feature)


def test_a_unit_that_never_moves_correlates_zero():
    acts = np.stack([np.arange(5.0), np.full(5, 0.3)], axis=1)
    np.testing.assert_allclose(correlations(acts, np.array([0.0, 1, 2, 3, 4])), [1.0, 0.0])


# --- writing with units held ----------------------------------------------------------------------------

CFG = DecodeConfig("top-p", temperature=0.8)


def test_with_no_units_held_it_writes_what_sampling_writes(shipped):
    engine, chars = shipped
    prime = [chars.index(c) for c in "The philosopher said "]
    expected = sampling.write(engine, prime, 150, CFG, np.random.default_rng(7))[0]
    assert clamped_write(engine, prime, 150, CFG, np.random.default_rng(7), {}) == expected


def test_holding_a_unit_changes_the_written_text(shipped):
    engine, chars = shipped
    prime = [chars.index(c) for c in "The philosopher said "]
    free = clamped_write(engine, prime, 150, CFG, np.random.default_rng(7), {})
    held = clamped_write(engine, prime, 150, CFG, np.random.default_rng(7), {(0, 26): 1.0})
    assert held != free
    assert len(held) == len(free) == 150


def test_a_held_unit_keeps_its_value_while_the_prime_is_read():
    torch.manual_seed(0)
    engine = engine_for(CharLSTM(ModelConfig(vocab_size=9, hidden_size=16, num_layers=2, dropout=0.0)))
    free, _ = engine.read([1, 2, 3])
    held, state = engine.read([1, 2, 3], clamp={(1, 4): 0.7})
    assert state[1][0][0, 4] == np.float32(0.7) and not np.array_equal(free, held)


@pytest.mark.parametrize("prime, clamp, words", [
    ([0], {(1, 0): 0.5}, "no unit 0 in layer 1"),
    ([0], {(0, 384): 0.5}, "no unit 384"),
    ([0], {(0, 2.0): 0.5}, "no unit 2.0"),
    ([0], {(0, 3): float("inf")}, "finite"),
    ([], {}, "at least one character"),
])
def test_writing_with_units_the_model_lacks_or_no_prime_is_refused_with_a_message(shipped, prime, clamp, words):
    engine, chars = shipped
    with pytest.raises(ValueError, match=words):
        clamped_write(engine, prime, 10, CFG, np.random.default_rng(0), clamp)


# --- stopping midway -----------------------------------------------------------------------------

def counting_steps(engine: ArrayLSTM) -> list[int]:
    """Wrap the engine's one-character step through its layers: -> the list of rows stepped, one per step."""
    steps, real = [], engine._layers

    def counted(ids, state, clamp=None):
        steps.append(len(ids))
        return real(ids, state, clamp)

    engine._layers = counted
    return steps


def stop_on_ask(n: int) -> tuple[list[int], Callable[[], bool]]:
    """A should_stop that says stop from its n-th ask on, and the record of its asks."""
    asked = []
    return asked, lambda: asked.append(1) or len(asked) >= n


def test_holding_a_unit_and_writing_with_a_window_model_stops_when_asked():
    torch.manual_seed(0)
    model = CharLSTM(ModelConfig(vocab_size=9, hidden_size=16, num_layers=2, input_mode="scaled_index", dropout=0.0))
    engine = engine_for(model, 32)
    steps = counting_steps(engine)
    asked, should_stop = stop_on_ask(4)
    with pytest.raises(Stopped):
        clamped_write(engine, [1, 2, 3], 200, CFG, np.random.default_rng(0), {(1, 4): 0.5}, should_stop)
    assert len(asked) == 4                       # asked before each character, stopped at the 4th
    assert len(steps) == 3 + 4 + 5 + 6           # the prime's re-read, then 3 characters' windows (of 200 to write)


# Carried: 32 rows stepped together, asked every 16 steps. Window: its first 64 characters as a stream (asked 4
# times), then 9,000 windows re-read 256 at a time, asked every 16 steps: stopped 16 steps into the first chunk.
@pytest.mark.parametrize("window, asks, steps_taken", [(None, 2, 16), (64, 6, 64 + 16)])
def test_reading_states_for_ranking_stops_midway_when_asked(shipped, window, asks, steps_taken):
    engine, chars = shipped
    engine = dataclasses.replace(engine, window=window)     # the same weights, read as a window model
    text = passage(RANKING + HELD_OUT, 9000, seed=2)
    steps = counting_steps(engine)
    asked, should_stop = stop_on_ask(asks)
    with pytest.raises(Stopped):
        rank_units(engine, chars, text, "inside quotes", should_stop=should_stop)
    assert len(asked) == asks and len(steps) == steps_taken
