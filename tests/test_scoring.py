"""Tests for charlm.engine.scoring: per-character surprise averages to what evaluate reports, unseen characters are
left out as documented, and each decoding setting's distribution is a distribution shaped as it says."""

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from charlm.engine.decoding import engine_for
from charlm.train.evaluate import evaluate
from charlm.nn.model import CharLSTM, ModelConfig
from charlm.engine.sampling import log_softmax
from charlm.engine.scoring import distributions, score_text
from charlm.text.corpus import UNKNOWN, Vocab
from charlm.workload import Stopped

REPO = Path(__file__).resolve().parents[1]
CHARS = list("abcdefgh ,.\n")
UNKNOWN_CHARS = CHARS[:-1] + [UNKNOWN]          # a vocabulary with the unknown symbol (as the trainer makes them)


def make_model(vocab: int = len(CHARS), **overrides) -> CharLSTM:
    """A random model whose predictions differ clearly from one position to the next (weights scaled up)."""
    torch.manual_seed(0)
    config = dict(vocab_size=vocab, hidden_size=24, num_layers=2, embed_dim=8, dropout=0.0)
    model = CharLSTM(ModelConfig(**{**config, **overrides})).eval()
    with torch.no_grad():
        for weight in model.parameters():
            weight.mul_(4.0)
    return model


def random_text(n: int, chars=CHARS, seed: int = 1) -> str:
    rng = np.random.default_rng(seed)
    return "".join(chars[i] for i in rng.integers(0, len(chars), n))


def ids_of(text: str, chars=CHARS) -> np.ndarray:
    return np.array([chars.index(c) for c in text], dtype=np.int64)


def test_the_mean_surprise_over_a_stream_is_what_evaluate_reports_for_one_stream():
    model = make_model()
    text = random_text(700)
    loss, count = evaluate(model, ids_of(text), batch_size=1)
    scored = score_text(engine_for(model), CHARS, text)
    assert scored.scored_count == count == len(text) - 1
    assert scored.mean_nats == pytest.approx(loss, rel=1e-5)
    assert scored.mean_bits == pytest.approx(loss / math.log(2), rel=1e-5)


def test_each_surprise_is_minus_the_log_probability_the_model_gave_that_character():
    model = make_model()
    text = random_text(60, seed=2)
    with torch.no_grad():
        logits, _ = model(torch.from_numpy(ids_of(text))[None])              # (1, T, vocab)
    expected = -torch.log_softmax(logits[0, :-1], -1)[torch.arange(len(text) - 1), torch.from_numpy(ids_of(text)[1:])]
    scored = score_text(engine_for(model), CHARS, text)
    np.testing.assert_allclose(scored.surprise, expected.numpy(), rtol=1e-4, atol=1e-5)


def test_a_window_model_scores_as_evaluate_does_where_evaluate_has_full_windows():
    window = 8
    model = make_model(input_mode="scaled_index", num_layers=1)
    text = random_text(300, seed=3)
    loss, count = evaluate(model, ids_of(text), window=window)               # targets from position `window` on
    scored = score_text(engine_for(model, window), CHARS, text)
    full = scored.surprise[window - scored.start:]
    assert len(full) == count
    assert float(full.mean()) == pytest.approx(loss, rel=1e-5)


def test_a_window_model_predicts_the_first_characters_from_all_there_is_before_them():
    window = 8
    model = make_model(input_mode="scaled_index", num_layers=1)
    engine = engine_for(model, window)
    text = random_text(40, seed=4)
    ids = ids_of(text)
    scored = score_text(engine, CHARS, text)
    for i in range(1, 2 * window):
        logits, _ = engine.reread(ids[max(0, i - window):i][None])
        assert scored.surprise[i - 1] == pytest.approx(-log_softmax(logits)[0, ids[i]], rel=1e-5)


def test_text_before_start_is_read_but_not_scored():
    engine = engine_for(make_model())
    text = random_text(80, seed=5)
    whole = score_text(engine, CHARS, text)
    later = score_text(engine, CHARS, text, start=30)
    assert later.start == 30 and len(later.surprise) == len(text) - 30
    np.testing.assert_allclose(later.surprise, whole.surprise[29:], rtol=1e-6)
    assert later.top == whole.top[29:]


