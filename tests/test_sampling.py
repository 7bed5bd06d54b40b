"""Tests for charlm.engine.sampling's writing loop and its random numbers (the filters are tested in test_decoding)."""

import numpy as np
import pytest

from charlm.engine import sampling
from charlm.engine.sampling import DecodeConfig, uniforms, write_ids
from charlm.workload import Stopped

VOCAB = 5


def counter_step(ids: np.ndarray, state: int):
    """A stand-in model: always most sure of (last id + 1) mod VOCAB; the state counts steps."""
    logits = np.full((len(ids), VOCAB), -5.0, dtype=np.float32)
    logits[np.arange(len(ids)), (ids + 1) % VOCAB] = 5.0
    return logits, state + 1


def start(batch: int = 1) -> np.ndarray:
    return counter_step(np.zeros(batch, dtype=np.int64), 0)[0]   # the first character after id 0


def test_greedy_follows_the_model_and_steps_once_per_character_after_the_first():
    seen = {}

    def step(ids, state):
        logits, state = counter_step(ids, state)
        seen["steps"] = state
        return logits, state

    ids = write_ids(step, start(2), 0, 7, DecodeConfig("greedy"), np.random.default_rng(0))
    assert ids == [[1, 2, 3, 4, 0, 1, 2]] * 2
    assert seen["steps"] == 6


def test_on_ids_streams_every_few_characters_and_can_stop_the_loop():
    calls = []

    def on_ids(out):
        calls.append(len(out[0]))
        return len(out[0]) < 8

    ids = write_ids(counter_step, start(), 0, 20, DecodeConfig("greedy"), np.random.default_rng(0), on_ids, every=4)
    assert calls == [4, 8]
    assert len(ids[0]) == 8


def test_uniforms_come_in_the_order_of_one_draw_per_step():
    blocks = uniforms(np.random.default_rng(3), rows=2, block=4)
    from_blocks = np.concatenate([next(blocks) for _ in range(10)])          # crosses two block boundaries
    one_at_a_time = np.random.default_rng(3)
    np.testing.assert_array_equal(from_blocks, np.concatenate([one_at_a_time.random((2, 1)) for _ in range(10)]))


def test_the_same_seed_writes_the_same_and_a_hot_sample_leaves_the_model_sometimes():
    cfg = DecodeConfig("sample", temperature=3.0)
    write = lambda seed: write_ids(counter_step, start(), 0, 200, cfg, np.random.default_rng(seed))[0]
    assert write(1) == write(1)
    assert write(1) != write(2)
    follows = sum((b - a) % VOCAB == 1 for a, b in zip(write(1), write(1)[1:]))
    assert 0 < follows < 199      # mostly the model's choice, not always


def test_should_stop_ends_the_loop_within_a_character_and_keeps_nothing():
    steps, asked = [], []

    def step(ids, state):
        steps.append(1)
        return counter_step(ids, state)

    def should_stop():
        asked.append(1)
        return len(asked) > 3                  # the visitor leaves while the 4th character is due

    with pytest.raises(Stopped):
        write_ids(step, start(), 0, 1_000, DecodeConfig("greedy"), np.random.default_rng(0), should_stop=should_stop)
    assert len(steps) == 3 and len(asked) == 4   # three characters written and stepped, then no more work


def test_fresh_seeds_do_not_follow_the_shared_generators():
    # A training start used to reseed Python's generator; two visitors arriving after it drew the same seed.
    import random
    seeds = []
    for _ in range(2):
        random.seed(1234)
        np.random.seed(1234)
        seeds.append(sampling.fresh_seed())
    assert seeds[0] != seeds[1]
    assert all(0 <= s < 2**31 for s in seeds)
