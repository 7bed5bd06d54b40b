"""Tests for charlm.workload: the up-front estimate of a Learn click's cost, and the stop check."""

import pytest

from charlm import workload
from charlm.workload import Shape, Stopped


@pytest.mark.parametrize("window", [None, 1, 7, 512])
@pytest.mark.parametrize("before, count", [(1, 0), (1, 30), (5, 3), (6, 600), (700, 10)])
def test_reads_counts_the_characters_stepped_as_the_engine_steps_them(window, before, count):
    shape = Shape(layers=1, hidden=8, vocab=5, window=window)
    stepped = sum(min(window, before + i) if window else 1 for i in range(count))
    assert shape.reads(before, count) == stepped


def test_largest_within_finds_the_last_size_that_fits():
    assert workload.largest_within(lambda n: n * 0.5, 100, budget=3.0) == 6
    assert workload.largest_within(lambda n: n * 0.5, 5, budget=3.0) == 5
    assert workload.largest_within(lambda n: 4.0 + n, 100, budget=3.0) == 0


def test_a_window_model_at_the_caps_costs_a_hundred_times_a_carried_one():
    caps = Shape(layers=3, hidden=512, vocab=85, window=512)
    demo = Shape(layers=1, hidden=384, vocab=85)             # checkpoints/demo.safetensors
    assert workload.write_s(caps, 500, 200) > 60                          # a minute and more
    assert workload.write_s(demo, 500, 600) + workload.score_s(demo, 1100, 600) < workload.BUDGET_S / 5
    assert workload.write_s(caps, 500, 200) > 100 * workload.write_s(Shape(3, 512, 85), 500, 200)
    assert caps.describe() == "a 512-character window, 3 × 512" and demo.describe() == "1 × 384, carrying its state"


def test_check_raises_stopped_only_when_asked():
    workload.check(None)
    workload.check(lambda: False)
    with pytest.raises(Stopped):
        workload.check(lambda: True)


def test_the_shipped_2017_model_at_the_decoding_labs_defaults_fits_the_budget():
    seed_2017 = Shape(layers=1, hidden=256, vocab=85, window=100)   # checkpoints/seed-2017.safetensors
    strategies = 5                                                  # the lab's default for a window model: no beam
    cost = strategies * (workload.write_s(seed_2017, 4, 200) + workload.score_s(seed_2017, 204, 200))
    assert cost <= workload.BUDGET_S


def test_reading_states_for_the_neuron_explorer_costs_as_neurons_reads_them():
    demo = Shape(layers=1, hidden=384, vocab=85)                # checkpoints/demo.safetensors
    # 20,000 characters (the explorer's ranking) in 32 rows stepped together, well within its third of a click.
    assert workload.states_s(demo, 20_000) < min(workload.BUDGET_S / 3, workload.score_s(demo, 20_000) / 2)
    assert workload.states_s(demo, 4_096) == workload.score_s(demo, 4_096)      # up to here: one stream
    window_128 = Shape(layers=3, hidden=512, vocab=85, window=128)
    assert workload.states_s(window_128, 400) == workload.score_s(window_128, 400) > 3 * workload.BUDGET_S