def test_the_top_guesses_are_the_likeliest_characters_best_first():
    engine = engine_for(make_model())
    text = random_text(50, seed=6)
    scored = score_text(engine, CHARS, text, top=4)
    logits, state = engine.read([CHARS.index(text[0])])
    for i, guesses in enumerate(scored.top[:10]):
        probs = np.exp(log_softmax(logits))[0]
        assert [c for c, _ in guesses] == [CHARS[j] for j in np.argsort(-probs)[:4]]
        np.testing.assert_allclose([p for _, p in guesses], np.sort(probs)[::-1][:4], rtol=1e-5)
        assert scored.surprise[i] == pytest.approx(-math.log(probs[CHARS.index(text[i + 1])]), rel=1e-5)
        logits, state = engine.step(np.array([CHARS.index(text[i + 1])]), state)


def test_an_unseen_character_is_skipped_when_the_vocabulary_has_no_unknown_symbol():
    engine = engine_for(make_model())
    clean = random_text(40, seed=7)
    text = clean[:20] + "Z" + clean[20:]                        # Z: not in CHARS
    assert Vocab.from_list(CHARS).read(text)[1].tolist() == list(range(20)) + list(range(21, 41))
    scored = score_text(engine, CHARS, text)
    without = score_text(engine, CHARS, clean)
    assert np.isnan(scored.surprise[19]) and scored.top[19]   # Z is not scored; what the model expected is known
    np.testing.assert_allclose(scored.surprise[20], without.surprise[19], rtol=1e-6)   # read on from the char before Z
    np.testing.assert_allclose(np.delete(scored.surprise, 19), without.surprise, rtol=1e-6)
    assert scored.scored_count == len(clean) - 1
    assert scored.mean_nats == pytest.approx(without.mean_nats, rel=1e-9)


def test_an_unseen_character_is_read_as_the_unknown_symbol_when_there_is_one_but_not_scored():
    engine = engine_for(make_model(vocab=len(UNKNOWN_CHARS)))
    clean = random_text(40, chars=UNKNOWN_CHARS[:-1], seed=8)
    text = clean[:20] + "Z" + clean[20:]
    as_unknown = score_text(engine, UNKNOWN_CHARS, clean[:20] + UNKNOWN + clean[20:])
    scored = score_text(engine, UNKNOWN_CHARS, text)
    assert np.isnan(scored.surprise[19]) and not np.isnan(as_unknown.surprise[19])
    np.testing.assert_allclose(np.delete(scored.surprise, 19), np.delete(as_unknown.surprise, 19), rtol=1e-6)
    assert scored.scored_count == len(text) - 2


def test_nothing_is_predicted_before_the_first_character_the_model_can_read():
    engine = engine_for(make_model())
    scored = score_text(engine, CHARS, "ZZab")
    assert np.isnan(scored.surprise[:2]).all() and scored.top[:2] == [[], []]
    assert not np.isnan(scored.surprise[2]) and scored.scored_count == 1


def test_a_text_the_model_cannot_read_at_all_scores_nothing():
    scored = score_text(engine_for(make_model()), CHARS, "XYZ")
    assert np.isnan(scored.surprise).all() and scored.scored_count == 0 and math.isnan(scored.mean_nats)


@pytest.mark.parametrize("kwargs, words", [(dict(start=0), "first scored position"),
                                           (dict(start=11), "first scored position"),
                                           (dict(top=-1), "top")])
def test_bad_arguments_are_refused_with_a_message(kwargs, words):
    with pytest.raises(ValueError, match=words):
        score_text(engine_for(make_model()), CHARS, "abcdefghab", **kwargs)


def test_a_vocabulary_that_is_not_the_models_is_refused():
    with pytest.raises(ValueError, match="vocabulary has 3 characters"):
        score_text(engine_for(make_model()), list("abc"), "abcabc")


# --- distributions ----------------------------------------------------------------------------------

LOGITS = np.array([3.0, 2.5, 2.0, 1.0, 0.5, 0.0, -1.0, -2.0, -3.0, -4.0])


