"""Tests for what issue 13 added to training: weight drop and embedding dropout inside the model, the moving
average of the weights that is evaluated and saved, and the arithmetic (bf16 autocast or fp32) chosen by a probe."""

import threading

import pytest
import torch
import torch.nn.functional as F

from charlm.modelfile import checkpoint as ckpt_io
from charlm.train import resume as resume_file
from charlm.train import precision
from charlm.config import ModelConfig, TrainConfig
from charlm.nn.model import CharLSTM, drop_connect
from charlm.train.resume import Resume
from charlm.train.trainer import Trainer, train

from helpers import configs

VOCAB = 11


def make_model(**overrides) -> CharLSTM:
    torch.manual_seed(0)
    config = dict(vocab_size=VOCAB, hidden_size=12, num_layers=2, embed_dim=6, dropout=0.0)
    return CharLSTM(ModelConfig(**{**config, **overrides}))


def ids(batch=4, seq=9, seed=1) -> torch.Tensor:
    return torch.randint(0, VOCAB, (batch, seq), generator=torch.Generator().manual_seed(seed))


# --- weight drop and embedding dropout ---------------------------------------------------------------


def test_weight_drop_leaves_evaluation_as_the_plain_lstm_computes_it():
    plain, dropped = make_model(), make_model(weight_drop=0.5)
    dropped.load_state_dict(plain.state_dict())
    x = ids()
    torch.testing.assert_close(dropped.eval()(x)[0], plain.eval()(x)[0], rtol=0, atol=0)


def test_weight_drop_in_training_is_the_lstm_with_masked_hidden_to_hidden_weights():
    # The mask the model draws is reproduced by drawing it again from the same random state; the LSTM run
    # with those masked (and rescaled) weights must give exactly the model's training output.
    model = make_model(weight_drop=0.4).train()
    reference = make_model().train()
    reference.load_state_dict(model.state_dict())
    x = ids()
    model.generator = torch.Generator().manual_seed(7)   # the run's own generator draws the masks
    logits, _ = model(x)
    redraw = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for k in range(2):
            weight = getattr(reference.lstm, f"weight_hh_l{k}")
            weight.copy_(drop_connect(weight, 0.4, redraw))
    expected, _ = reference(x)
    torch.testing.assert_close(logits, expected)
    # A new batch gets a new mask: the same input trains through other weights.
    again, _ = model(x)
    assert not torch.allclose(again, logits)


@pytest.mark.parametrize("p", [0.05, 0.15, 0.5])
def test_the_drop_connect_mask_drops_p_of_the_weights_and_rescales_the_rest_exactly(p):
    weight = torch.full((1536, 384), 3.0)
    generator = torch.Generator().manual_seed(0)
    first = drop_connect(weight, p, generator)
    dropped = (first == 0).float().mean().item()
    assert abs(dropped - p) < 0.005                         # 590k draws: p within a few standard errors
    kept_value = 3.0 * 65_536 / (65_536 - round(p * 65_536))
    assert torch.all((first == 0) | (first == kept_value))  # the survivors scaled exactly, as F.dropout does
    assert abs(first.mean().item() - 3.0) < 0.05             # so the expected weight is the weight
    second = drop_connect(weight, p, generator)
    assert not torch.equal(first == 0, second == 0)          # a new mask each call
    again = torch.Generator().manual_seed(0)
    torch.testing.assert_close(drop_connect(weight, p, again), first, rtol=0, atol=0)   # reproducible from the seed
    # Each 64-bit draw gives four 16-bit slices: every slice position must drop p too (a slice that kept a
    # sign bit of 0, say, would never drop).
    by_slice = (first == 0).flatten().view(-1, 4).float().mean(dim=0)
    assert torch.all((by_slice - p).abs() < 0.01), by_slice


def test_weight_drop_trains_the_hidden_to_hidden_weights_themselves():
    model = make_model(weight_drop=0.3).train()
    logits, _ = model(ids())
    logits.sum().backward()
    grad = model.lstm.weight_hh_l0.grad
    assert grad is not None and grad.abs().sum() > 0
    assert (grad == 0).float().mean() > 0.1   # dropped weights take no gradient this batch


def test_embedding_dropout_drops_whole_characters_and_rescales_the_rest():
    model = make_model(embed_drop=0.5).train()
    x = torch.arange(VOCAB).repeat(3, 1)   # every character, three times
    model.generator = torch.Generator().manual_seed(3)
    inputs = model.features(x)
    table = model.embed.weight
    for char in range(VOCAB):
        rows = inputs[:, char]   # the same character in three rows: one choice for it in the whole batch
        if rows.abs().sum() == 0:
            continue
        torch.testing.assert_close(rows, (table[char] * 2).expand(3, -1))
    dropped = sum(int(inputs[0, char].abs().sum() == 0) for char in range(VOCAB))
    assert 0 < dropped < VOCAB
    torch.testing.assert_close(model.eval().features(x), table[x])


