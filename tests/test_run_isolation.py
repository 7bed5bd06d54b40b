"""Tests that a training run draws from generators of its own: it leaves the process-wide random state (Python's,
numpy's, torch's) as it found it, and its weights depend on its seed alone, whether or not another run trains
beside it in another thread (as two visitors' runs do inside the web server)."""

import random
import re
import threading

import numpy as np
import torch

from charlm.modelfile import checkpoint as ckpt_io
from charlm.nn.model import CharLSTM
from charlm.config import ModelConfig
from charlm.text.corpus import load_corpus
from charlm.train.trainer import train

from helpers import configs, made_up_text, new_visitor, poll

# Every dropout the model has: on the embeddings, between the two layers, on the outputs, on the recurrent
# weights (weight drop) and on whole characters (embedding dropout).
EVERY_DROPOUT = dict(num_layers=2, dropout=0.3, weight_drop=0.3, embed_drop=0.2)


def corpus(tmp_path):
    return load_corpus(made_up_text(6_000))


def run(text, seed: int, out=None, max_steps: int = 25, stop=None, on_progress=None):
    """A short run with every dropout, in fp32 (no probe, whose timing could choose otherwise)."""
    model_cfg, cfg = configs(text, model=EVERY_DROPOUT, seed=seed, max_steps=max_steps, amp=False,
                             eval_interval_s=1e9)
    return train(text, model_cfg, cfg, out=out, stop=stop, on_progress=on_progress)


def weights(path) -> dict:
    return ckpt_io.load(path).state_dict


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert np.array_equal(a[name], b[name]), f"{name} differs"


def global_states():
    return random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state().clone()


def test_a_run_leaves_the_process_wide_random_state_as_it_found_it(tmp_path):
    text = corpus(tmp_path)
    random.seed(123)
    np.random.seed(456)
    torch.manual_seed(789)
    before = global_states()
    run(text, seed=5, out=tmp_path / "m.safetensors")
    after = global_states()
    assert after[0] == before[0]
    assert np.array_equal(after[1], before[1])
    assert torch.equal(after[2], before[2])


def test_building_a_model_draws_nothing_from_torch_and_its_generator_decides_the_weights():
    before = torch.get_rng_state().clone()
    config = ModelConfig(vocab_size=11, hidden_size=12, num_layers=2, embed_dim=6)
    first = CharLSTM(config, torch.Generator().manual_seed(4)).state_dict()
    assert torch.equal(torch.get_rng_state(), before)
    again = CharLSTM(config, torch.Generator().manual_seed(4)).state_dict()
    other = CharLSTM(config, torch.Generator().manual_seed(5)).state_dict()
    assert all(torch.equal(first[name], again[name]) for name in first)
    assert not torch.equal(first["lstm.weight_hh_l0"], other["lstm.weight_hh_l0"])
    # The distributions of before: input weights within +-1/sqrt(hidden), the forget gate's bias 1.
    assert first["lstm.weight_ih_l1"].abs().max() <= 12 ** -0.5
    assert torch.equal(first["lstm.bias_ih_l0"][12:24], torch.ones(12))


def test_the_same_seed_twice_gives_the_same_weights_and_another_seed_others(tmp_path):
    text = corpus(tmp_path)
    run(text, seed=1, out=tmp_path / "a.safetensors")
    run(text, seed=1, out=tmp_path / "b.safetensors")
    run(text, seed=2, out=tmp_path / "c.safetensors")
    assert_same_weights(weights(tmp_path / "a.safetensors"), weights(tmp_path / "b.safetensors"))
    assert not np.array_equal(weights(tmp_path / "a.safetensors")["head.weight"],
                              weights(tmp_path / "c.safetensors")["head.weight"])


def test_a_run_gives_the_same_weights_whether_or_not_another_trains_beside_it(tmp_path):
    text = corpus(tmp_path)
    run(text, seed=1, out=tmp_path / "alone.safetensors")

    # Another run (another seed) starts first in a thread of its own, and trains until this one has finished:
    # every step of this run is taken while the other steps (and drops) too.
    stop, other_steps, failures = threading.Event(), [], []

    def other():
        try:
            run(text, seed=2, max_steps=100_000, stop=stop,
                on_progress=lambda event: other_steps.append(event.step) if event.kind == "step" else None)
        except Exception as err:   # said below, in the test's own thread
            failures.append(err)

    thread = threading.Thread(target=other)
    thread.start()
    try:
        poll(lambda: other_steps or failures, what="the other run's first step")
        beside = {}
        mine = threading.Thread(target=lambda: beside.update(result=run(text, seed=1,
                                                                        out=tmp_path / "beside.safetensors")))
        mine.start()
        mine.join()
        assert thread.is_alive() and not failures   # the other run was still training when this one ended
    finally:
        stop.set()
        thread.join()
    assert not failures
    assert beside["result"].steps == 25
    assert_same_weights(weights(tmp_path / "alone.safetensors"), weights(tmp_path / "beside.safetensors"))


def first_view_seed() -> int:
    """The seed of the sample a fresh visitor's first view of Generate opens with."""
    line = next(c.value for c in new_visitor().caption if "written as the page opened" in c.value)
    return int(re.search(r"seed (\d+)", line)[1])


def test_fresh_visitors_seeds_do_not_repeat_after_each_training_start(app_env, tmp_path):
    # A start used to seed the process-wide generators, so the visitor after each start (same seed) drew the
    # same "random" seed.
    text = corpus(tmp_path)
    seeds = []
    for attempt in range(2):
        stop = threading.Event()
        started = threading.Event()
        runner = threading.Thread(target=run, args=(text, 7), daemon=True,
                                  kwargs=dict(max_steps=10_000, stop=stop, on_progress=lambda p: started.set()))
        runner.start()
        poll(started.is_set, deadline_s=60, what="the run's first progress")
        seeds.append(first_view_seed())
        stop.set()
        runner.join(60)
    assert seeds[0] != seeds[1]
