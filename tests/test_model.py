"""Tests for charlm.nn.model: shapes, state, the fast stepper, the 2017 input mode, config validation."""

import os

import pytest
import torch

from charlm.nn.model import CharLSTM, ModelConfig, detach_state

VOCAB = 13


def make_model(**overrides) -> CharLSTM:
    torch.manual_seed(0)
    config = dict(vocab_size=VOCAB, hidden_size=24, num_layers=2, embed_dim=8, dropout=0.0)
    return CharLSTM(ModelConfig(**{**config, **overrides})).eval()


def random_ids(batch: int, seq: int) -> torch.Tensor:
    return torch.randint(0, VOCAB, (batch, seq), generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("input_mode", ["embedding", "scaled_index"])
def test_forward_gives_logits_of_shape_batch_seq_vocab_and_state_per_layer(input_mode):
    model = make_model(input_mode=input_mode)
    logits, (h, c) = model(random_ids(3, 7))
    assert logits.shape == (3, 7, VOCAB)
    assert h.shape == c.shape == (2, 3, 24)
    assert torch.isfinite(logits).all()


def test_forward_continues_from_the_state_it_is_given():
    model = make_model()
    ids = random_ids(2, 10)
    whole, _ = model(ids)
    first, state = model(ids[:, :4])
    rest, _ = model(ids[:, 4:], state)
    torch.testing.assert_close(torch.cat([first, rest], dim=1), whole)


def test_init_state_is_zeros_with_the_weights_dtype_and_device():
    model = make_model().double()
    h, c = model.init_state(5)
    for tensor in (h, c):
        assert tensor.shape == (2, 5, 24)
        assert tensor.dtype == torch.float64
        assert tensor.device == model.head.weight.device
        assert not tensor.any()


def test_detach_state_keeps_values_and_cuts_the_graph():
    model = make_model()
    _, state = model(random_ids(2, 3))
    assert state[0].requires_grad
    detached = detach_state(state)
    assert not detached[0].requires_grad and not detached[1].requires_grad
    torch.testing.assert_close(detached[0], state[0])
    torch.testing.assert_close(detached[1], state[1])


def test_scaled_index_reads_each_id_as_one_float_id_over_vocab_size():
    model = make_model(input_mode="scaled_index")
    assert model.embed is None
    assert model.lstm.input_size == 1
    ids = torch.tensor([[0, 1, 12]])
    features = model.features(ids)
    assert features.shape == (1, 3, 1)
    torch.testing.assert_close(features[0, :, 0], torch.tensor([0.0, 1 / VOCAB, 12 / VOCAB]))


def test_scaled_index_model_has_no_embedding_parameters():
    scaled = make_model(input_mode="scaled_index")
    embedded = make_model()
    assert not any(name.startswith("embed") for name, _ in scaled.named_parameters())
    expected_difference = VOCAB * 8 + 4 * 24 * (8 - 1)   # the embedding table, and layer 0's wider input
    assert embedded.num_parameters() - scaled.num_parameters() == expected_difference


def test_forget_gate_bias_starts_at_one():
    model = make_model()
    h = model.config.hidden_size
    bias = model.lstm.bias_ih_l0.detach()
    assert torch.equal(bias[h:2 * h], torch.ones(h))
    assert not bias[:h].any() and not bias[2 * h:].any()


def test_model_is_rebuilt_from_its_config_dict_alone():
    config = ModelConfig(vocab_size=VOCAB, hidden_size=24, num_layers=2, embed_dim=8)
    rebuilt = ModelConfig.from_dict({**config.to_dict(), "a_field_from_a_newer_version": 1})
    assert rebuilt == config
    model = make_model()
    copy = CharLSTM(ModelConfig.from_dict(model.config.to_dict()))
    copy.load_state_dict(model.state_dict())
    ids = random_ids(2, 5)
    torch.testing.assert_close(copy.eval()(ids)[0], model(ids)[0])


@pytest.mark.parametrize("bad, words", [
    (dict(vocab_size=1), "vocab_size must be at least 2"),
    (dict(hidden_size=0), "hidden_size must be at least 1"),
    (dict(num_layers=0), "num_layers must be at least 1"),
    (dict(dropout=1.0), "dropout"),
    (dict(dropout=-0.1), "dropout"),
    (dict(input_mode="one-hot"), "input mode"),
])
def test_model_config_refuses_bad_values_with_a_message(bad, words):
    with pytest.raises(ValueError, match=words):
        ModelConfig(**{"vocab_size": VOCAB, **bad})


def test_a_mistyped_thread_setting_falls_back_to_every_core(monkeypatch):
    from charlm.nn.device import cpu_cores, set_threads
    before = torch.get_num_threads()
    monkeypatch.setenv("CHARLM_THREADS", "abc")
    try:
        set_threads()
        assert torch.get_num_threads() == cpu_cores() == len(os.sched_getaffinity(0))
    finally:
        torch.set_num_threads(before)


def test_cpu_cores_counts_the_cores_this_process_may_use(monkeypatch):
    from charlm.nn import device
    monkeypatch.setattr(device.os, "sched_getaffinity", lambda pid: {0, 3, 5}, raising=False)
    assert device.cpu_cores() == 3
    monkeypatch.delattr(device.os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(device.os, "cpu_count", lambda: None)
    assert device.cpu_cores() == 1


def test_a_config_missing_fields_gets_the_dataclasss_own_defaults():
    from dataclasses import fields
    from charlm.config import ModelConfig
    filled = ModelConfig.checked({"vocab_size": 5})
    assert filled == {f.name: 5 if f.name == "vocab_size" else f.default for f in fields(ModelConfig)}
