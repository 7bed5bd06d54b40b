"""Tests for charlm.learn.cell: the gates equal torch's LSTM cell's own, on a small random model, the shipped one
and a window model; the cell is the Neuron explorer's exactly; the keepers and snaps on hand-made traces."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from charlm.engine.arrays import ArrayLSTM
from charlm.learn import neurons
from charlm.learn.cell import MAX_CHARS, CellTrace, Keeper, Snap, gates, keepers, snaps
from charlm.modelfile import format as modelfile
from charlm.nn.model import CharLSTM, ModelConfig

SHIPPED = Path(__file__).resolve().parents[1] / "checkpoints" / "demo.safetensors"
VOCAB = 11
TEXT = 'He said: "the will to truth\nis a will."\n'


def small_model(**overrides) -> CharLSTM:
    torch.manual_seed(0)
    config = dict(vocab_size=VOCAB, hidden_size=20, num_layers=2, embed_dim=6, dropout=0.0)
    return CharLSTM(ModelConfig(**{**config, **overrides})).eval()


def as_arrays(model: CharLSTM, window: int | None = None) -> ArrayLSTM:
    weights = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
    return ArrayLSTM.from_weights(model.config.to_dict(), weights, window)


@pytest.fixture(scope="module")
def shipped() -> tuple[ArrayLSTM, CharLSTM, list[str]]:
    read = modelfile.read(SHIPPED)
    model = CharLSTM(read.config)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in read.weights.items()})
    return ArrayLSTM.from_weights(read.config.to_dict(), read.weights, read.window), model.eval(), read.vocab


@torch.no_grad()
def torch_cell(model: CharLSTM, ids: list[int]) -> list[dict[str, torch.Tensor]]:
    """Per layer, i f g o c h (T, H) as torch's LSTMCell computes them, in float64, from a zero state.

    The gates are split from the cell's own pre-activation (W_ih x + b_ih + W_hh h + b_hh, torch's order i, f, g, o),
    and checked to give LSTMCell's c and h, so they are the ones it computes; the top layer's h is checked
    against nn.LSTM over the whole text."""
    model = model.double()
    x = model.features(torch.tensor([ids]))[0]                                    # (T, input)
    H, out = model.config.hidden_size, []
    for k in range(model.config.num_layers):
        w_ih, w_hh, b_ih, b_hh = (getattr(model.lstm, f"{name}_l{k}")
                                  for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
        cell = torch.nn.LSTMCell(w_ih.shape[1], H, dtype=torch.float64)
        cell.weight_ih.copy_(w_ih), cell.weight_hh.copy_(w_hh), cell.bias_ih.copy_(b_ih), cell.bias_hh.copy_(b_hh)
        h, c = torch.zeros(1, H, dtype=torch.float64), torch.zeros(1, H, dtype=torch.float64)
        steps = {name: [] for name in "ifgoch"}
        for t in range(len(ids)):
            z = x[t:t + 1] @ w_ih.T + b_ih + h @ w_hh.T + b_hh
            i, f, g, o = z[:, :H].sigmoid(), z[:, H:2 * H].sigmoid(), z[:, 2 * H:3 * H].tanh(), z[:, 3 * H:].sigmoid()
            h, c_next = cell(x[t:t + 1], (h, c))
            torch.testing.assert_close(c_next, f * c + i * g, rtol=0, atol=1e-12)
            torch.testing.assert_close(h, o * c_next.tanh(), rtol=0, atol=1e-12)
            c = c_next
            for name, value in zip("ifgoch", (i, f, g, o, c, h)):
                steps[name].append(value[0])
        out.append({name: torch.stack(values) for name, values in steps.items()})
        x = out[-1]["h"]
    whole, _ = model.lstm(model.features(torch.tensor([ids])))
    torch.testing.assert_close(whole[0], out[-1]["h"], rtol=0, atol=1e-12)
    model.float()
    return out


def assert_trace_is(trace: CellTrace, expected: dict[str, torch.Tensor]):
    for name in "ifgoch":
        np.testing.assert_allclose(getattr(trace, name), expected[name].numpy(), rtol=0, atol=1e-5, err_msg=name)


@pytest.mark.parametrize("overrides", [{}, dict(num_layers=1, input_mode="scaled_index")])
def test_the_gates_of_every_layer_are_the_torch_cells_own(overrides):
    model = small_model(**overrides)
    ids = np.random.default_rng(4).integers(0, VOCAB, 30).tolist()
    expected = torch_cell(model, ids)
    engine = as_arrays(model)
    for layer, layer_expected in enumerate(expected):
        trace = gates(engine, ids, layer)
        assert trace.layer == layer and trace.i.shape == (30, 20) and trace.i.dtype == np.float32
        assert_trace_is(trace, layer_expected)


def test_the_shipped_models_gates_are_the_torch_cells_own(shipped):
    engine, model, vocab = shipped
    ids = [vocab.index(ch) for ch in TEXT]
    assert_trace_is(gates(engine, ids, 0), torch_cell(model, ids)[0])


def test_the_cell_shown_is_the_neuron_explorers_exactly(shipped):
    engine, _, vocab = shipped
    ids = [vocab.index(ch) for ch in TEXT * 5]
    trace = gates(engine, ids)
    h, c = neurons.states(engine, ids)
    assert np.array_equal(trace.c, c[:, 0]) and np.array_equal(trace.h, h[:, 0])


def test_a_window_model_shows_the_last_pass_over_each_window():
    model, window = small_model(num_layers=2, input_mode="scaled_index"), 5
    engine = as_arrays(model, window)
    ids = np.random.default_rng(5).integers(0, VOCAB, 14).tolist()
    trace = gates(engine, ids, 1)
    for t in range(len(ids)):
        start = max(0, t + 1 - window)
        last = {name: values[-1:] for name, values in torch_cell(model, ids[start:t + 1])[1].items()}
        assert_trace_is(CellTrace(*(getattr(trace, name)[t:t + 1] for name in "ifgoch"), layer=1), last)
    h, c = neurons.states(engine, ids)
    assert np.array_equal(trace.c, c[:, 1]) and np.array_equal(trace.h, h[:, 1])


def test_what_cannot_be_traced_is_refused():
    engine = as_arrays(small_model())
    with pytest.raises(ValueError, match="no layer 2; it has 2"):
        gates(engine, [1, 2], 2)
    with pytest.raises(ValueError, match="4,096 at most"):
        gates(engine, [1] * (MAX_CHARS + 1))
    assert gates(engine, [], 1).f.shape == (0, 20)


def hand_made(**values) -> CellTrace:
    shape = next(iter(values.values())).shape
    parts = {name: np.asarray(values.get(name, np.zeros(shape)), dtype=np.float32) for name in "ifgoch"}
    return CellTrace(**parts, layer=0)


def test_keepers_rank_units_by_mean_forget_gate_nearest_one():
    f = np.array([[0.5, 0.98, 0.9, 1.0, 0.98],
                  [0.5, 1.00, 0.9, 1.0, 1.00],
                  [0.5, 0.99, 0.9, 1.0, 0.99]])
    ranked = keepers(hand_made(f=f))
    assert [k.unit for k in ranked] == [3, 1, 4, 2, 0]            # 1 and 4 tie: the lower first
    assert ranked[0] == Keeper(3, 1.0, math.inf)                  # it never forgets
    assert ranked[-1].forget == pytest.approx(0.5) and ranked[-1].half_life == pytest.approx(1.0)
    assert all(type(k.forget) is float and type(k.half_life) is float for k in ranked)   # plain numbers for a table
    assert ranked[3].half_life == pytest.approx(math.log(0.5) / math.log(0.9), rel=1e-6)   # 6.58 characters
    assert [k.unit for k in keepers(hand_made(f=f), top=2)] == [3, 1]


def test_snaps_find_where_a_gates_layer_average_jumps_up():
    text = 'ab\nx"d'
    i = np.array([[0.2, 0.2], [0.2, 0.4], [0.9, 0.9], [0.6, 0.6], [1.0, 0.8], [0.9, 0.9]])   # averages
    # 0.2, 0.3, 0.9, 0.6, 0.9, 0.9: up 0.1 at b, 0.6 at the line break, 0.3 at the quote, none at x or d
    found = snaps(hand_made(i=i), text, "i")
    assert [(s.position, s.char) for s in found] == [(2, "\n"), (4, '"'), (1, "b")]
    assert found[0] == Snap(2, "\n", "i", pytest.approx(0.6), pytest.approx(0.9))
    assert [s.position for s in snaps(hand_made(i=i), text, "i", top=2)] == [2, 4]
    assert snaps(hand_made(f=i), text, "f")[0].gate == "f"
    assert snaps(hand_made(i=i), text, "o") == []                 # the output gate never moves here
    with pytest.raises(ValueError, match="gate must be one of i, f, o"):
        snaps(hand_made(i=i), text, "g")
    with pytest.raises(ValueError, match="5 characters but the trace 6 steps"):
        snaps(hand_made(i=i), text[:5], "i")