@pytest.mark.parametrize("field", ["weight_drop", "embed_drop"])
def test_the_dropout_rates_are_checked(field):
    with pytest.raises(ValueError, match=f"{field} must be in"):
        ModelConfig(vocab_size=5, **{field: 1.0})
    assert getattr(ModelConfig.from_dict({"vocab_size": 5}), field) == 0.0   # files from before have neither


# --- the average of the weights --------------------------------------------------------------------


def weights(model: torch.nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_the_average_starts_at_its_fraction_as_a_copy_then_follows_the_weights(periodic_corpus):
    trainer = Trainer(periodic_corpus, *configs(periodic_corpus, max_steps=100, average_from=0.5,
                                                 average_decay=0.9))
    trainer.step(0.2)
    assert trainer.average is None
    trainer.step(0.5)
    first = weights(trainer.model)
    assert weights(trainer.average).keys() == first.keys()
    for name, value in weights(trainer.average).items():
        torch.testing.assert_close(value, first[name], rtol=0, atol=0)
    trainer.step(0.6)
    now = weights(trainer.model)
    for name, value in weights(trainer.average).items():
        torch.testing.assert_close(value, 0.9 * first[name] + 0.1 * now[name])
        assert not torch.equal(value, now[name])


def test_a_run_with_an_average_evaluates_and_saves_the_average(periodic_corpus, tmp_path):
    out = tmp_path / "m.safetensors"
    result = train(periodic_corpus, *configs(periodic_corpus, max_steps=12, average_from=0.5, average_decay=0.8,
                                             eval_interval_s=0.0), out=out)
    last = result.history[-1]
    assert last["val_loss_trained"] != last["val_loss"]   # two models scored: the average and the weights
    assert len(result.history) == 13   # an evaluation at step 0 and after every step; the weights as trained at the end
    assert not any("val_loss_trained" in row for row in result.history[:-1])
    saved = ckpt_io.load(out)
    resume = resume_file.load(result.last_path)
    assert resume.average is not None
    for name, value in saved.state_dict.items():
        torch.testing.assert_close(torch.as_tensor(value), resume.average[name])
    assert any(not torch.equal(torch.as_tensor(saved.state_dict[k]), torch.as_tensor(resume.state_dict[k]))
               for k in saved.state_dict)   # the resume file trains on from the weights, not their average
    model = CharLSTM.from_checkpoint(saved)
    from charlm.train.evaluate import evaluate
    val_ids = periodic_corpus.split()[1]
    assert evaluate(model, val_ids, 400)[0] == pytest.approx(last["val_loss"], rel=1e-5)


def test_a_run_without_an_average_records_one_loss(periodic_corpus):
    result = train(periodic_corpus, *configs(periodic_corpus, max_steps=4))
    assert "val_loss_trained" not in result.history[-1]


def test_resume_carries_the_average_on(periodic_corpus, tmp_path):
    settings = dict(max_steps=20, seq_len=64, seed=5, average_from=0.25, average_decay=0.7)
    whole = train(periodic_corpus, *configs(periodic_corpus, **settings), out=tmp_path / "whole.pt")
    stop = threading.Event()
    half = train(periodic_corpus, *configs(periodic_corpus, **settings), out=tmp_path / "half.pt", stop=stop,
                 on_progress=lambda e: e.kind == "step" and e.step == 10 and stop.set())
    assert resume_file.load(half.last_path).average is not None
    resumed = train(periodic_corpus, out=tmp_path / "resumed.pt", resume=Resume(half.last_path))
    assert resumed.final_val_loss == pytest.approx(whole.final_val_loss, rel=1e-5)
    a = resume_file.load(resumed.last_path).average
    b = resume_file.load(whole.last_path).average
    for name in b:
        torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("bad, words", [({"average_from": 1.0}, "average_from must be below 1"),
                                        ({"average_from": -0.1}, "average_from must be"),
                                        ({"average_decay": 1.0}, "average_decay must be below 1")])
def test_averaging_settings_are_checked(bad, words):
    with pytest.raises(ValueError, match=words):
        TrainConfig(**bad)


# --- the arithmetic --------------------------------------------------------------------------------


class FakeClock:
    """A clock that a fake step moves on by the seconds its arithmetic takes."""

    def __init__(self, fp32_s: float, bf16_s: float):
        self.now, self.cost, self.calls = 0.0, {False: fp32_s, True: bf16_s}, []

    def __call__(self) -> float:
        return self.now

    def step(self, bf16: bool) -> None:
        self.calls.append(bf16)
        self.now += self.cost[bf16]


def test_the_probe_times_both_arithmetics_interleaved_after_a_warm_up_each():
    clock = FakeClock(fp32_s=0.3, bf16_s=0.2)
    assert precision.probe(clock.step, rounds=3, clock=clock) == (pytest.approx(0.3), pytest.approx(0.2))
    assert clock.calls == [False, True] * 4


@pytest.mark.parametrize("fp32_s, bf16_s, chosen", [(0.3, 0.2, precision.BF16), (0.3, 0.28, precision.FP32),
                                                    (0.2, 0.3, precision.FP32)])
def test_a_cpu_with_native_bf16_trains_in_it_only_where_the_probe_finds_it_faster(monkeypatch, fp32_s, bf16_s,
                                                                                  chosen):
    clock = FakeClock(fp32_s, bf16_s)
    monkeypatch.setattr(precision, "native_bf16", lambda: True)
    monkeypatch.setattr(precision.time, "perf_counter", clock)
    arithmetic, why = precision.choose(torch.device("cpu"), True, clock.step)
    assert arithmetic == chosen
    assert f"{fp32_s / bf16_s:.2f}x" in why


def test_no_probe_without_native_bf16_or_with_amp_off(monkeypatch):
    never = lambda bf16: pytest.fail("the probe ran")   # noqa: E731
    monkeypatch.setattr(precision, "native_bf16", lambda: False)
    assert precision.choose(torch.device("cpu"), True, never) == (precision.FP32, "this CPU has no native bf16")
    monkeypatch.setattr(precision, "native_bf16", lambda: True)
    assert precision.choose(torch.device("cpu"), False, never) == (precision.FP32, "bf16 turned off")
    assert precision.choose(torch.device("cuda"), True, never)[0] == precision.BF16


def test_the_probe_step_leaves_weights_and_random_state_as_they_were(periodic_corpus):
    trainer = Trainer(periodic_corpus, *configs(periodic_corpus, max_steps=5), out=None)
    before, rng = weights(trainer.model), torch.get_rng_state()
    step = precision.probe_step(trainer.model, trainer.model_cfg.vocab_size, 8, 16)
    for bf16 in (False, True) if precision.native_bf16() else (False,):   # the probe tries bf16 only where native
        step(bf16)
    assert all(p.grad is None for p in trainer.model.parameters())
    assert torch.equal(torch.get_rng_state(), rng)
    for name, value in weights(trainer.model).items():
        assert torch.equal(value, before[name])


@pytest.mark.skipif(not precision.native_bf16(), reason="oneDNN has no bf16 LSTM kernel for a CPU without "
                    "native bf16 (AVX512-BF16 or AMX); the probe never chooses bf16 there")
def test_the_arithmetic_chosen_is_in_every_event_and_the_model_file(periodic_corpus, tmp_path, monkeypatch):
    monkeypatch.setattr(precision, "choose", lambda device, allowed, step: (precision.BF16, "probe: 1.50x faster"))
    events = []
    out = tmp_path / "m.safetensors"
    result = train(periodic_corpus, *configs(periodic_corpus, max_steps=6, amp=True), out=out,
                   on_progress=events.append)
    assert {(e.arithmetic, e.arithmetic_why) for e in events} == {(precision.BF16, "probe: 1.50x faster")}
    assert ckpt_io.load(out).info["arithmetic"] == precision.BF16
    assert result.final_val_loss < 2.5   # it learns under bf16 autocast (uniform over 11 characters: 2.40)

    # A resumed run keeps the file's arithmetic: no new probe, which could choose otherwise.
    monkeypatch.setattr(precision, "choose", lambda *a: pytest.fail("a resumed run probed again"))
    events.clear()
    train(periodic_corpus, resume=Resume(result.last_path, max_steps=8), on_progress=events.append)
    assert {(e.arithmetic, e.arithmetic_why) for e in events} == {(precision.BF16, "as the run began")}


def test_the_real_probe_on_this_machine_chooses_and_says_why(periodic_corpus):
    trainer = Trainer(periodic_corpus, *configs(periodic_corpus, max_steps=5, amp=True), out=None)
    if precision.native_bf16():   # bf16 where the probe found it faster, fp32 where it did not, and it says which
        assert trainer.arithmetic_why.startswith("probe: ")
        assert (trainer.arithmetic == precision.BF16) == trainer.arithmetic_why.endswith("faster than fp32")
        assert (trainer.arithmetic == precision.FP32) == trainer.arithmetic_why.endswith("as fast")
    else:
        assert (trainer.arithmetic, trainer.arithmetic_why) == (precision.FP32, "this CPU has no native bf16")
    assert trainer.identity["arithmetic"] == trainer.arithmetic   # and the files it writes say so
