"""Tests for charlm.arrays: the numpy LSTM matches CharLSTM, the .npz export round-trips, and no torch is needed."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from charlm import checkpoint as ckpt_io
from charlm.arrays import ArrayLSTM, load_npz, save_npz
from charlm.model import CharLSTM, ModelConfig

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


def test_reading_a_prime_is_stepping_through_it():
    arrays = as_arrays(make_model())
    read, _ = arrays.read([3, 1, 4, 1, 5], batch=2)
    state = arrays.init_state(2)
    for i in [3, 1, 4, 1, 5]:
        stepped, state = arrays.step(np.array([i, i]), state)
    np.testing.assert_array_equal(read, stepped)
    assert read.shape == (2, VOCAB)


def test_npz_export_round_trips_the_model_and_vocabulary(tmp_path):
    model = make_model()
    chars = list("abcdefghij\n")
    weights = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    path = save_npz(tmp_path / "m.npz", model.config.to_dict(), chars, weights, {"preset": "custom"})
    arrays, vocab, info = load_npz(path)
    assert vocab == chars and info == {"preset": "custom"}
    ids = np.array([2, 7])
    np.testing.assert_array_equal(arrays.step(ids, arrays.init_state(2))[0],
                                  as_arrays(model).step(ids, as_arrays(model).init_state(2))[0])
    assert not list(tmp_path.glob("*.tmp*"))                      # written beside, then renamed


def test_checkpoint_export_refuses_a_window_model(tmp_path):
    model = make_model(num_layers=1, input_mode="scaled_index")
    ckpt = ckpt_io.Checkpoint(model_config=model.config.to_dict(), vocab=list("abcdefghij\n"),
                              state_dict=model.state_dict(), window=100)
    with pytest.raises(ckpt_io.CheckpointError, match="window"):
        ckpt_io.export_arrays(ckpt, tmp_path / "w.npz")


def exported(tmp_path, vocab=None) -> Path:
    model = make_model()
    weights = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    return save_npz(tmp_path / "good.npz", model.config.to_dict(), vocab or list("abcdefghij\n"), weights)


@pytest.mark.parametrize("damage", ["not a zip", "empty", "truncated", "cut short", "foreign npz", "vocab too short"])
def test_a_file_that_is_not_a_usable_export_gives_a_clear_message(tmp_path, damage):
    path = tmp_path / "bad.npz"
    good = exported(tmp_path).read_bytes()
    if damage == "not a zip":
        path.write_bytes(b"not a zip at all")
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "truncated":
        path.write_bytes(good[:1000])
    elif damage == "cut short":
        path.write_bytes(good[:-100])
    elif damage == "foreign npz":   # a real .npz, but not one of ours (no meta)
        np.savez(path, x=np.zeros(3))
    else:
        path = exported(tmp_path, vocab=list("abc"))
    with pytest.raises(ValueError, match="not a usable charlm model export"):
        load_npz(path)


def test_the_shipped_export_is_the_shipped_checkpoint():
    """checkpoints/demo.npz must be re-exported whenever demo.pt changes (python -m charlm export ...)."""
    ckpt = ckpt_io.load(REPO / "checkpoints" / "demo.pt")
    arrays, vocab, info = load_npz(REPO / "checkpoints" / "demo.npz")
    assert vocab == list(ckpt.vocab)
    assert info["best_val_loss"] == ckpt.best_val_loss
    expected = as_arrays(ckpt.build_model())
    np.testing.assert_array_equal(arrays.table, expected.table)
    np.testing.assert_array_equal(arrays.w_hh[0], expected.w_hh[0])
    np.testing.assert_array_equal(arrays.head_w, expected.head_w)
    np.testing.assert_array_equal(arrays.head_b, expected.head_b)


@pytest.mark.parametrize("modules", ["charlm.arrays, charlm.sampling", "app.writing"])
def test_the_first_sample_loads_without_torch(modules):
    """The app's first view relies on this: torch takes seconds to import."""
    code = (f"import sys; import {modules}; "
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