def entropy(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def test_each_distribution_sums_to_one_and_is_named_by_its_setting():
    shown = distributions(LOGITS, temperature=0.8, top_k=3, top_p=0.9, min_p=0.05)
    assert [name for name, _ in shown] == ["model", "temperature 0.8", "top-k 3", "top-p 0.9", "min-p 0.05"]
    for _, probs in shown:
        assert probs.shape == LOGITS.shape and probs.sum() == pytest.approx(1.0, abs=1e-12) and (probs >= 0).all()
    np.testing.assert_allclose(shown[0][1], np.exp(LOGITS) / np.exp(LOGITS).sum())


def test_a_lower_temperature_sharpens_and_a_higher_one_flattens():
    model, cold = (p for _, p in distributions(LOGITS, 0.5, 5, 0.9, 0.05)[:2])
    hot = distributions(LOGITS, 2.0, 5, 0.9, 0.05)[1][1]
    assert cold.max() > model.max() > hot.max()
    assert entropy(cold) < entropy(model) < entropy(hot)
    np.testing.assert_allclose(cold, np.exp(LOGITS / 0.5) / np.exp(LOGITS / 0.5).sum())


def test_temperature_zero_leaves_only_the_likeliest_character():
    for _, probs in distributions(LOGITS, 0.0, 5, 0.9, 0.05)[1:]:
        np.testing.assert_array_equal(probs, np.eye(len(LOGITS))[0])


def test_top_k_keeps_the_k_likeliest_in_their_tempered_proportions():
    tempered, top_k = (p for _, p in distributions(LOGITS, 1.5, 4, 0.9, 0.05)[1:3])
    assert np.flatnonzero(top_k).tolist() == [0, 1, 2, 3]
    np.testing.assert_allclose(top_k[:4], tempered[:4] / tempered[:4].sum())


def test_top_p_keeps_the_fewest_likeliest_that_hold_p_of_the_probability():
    tempered, top_p = (distributions(LOGITS, 1.0, 5, 0.8, 0.05)[i][1] for i in (1, 3))
    kept = np.flatnonzero(top_p)
    n = kept.size
    assert kept.tolist() == list(range(n))                      # the likeliest ones
    assert tempered[:n].sum() >= 0.8 > tempered[:n - 1].sum()   # and no fewer than hold 0.8


def test_min_p_keeps_characters_at_least_that_fraction_as_likely_as_the_best():
    tempered, min_p = (distributions(LOGITS, 1.0, 5, 0.9, 0.1)[i][1] for i in (1, 4))
    np.testing.assert_array_equal(min_p > 0, tempered >= 0.1 * tempered.max())
    assert 1 < np.count_nonzero(min_p) < len(LOGITS)


@pytest.mark.parametrize("settings, words", [((-1.0, 5, 0.9, 0.05), "temperature"), ((1.0, 0, 0.9, 0.05), "top-k"),
                                             ((1.0, 5, 1.5, 0.05), "top-p"), ((1.0, 5, 0.9, float("nan")), "min-p")])
def test_settings_out_of_range_are_refused_with_a_message(settings, words):
    with pytest.raises(ValueError, match=words):
        distributions(LOGITS, *settings)


def test_scoring_and_neurons_load_without_torch():
    code = ("import sys, charlm.engine.scoring, charlm.learn.neurons; "
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=REPO)
    assert out.stdout.strip() == "[]"


def test_scoring_with_a_window_model_stops_midway_when_asked():
    window = 16
    engine = engine_for(make_model(), window)
    text = random_text(window + 600)            # 600 full windows, re-read 256 at a time
    layer_steps = []
    real = engine._layers

    def counted(ids, state, clamp=None):
        layer_steps.append(len(ids))
        return real(ids, state, clamp)

    engine._layers = counted
    score_text(engine, CHARS, text)
    whole = len(layer_steps)
    layer_steps.clear()
    asked = []
    with pytest.raises(Stopped):
        score_text(engine, CHARS, text, should_stop=lambda: asked.append(1) or len(asked) > 1)
    assert 0 < len(layer_steps) <= window + 16 < whole   # the text's start, one check's worth of re-reading
