"""Tests for the engines: the numpy LSTM (charlm.engine.arrays) matches CharLSTM, carried or re-reading a window,
traces and clamps, and needs no torch; torch's TorchEngine gives the same logits."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from charlm.modelfile import checkpoint as ckpt_io
from charlm.modelfile import format as modelfile
from charlm.engine.arrays import ArrayLSTM
from charlm.engine.decoding import engine_for
from charlm.nn.engine import TorchEngine
from charlm.nn.model import CharLSTM, ModelConfig
from charlm.workload import Stopped

REPO = Path(__file__).resolve().parents[1]
VOCAB = 11


def make_model(**overrides) -> CharLSTM:
    torch.manual_seed(0)
    config = dict(vocab_size=VOCAB, hidden_size=20, num_layers=2, embed_dim=6, dropout=0.0)
    return CharLSTM(ModelConfig(**{**config, **overrides})).eval()


def as_arrays(model: CharLSTM) -> ArrayLSTM:
    weights = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    return ArrayLSTM.from_weights(model.config.to_dict(), weights)


@pytest.mark.parametrize("overrides", [{}, dict(num_layers=1), dict(num_layers=1, input_mode="scaled_index")])
def test_array_lstm_gives_charlstm_logits_at_every_step(overrides):
    model = make_model(**overrides)
    ids = torch.randint(0, VOCAB, (3, 15), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected, _ = model(ids)                                   # (batch, seq, vocab)
    arrays = as_arrays(model)
    state = arrays.init_state(3)
    for t in range(ids.shape[1]):
        logits, state = arrays.step(ids[:, t].numpy(), state)
        np.testing.assert_allclose(logits, expected[:, t].numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("layers", [1, 2])
def test_a_window_model_in_numpy_gives_what_rereading_with_charlstm_gives(layers):
    model = make_model(input_mode="scaled_index", num_layers=layers)
    window = 5
    engine = ArrayLSTM.from_weights(model.config.to_dict(), {k: v.numpy() for k, v in model.state_dict().items()},
                                    window)
    rows = np.random.default_rng(3).integers(0, VOCAB, (3, 12))        # three rows, twelve characters each
    logits, state = engine.read([4, 2], batch=3)                         # a prime shorter than the window
    history = np.array([[4, 2]] * 3)
    for t in range(rows.shape[1]):
        with torch.no_grad():
            expected, _ = model(torch.from_numpy(history[:, -window:]))   # from a zero state, every time
        np.testing.assert_allclose(logits, expected[:, -1].numpy(), rtol=1e-4, atol=1e-5)
        logits, state = engine.step(rows[:, t], state)
        history = np.concatenate([history, rows[:, t:t + 1]], axis=1)
    assert state.shape == (3, window)                                    # it holds the window, not the whole text


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("overrides, window", [({}, None), (dict(num_layers=1, input_mode="scaled_index"), 4)])
def test_torch_engine_gives_the_numpy_engines_logits(overrides, window, dtype):
    model = make_model(**overrides)
    numpy_engine = engine_for(model, window)
    torch_engine = TorchEngine(model.to(dtype), window)      # what a GPU model gets; here on the CPU
    ids = np.random.default_rng(1).integers(0, VOCAB, (4, 9))
    rows = np.array([0, 0, 2, 3])                   # a beam's reordering: repeated and dropped rows
    expected, numpy_state = numpy_engine.read([1, 5, 7], batch=4)
    logits, torch_state = torch_engine.read([1, 5, 7], batch=4)
    for t in range(ids.shape[1]):
        np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-5)
        assert isinstance(logits, np.ndarray) and logits.shape == (4, VOCAB)
        numpy_state, torch_state = numpy_engine.select(numpy_state, rows), torch_engine.select(torch_state, rows)
        expected, numpy_state = numpy_engine.step(ids[:, t], numpy_state)
        logits, torch_state = torch_engine.step(ids[:, t], torch_state)
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-5)


def test_engine_for_a_cpu_float32_model_is_numpy_and_for_others_torch():
    model = make_model()
    assert isinstance(engine_for(model), ArrayLSTM)
    assert isinstance(engine_for(model.double()), TorchEngine)


@pytest.mark.parametrize("overrides", [{}, dict(num_layers=3), dict(num_layers=1, input_mode="scaled_index")])
def test_what_an_engine_holds_is_known_from_its_config_before_it_is_built(overrides):
    model = make_model(**overrides)
    engine = as_arrays(model)
    assert engine.nbytes == ArrayLSTM.bytes_for(model.config.to_dict())
    table = VOCAB * 4 * model.config.hidden_size * 4
    assert engine.table.nbytes == table and engine.nbytes > table


def test_reading_a_prime_is_stepping_through_it():
    arrays = as_arrays(make_model())
    read, _ = arrays.read([3, 1, 4, 1, 5], batch=2)
    state = arrays.init_state(2)
    for i in [3, 1, 4, 1, 5]:
        stepped, state = arrays.step(np.array([i, i]), state)
    np.testing.assert_array_equal(read, stepped)
    assert read.shape == (2, VOCAB)


def test_the_shipped_model_file_reads_in_numpy_and_steps_like_its_torch_model():
    read = modelfile.read(REPO / "checkpoints" / "demo.safetensors")
    arrays = ArrayLSTM.from_weights(read.config.to_dict(), read.weights)
    expected = as_arrays(CharLSTM.from_checkpoint(ckpt_io.load(REPO / "checkpoints" / "demo.safetensors")))
    np.testing.assert_array_equal(arrays.table, expected.table)
    np.testing.assert_array_equal(arrays.w_hh[0], expected.w_hh[0])
    np.testing.assert_array_equal(arrays.head_w, expected.head_w)
    assert read.meta["info"]["corpus_chars"] == 600_901 and len(read.meta["info"]["corpus_sha256"]) == 64


@pytest.mark.parametrize("modules", ["charlm.engine.arrays, charlm.engine.sampling", "app.writing"])
def test_the_first_sample_loads_without_torch(modules):
    """The app's first view relies on this: torch takes seconds to import."""
    code = (f"import sys; import {modules}; "
            "from charlm.modelfile import format as modelfile; modelfile.read('checkpoints/demo.safetensors'); "
            "print(json.dumps(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.'))))")
    out = subprocess.run([sys.executable, "-c", "import json; " + code], capture_output=True, text=True,
                         cwd=REPO, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


@pytest.mark.parametrize("preset, expected", [(None, "1"), ("2", "2")])
def test_importing_charlm_caps_blas_threads_unless_told_otherwise(preset, expected):
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    if preset:
        env["OPENBLAS_NUM_THREADS"] = preset
    out = subprocess.run([sys.executable, "-c", "import charlm, os; print(os.environ['OPENBLAS_NUM_THREADS'])"],
                         capture_output=True, text=True, cwd=REPO, env=env, check=True)
    assert out.stdout.strip() == expected


def test_trace_ends_in_the_state_that_stepping_the_same_text_reaches(trained):
    engine = ArrayLSTM.from_weights(trained.checkpoint.model_config,
                                    {k: np.asarray(v) for k, v in trained.checkpoint.state_dict.items()})
    ids = [int(i) for i in trained.corpus.ids[:30]]
    logits, h, c = engine.trace(ids)
    assert logits.shape == (30, engine.vocab_size) and h.shape == c.shape == (30, 1, engine.hidden_size)
    state = engine.init_state(1)
    for t, i in enumerate(ids):
        step_logits, state = engine.step(np.array([i]), state)
        np.testing.assert_array_equal(logits[t], step_logits[0])
    np.testing.assert_array_equal(h[-1, 0], state[0][0][0])
    np.testing.assert_array_equal(c[-1, 0], state[0][1][0])


def test_a_clamped_unit_holds_its_value_at_every_step_and_changes_the_writing(trained):
    engine = ArrayLSTM.from_weights(trained.checkpoint.model_config,
                                    {k: np.asarray(v) for k, v in trained.checkpoint.state_dict.items()})
    ids = [int(i) for i in trained.corpus.ids[:40]]
    free_logits, free_h, _ = engine.trace(ids)
    units = {(0, 3): 0.9, (0, 7): -0.5}
    logits, h, _ = engine.trace(ids, clamp=units)
    assert np.all(h[:, 0, 3] == np.float32(0.9)) and np.all(h[:, 0, 7] == np.float32(-0.5))
    assert not np.allclose(free_h[:, 0, 3], 0.9)             # unclamped, the unit moves
    assert not np.array_equal(logits, free_logits)            # and holding it changes the predictions


def test_rereading_windows_stops_every_16_steps_when_asked():
    engine = as_arrays(make_model())
    windows = np.random.default_rng(0).integers(0, VOCAB, (300, 100))
    asked = []
    with pytest.raises(Stopped):
        engine.reread(windows, should_stop=lambda: asked.append(1) or len(asked) > 2)
    assert len(asked) == 3                      # steps 0, 16 and 32 of the first chunk: then it stopped
