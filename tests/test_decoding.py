"""Tests for charlm.engine.decoding: each strategy's defining property, generation, beam search, step sessions."""

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from charlm.text.corpus import Vocab
from charlm.engine.decoding import StepSession, beam_search, engine_for, generate, sequence_log_prob
from charlm.nn.engine import TorchEngine
from charlm.engine.sampling import STRATEGIES, DecodeConfig, draw, filtered, min_p_filter, pick, top_k_filter, top_p_filter
from charlm.nn.model import CharLSTM, ModelConfig
from charlm.workload import Stopped

SAMPLING = ["sample", "top-k", "top-p", "min-p"]
DRAWS = 2000


def random_logits(batch: int = 4, vocab: int = 30, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, vocab, generator=torch.Generator().manual_seed(seed)) * 2


def choose(logits: torch.Tensor, cfg: DecodeConfig, rng: np.random.Generator) -> torch.Tensor:
    """One draw of the strategy per row, with a uniform per row as every writing path draws them."""
    u = None if cfg.greedy else rng.random((logits.shape[0], 1))
    return torch.from_numpy(pick(logits.numpy(), cfg, u))


def transform(logits: torch.Tensor, cfg: DecodeConfig) -> torch.Tensor:
    """What the strategy draws from, as a tensor (softmax and entropy read easily there)."""
    return torch.from_numpy(filtered(logits.numpy(), cfg))


def draws_of(logits: torch.Tensor, cfg: DecodeConfig, draws: int = DRAWS) -> torch.Tensor:
    """(batch, vocab) logits -> (draws, batch) chosen ids."""
    rng = np.random.default_rng(0)
    return torch.stack([choose(logits, cfg, rng) for _ in range(draws)])


def random_model(vocab_size: int, input_mode: str = "embedding") -> CharLSTM:
    torch.manual_seed(0)
    return CharLSTM(ModelConfig(vocab_size=vocab_size, hidden_size=16, num_layers=1, embed_dim=8, dropout=0.0,
                                input_mode=input_mode)).eval()


# --- the strategies, on hand-made logits ------------------------------------------------------


def test_greedy_is_argmax():
    logits = random_logits()
    chosen = choose(logits, DecodeConfig("greedy"), np.random.default_rng(0))
    assert torch.equal(chosen, logits.argmax(-1))


@pytest.mark.parametrize("strategy", SAMPLING)
def test_temperature_zero_is_greedy(strategy):
    logits = random_logits()
    chosen = draws_of(logits, DecodeConfig(strategy, temperature=0.0), draws=50)
    assert (chosen == logits.argmax(-1)).all()


def test_top_k_never_leaves_the_k_best():
    logits = random_logits()
    k = 3
    chosen = draws_of(logits, DecodeConfig("top-k", temperature=1.5, top_k=k))
    best = torch.topk(logits, k, dim=-1).indices              # (batch, k)
    for row in range(logits.shape[0]):
        assert set(chosen[:, row].tolist()) == set(best[row].tolist())   # all k appear, nothing else


def test_top_k_larger_than_the_vocabulary_keeps_everything():
    logits = random_logits(vocab=5)
    np.testing.assert_array_equal(top_k_filter(logits.numpy(), 50), logits.numpy())


def test_top_p_keeps_the_smallest_set_whose_mass_reaches_p():
    probs = torch.tensor([0.15, 0.5, 0.05, 0.3])                # best first: 1 (0.5), 3 (0.3), 0 (0.15), 2 (0.05)
    logits = probs.log()[None].numpy()
    kept = lambda p: set(np.isfinite(top_p_filter(logits, p))[0].nonzero()[0].tolist())
    assert kept(0.4) == {1}
    assert kept(0.6) == {1, 3}
    assert kept(0.9) == {1, 3, 0}
    assert kept(0.99) == {1, 3, 0, 2}
    assert kept(1.0) == {1, 3, 0, 2}
    # What is kept keeps its logit unchanged.
    filtered = top_p_filter(logits, 0.6)
    assert filtered[0, 1] == logits[0, 1] and filtered[0, 3] == logits[0, 3]


def test_top_p_sampled_ids_stay_in_the_nucleus():
    logits = random_logits()
    cfg = DecodeConfig("top-p", temperature=1.0, top_p=0.7)
    chosen = draws_of(logits, cfg)
    probs = logits.softmax(-1)
    for row in range(logits.shape[0]):
        order = probs[row].argsort(descending=True)
        mass = probs[row][order].cumsum(0)
        size = int((mass < 0.7).sum()) + 1                      # the smallest prefix reaching 0.7
        nucleus = set(order[:size].tolist())
        assert set(chosen[:, row].tolist()) <= nucleus
        assert len(set(chosen[:, row].tolist())) > 1 or size == 1


def test_min_p_never_chooses_below_min_p_times_the_best_probability():
    logits = random_logits()
    min_p = 0.2
    chosen = draws_of(logits, DecodeConfig("min-p", temperature=1.0, min_p=min_p))
    probs = logits.softmax(-1)
    threshold = min_p * probs.max(-1).values                    # (batch,)
    picked = probs.gather(1, chosen.T)                          # (batch, draws)
    assert (picked >= threshold[:, None]).all()
    # The filter itself drops exactly the characters under the threshold.
    kept = torch.from_numpy(np.isfinite(min_p_filter(logits.numpy(), min_p)))
    assert torch.equal(kept, probs >= threshold[:, None])


def test_draw_never_lands_on_a_filtered_character_even_at_the_ends_of_the_uniform_range():
    inf = np.inf
    logits = np.array([[-inf, 0.0, -inf, 2.0, -inf]] * 3, dtype=np.float32)
    u = np.array([[0.0], [0.5], [np.nextafter(np.float32(1), np.float32(0))]], dtype=np.float32)   # 0, 1/2, 1 - 2**-24
    ids = draw(logits, u)
    assert ids.tolist()[0] == 1 and ids.tolist()[2] == 3
    assert set(ids.tolist()) <= {1, 3}


def test_draw_inverts_the_cumulative_distribution():
    logits = np.log(np.array([[0.2, 0.3, 0.5]]))
    pick = lambda u: int(draw(logits, np.array([[u]]))[0])
    assert [pick(0.1), pick(0.19), pick(0.21), pick(0.49), pick(0.51), pick(0.99)] == [0, 0, 1, 1, 2, 2]


def test_sampling_follows_the_softmax_probabilities():
    logits = torch.tensor([[0.0, math.log(3.0)]])               # probabilities 0.25 and 0.75
    chosen = draws_of(logits, DecodeConfig("sample", temperature=1.0), draws=4000)
    assert abs(chosen.float().mean().item() - 0.75) < 0.03


def test_temperature_sharpens_and_flattens_the_distribution():
    logits = random_logits(batch=1)

    def entropy(temperature: float) -> float:
        probs = transform(logits, DecodeConfig("sample", temperature=temperature)).softmax(-1)
        return -(probs * probs.log()).sum().item()

    assert entropy(0.5) < entropy(1.0) < entropy(2.0)
    torch.testing.assert_close(transform(logits, DecodeConfig("sample", temperature=2.0)), logits / 2)


@pytest.mark.parametrize("bad, words", [
    (dict(strategy="nucleus"), "unknown strategy"),
    (dict(temperature=-1.0), "temperature"),
    (dict(top_k=0), "top-k"),
    (dict(top_p=0.0), "top-p"),
    (dict(top_p=1.5), "top-p"),
    (dict(min_p=2.0), "min-p"),
    (dict(beam_width=0), "beam width"),
    (dict(temperature=float("nan")), "temperature must be a finite number; got nan"),
    (dict(temperature=float("inf")), "temperature must be a finite number; got inf"),
    (dict(top_p=float("nan")), "top-p must be a finite number; got nan"),
    (dict(min_p=float("nan")), "min-p must be a finite number; got nan"),
    (dict(top_k=True), "top-k must be a whole number; got True"),
    (dict(beam_width=2.5), "beam width must be a whole number; got 2.5"),
])
def test_decode_config_refuses_bad_values_with_a_message(bad, words):
    with pytest.raises(ValueError, match=words):
        DecodeConfig(**bad)


def test_decode_config_takes_numpy_numbers():
    cfg = DecodeConfig("top-k", temperature=np.float32(0.5), top_k=np.int64(3), min_p=0)
    assert cfg.top_k == 3 and cfg.temperature == 0.5


# --- generation with a trained model ----------------------------------------------------------


def test_greedy_generation_continues_the_periodic_text(trained):
    text = generate(trained.model, trained.vocab, prime="the cat ", length=40, cfg=DecodeConfig("greedy")).texts[0]
    expected = ("the cat " + "sat on the mat. the cat " * 3)[8:48]
    assert text == expected


@pytest.mark.parametrize("strategy", SAMPLING)
def test_temperature_zero_generates_the_greedy_text(trained, strategy):
    greedy = generate(trained.model, trained.vocab, prime="the ", length=30, cfg=DecodeConfig("greedy"))
    cold = generate(trained.model, trained.vocab, prime="the ", length=30, seed=3,
                    cfg=DecodeConfig(strategy, temperature=0.0))
    assert cold.texts == greedy.texts


@pytest.mark.parametrize("strategy", SAMPLING)
def test_fixed_seed_gives_the_same_text(trained, strategy):
    cfg = DecodeConfig(strategy, temperature=2.0, top_k=5, top_p=0.95, min_p=0.01)
    first = generate(trained.model, trained.vocab, length=60, cfg=cfg, seed=7)
    second = generate(trained.model, trained.vocab, length=60, cfg=cfg, seed=7)
    assert first.texts == second.texts


def test_different_seeds_usually_give_different_texts(trained):
    cfg = DecodeConfig("sample", temperature=2.0)            # hot, so the model's certainty does not hide the seed
    texts = {generate(trained.model, trained.vocab, length=60, cfg=cfg, seed=seed).texts[0] for seed in range(5)}
    assert len(texts) >= 4


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_num_samples_gives_that_many_texts_of_the_asked_length(trained, strategy):
    result = generate(trained.model, trained.vocab, prime="the", length=25, num_samples=3, seed=0,
                      cfg=DecodeConfig(strategy, temperature=1.5, beam_width=2))   # beam: more texts than beams
    assert len(result.texts) == 3
    assert all(len(text) == 25 for text in result.texts)
    assert all(set(text) <= set(trained.vocab.chars) for text in result.texts)


def test_length_zero_gives_empty_texts(trained):
    for strategy in ("sample", "beam"):
        result = generate(trained.model, trained.vocab, length=0, num_samples=2, cfg=DecodeConfig(strategy))
        assert result.texts == ["", ""]


def test_negative_length_is_refused(trained):
    with pytest.raises(ValueError, match="length"):
        generate(trained.model, trained.vocab, length=-1)


def test_prime_characters_outside_the_vocabulary_are_reported_and_skipped(trained):
    result = generate(trained.model, trained.vocab, prime="the zebra", length=20, cfg=DecodeConfig("greedy"))
    assert result.missing == ["b", "r", "z"]
    assert len(result.texts[0]) == 20
    # The unseen characters are left out: the model read "the ea".
    reference = generate(trained.model, trained.vocab, prime="the ea", length=20, cfg=DecodeConfig("greedy"))
    assert result.texts == reference.texts


def test_a_prime_of_only_unseen_characters_still_generates(trained):
    result = generate(trained.model, trained.vocab, prime="ZZ€", length=15, cfg=DecodeConfig("sample"), seed=0)
    assert result.missing == ["Z", "€"]
    assert len(result.texts[0]) == 15


def test_on_text_streams_growing_text_and_can_stop_early(trained):
    seen = []
    result = generate(trained.model, trained.vocab, length=100, cfg=DecodeConfig("greedy"),
                      on_text=lambda texts: seen.append(texts[0]) or len(seen) < 2)
    assert len(seen) == 2                                     # it stopped when on_text returned False
    assert 0 < len(seen[0]) < len(seen[1]) < 100 and seen[1].startswith(seen[0])
    assert result.texts[0] == seen[1]


def test_streaming_decodes_each_character_once_and_hands_over_growing_full_texts(trained, monkeypatch):
    decoded = []
    decode = Vocab.decode
    monkeypatch.setattr(Vocab, "decode", lambda self, ids: decoded.append(len(ids)) or decode(self, ids))
    seen = []
    result = generate(trained.model, trained.vocab, length=1000, num_samples=2, cfg=DecodeConfig("sample"), seed=0,
                      on_text=seen.append)
    # Once while streaming, once more for the result: decoding everything on every call was quadratic.
    assert sum(decoded) == 2 * 2 * 1000
    # Every call got the full texts so far, in a list of its own that later calls left as it was.
    assert [len(texts[0]) for texts in seen] == list(range(32, 1000, 32)) + [1000]
    assert all(text.startswith(t) for texts in seen for text, t in zip(result.texts, texts))
    assert seen[-1] == result.texts


def test_on_new_text_streams_only_what_each_text_gained(trained, monkeypatch):
    decoded = []
    decode = Vocab.decode
    monkeypatch.setattr(Vocab, "decode", lambda self, ids: decoded.append(len(ids)) or decode(self, ids))
    seen = []
    result = generate(trained.model, trained.vocab, length=1000, num_samples=2, cfg=DecodeConfig("sample"), seed=0,
                      on_new_text=seen.append)
    assert sum(decoded) == 2 * 2 * 1000
    assert [len(pieces[0]) for pieces in seen] == [32] * 31 + [8]
    assert ["".join(pieces[row] for pieces in seen) for row in range(2)] == result.texts


# --- beam search --------------------------------------------------------------------------------


def test_beam_never_scores_worse_than_greedy_and_reports_its_own_log_prob(trained):
    prime, length = "the m", 30
    greedy = generate(trained.model, trained.vocab, prime=prime, length=length, cfg=DecodeConfig("greedy")).texts[0]
    beam = generate(trained.model, trained.vocab, prime=prime, length=length, cfg=DecodeConfig("beam", beam_width=5))
    greedy_score = sequence_log_prob(trained.model, trained.vocab, prime, greedy)
    beam_score = sequence_log_prob(trained.model, trained.vocab, prime, beam.texts[0])
    assert beam_score >= greedy_score - 1e-4
    assert beam.scores[0] == pytest.approx(beam_score, abs=1e-3)


def test_beam_results_come_best_first_with_their_scores(trained):
    beam = generate(trained.model, trained.vocab, prime="the ", length=12, num_samples=4,
                    cfg=DecodeConfig("beam", beam_width=4))
    assert beam.scores == sorted(beam.scores, reverse=True)
    assert len(set(beam.texts)) == 4
    for text, score in zip(beam.texts, beam.scores):
        assert score == pytest.approx(sequence_log_prob(trained.model, trained.vocab, "the ", text), abs=1e-3)


def test_beam_on_an_untrained_model_beats_greedy():
    # An untrained model is unsure everywhere, so there is room for beam search to find a likelier text.
    vocab = Vocab(tuple("abcdefgh"))
    model = random_model(len(vocab))
    greedy = generate(model, vocab, prime="ab", length=15, cfg=DecodeConfig("greedy")).texts[0]
    beam = generate(model, vocab, prime="ab", length=15, cfg=DecodeConfig("beam", beam_width=8))
    assert sequence_log_prob(model, vocab, "ab", beam.texts[0]) >= sequence_log_prob(model, vocab, "ab", greedy) - 1e-4
    assert beam.scores[0] == pytest.approx(sequence_log_prob(model, vocab, "ab", beam.texts[0]), abs=1e-3)


def test_beam_search_returns_the_most_probable_continuations_found_by_brute_force():
    # Wide enough to keep every prefix of length - 1, beam search is exact: its best texts are the best of all.
    vocab = Vocab(tuple("abc"))
    engine = engine_for(random_model(len(vocab)))
    prime, length = "ab", 4
    everything = ["".join(chars) for chars in itertools.product(vocab.chars, repeat=length)]
    scores = {text: sequence_log_prob(engine, vocab, prime, text) for text in everything}
    best = sorted(everything, key=scores.get, reverse=True)[:5]
    found = generate(engine, vocab, prime=prime, length=length, num_samples=5,
                     cfg=DecodeConfig("beam", beam_width=len(vocab) ** (length - 1)))
    assert found.texts == best
    assert found.scores == pytest.approx([scores[text] for text in best], abs=1e-6)


@pytest.mark.parametrize("width", [1, 2, 4])
def test_beam_search_keeps_the_best_width_continuations_at_every_step(width):
    """A reference that copies every hypothesis each step (the old way) ranks the same texts the same."""
    vocab = Vocab(tuple("abcdefgh"))
    engine = engine_for(random_model(len(vocab)))
    prime_ids, length = list(vocab.encode("ab")), 9
    beams = [([], 0.0)]
    for _ in range(length):
        grown = []
        for ids, score in beams:
            logits, _ = engine.read(prime_ids + ids, 1)
            logp = torch.log_softmax(torch.from_numpy(logits).double(), -1)[0]
            grown += [(ids + [c], score + float(logp[c])) for c in range(len(vocab))]
        beams = sorted(grown, key=lambda beam: beam[1], reverse=True)[:width]
    ids, scores = beam_search(engine, prime_ids, length, width, num_results=width)
    assert ids == [ids for ids, _ in beams]
    assert scores == pytest.approx([score for _, score in beams], abs=1e-5)


def test_beam_search_of_length_zero_gives_empty_texts_and_zero_scores():
    engine = engine_for(random_model(5))
    assert beam_search(engine, [1, 2], 0, width=3, num_results=2) == ([[], []], [0.0, 0.0])


def test_sequence_log_prob_sums_the_models_log_probabilities():
    vocab = Vocab(tuple("abc"))
    model = random_model(len(vocab))
    ids = torch.from_numpy(vocab.encode("abcab").astype("int64"))[None]
    logits, _ = model(ids)
    expected = F.log_softmax(logits[0, 1:-1], -1).gather(1, ids[0, 2:, None]).sum().item()   # "cab" after "ab"
    assert sequence_log_prob(model, vocab, "ab", "cab") == pytest.approx(expected, abs=1e-4)


# --- the 2017 window model ---------------------------------------------------------------------


def test_window_model_rereads_its_last_window_characters_for_every_step():
    vocab = Vocab(tuple("abcdefgh"))
    model = random_model(len(vocab), input_mode="scaled_index")
    window, prime = 4, "abcdefg"
    text = generate(model, vocab, prime=prime, length=12, cfg=DecodeConfig("greedy"), window=window).texts[0]
    # Reference: each character is the argmax after reading the last `window` characters from a zero state.
    ids = list(vocab.encode(prime))
    for _ in range(12):
        logits, _ = model(torch.tensor([ids[-window:]], dtype=torch.int64))
        ids.append(int(logits[0, -1].argmax()))
    assert text == vocab.decode(ids[len(prime):])


@pytest.mark.parametrize("prime", ["", "ab"])
def test_window_model_with_a_prime_shorter_than_the_window_rereads_all_it_has(prime):
    vocab = Vocab(tuple("abcdefgh"))
    model = random_model(len(vocab), input_mode="scaled_index")
    text = generate(model, vocab, prime=prime, length=10, cfg=DecodeConfig("greedy"), window=4).texts[0]
    ids = list(vocab.encode(prime)) or [0]   # no prime: it starts from a new line, else from the first character
    for _ in range(10):
        logits, _ = model(torch.tensor([ids[-4:]], dtype=torch.int64))
        ids.append(int(logits[0, -1].argmax()))
    assert text == vocab.decode(ids[-10:])


def test_window_model_beam_reports_the_windowed_log_prob():
    vocab = Vocab(tuple("abcdefgh"))
    model = random_model(len(vocab), input_mode="scaled_index")
    window, prime = 3, "abcd"
    beam = generate(model, vocab, prime=prime, length=6, cfg=DecodeConfig("beam", beam_width=3), window=window)
    ids = list(vocab.encode(prime))
    total = 0.0
    for char_id in vocab.encode(beam.texts[0]):
        logits, _ = model(torch.tensor([ids[-window:]], dtype=torch.int64))
        total += F.log_softmax(logits[0, -1], -1)[int(char_id)].item()
        ids.append(int(char_id))
    assert beam.scores[0] == pytest.approx(total, abs=1e-3)


# --- step-by-step sessions ----------------------------------------------------------------------


def test_candidates_are_sorted_by_probability_and_sum_to_at_most_one(trained):
    session = StepSession(trained.model, trained.vocab, prime="the c", cfg=DecodeConfig("top-k", top_k=3))
    candidates = session.candidates(k=len(trained.vocab))
    before = [p for _, p, _ in candidates]
    after = [p for _, _, p in candidates]
    assert before == sorted(before, reverse=True)
    assert sum(before) == pytest.approx(1.0, abs=1e-5) and sum(before) <= 1 + 1e-6
    assert sum(after) <= 1 + 1e-6
    assert sum(p > 0 for p in after) == 3                      # top-k leaves 3 characters possible
    assert candidates[0][0] == "a"                             # "the c" -> "a"
    assert len(session.candidates(k=4)) == 4


def test_step_adds_the_strategys_choice_or_a_chosen_character(trained):
    session = StepSession(trained.model, trained.vocab, prime="the c", cfg=DecodeConfig("greedy"))
    assert session.step() == "a"
    assert session.step("m") == "m"                          # a person's pick, not the model's ("t")
    assert session.text == "am"
    assert session.prime == "the c"


def test_step_with_a_character_outside_the_vocabulary_is_refused_clearly(trained):
    session = StepSession(trained.model, trained.vocab, prime="the")
    with pytest.raises(ValueError, match="does not know the character 'Q'"):
        session.step("Q")
    with pytest.raises(ValueError, match="does not know"):
        session.step("ab")
    assert session.text == ""


def test_undo_restores_the_previous_candidates_exactly(trained):
    session = StepSession(trained.model, trained.vocab, prime="the ", cfg=DecodeConfig("sample", temperature=1.5))
    before = session.candidates(k=11)
    chosen = session.step()
    assert session.candidates(k=11) != before
    assert session.undo() is True
    assert session.candidates(k=11) == before
    assert session.text == ""
    # The random draw is taken back too: stepping again makes the same choice.
    assert session.step() == chosen


def test_undo_with_nothing_to_undo_returns_false(trained):
    session = StepSession(trained.model, trained.vocab, prime="the ")
    assert session.undo() is False
    session.step()
    assert session.undo() is True
    assert session.undo() is False


def test_step_session_reports_unseen_prime_characters(trained):
    session = StepSession(trained.model, trained.vocab, prime="the zoo")
    assert session.missing == ["z"]
    assert session.prime == "the oo"


def test_step_session_matches_whole_text_generation(trained):
    cfg = DecodeConfig("top-p", temperature=1.2, top_p=0.95)
    session = StepSession(trained.model, trained.vocab, prime="the ", cfg=cfg, seed=5)
    for _ in range(20):
        session.step()
    whole = generate(trained.model, trained.vocab, prime="the ", length=20, cfg=cfg, seed=5)
    assert session.text == whole.texts[0]


def test_step_session_on_a_window_model_rereads_the_window():
    vocab = Vocab(tuple("abcdefgh"))
    model = random_model(len(vocab), input_mode="scaled_index")
    session = StepSession(model, vocab, prime="abcdefg", cfg=DecodeConfig("greedy"), window=3)
    for _ in range(8):
        session.step()
    whole = generate(model, vocab, prime="abcdefg", length=8, cfg=DecodeConfig("greedy"), window=3)
    assert session.text == whole.texts[0]


@pytest.mark.parametrize("strategy", SAMPLING)
@pytest.mark.parametrize("window", [None, 4])
def test_step_session_writes_what_generate_writes_with_the_same_seed(strategy, window):
    vocab = Vocab(tuple("abcdefgh"))
    engine = engine_for(random_model(len(vocab), "scaled_index" if window else "embedding"), window)
    cfg = DecodeConfig(strategy, temperature=1.3, top_k=4, top_p=0.9, min_p=0.1)
    session = StepSession(engine, vocab, prime="abc", cfg=cfg, seed=11)
    for _ in range(40):
        session.step()
    assert session.text == generate(engine, vocab, prime="abc", length=40, cfg=cfg, seed=11).texts[0]


def test_generate_takes_an_engine_or_a_torch_model_and_writes_the_same(trained):
    engine = engine_for(trained.model)
    cfg = DecodeConfig("top-p", temperature=1.5)
    from_engine = generate(engine, trained.vocab, prime="the ", length=50, cfg=cfg, num_samples=2, seed=4)
    from_model = generate(trained.model, trained.vocab, prime="the ", length=50, cfg=cfg, num_samples=2, seed=4)
    assert from_engine.texts == from_model.texts


def test_an_engine_refuses_a_window_it_was_not_built_with():
    vocab = Vocab(tuple("abcd"))
    engine = engine_for(random_model(len(vocab), "scaled_index"), window=3)
    assert generate(engine, vocab, prime="ab", length=5, window=3).texts[0]   # its own window is fine
    with pytest.raises(ValueError, match="reads a window of 3"):
        generate(engine, vocab, prime="ab", length=5, window=5)


@pytest.mark.parametrize("window", [None, 3])
def test_a_model_off_the_cpu_engine_writes_what_the_numpy_engine_writes(window):
    # TorchEngine is what a GPU model writes with; a float64 model on the CPU takes the same path here.
    vocab = Vocab(tuple("abcdefgh"))
    model = random_model(len(vocab), "scaled_index" if window else "embedding")
    numpy_engine = engine_for(model, window)
    torch_engine = engine_for(model.double(), window)
    assert isinstance(torch_engine, TorchEngine)
    for cfg in (DecodeConfig("greedy"), DecodeConfig("beam", beam_width=3), DecodeConfig("sample", temperature=0.7)):
        by_numpy = generate(numpy_engine, vocab, prime="abcde", length=30, cfg=cfg, num_samples=2, seed=1)
        by_torch = generate(torch_engine, vocab, prime="abcde", length=30, cfg=cfg, num_samples=2, seed=1)
        assert by_torch.texts == by_numpy.texts
    session = StepSession(torch_engine, vocab, prime="abc", cfg=DecodeConfig("sample"), seed=2)
    assert [session.step() for _ in range(10)] == list(generate(numpy_engine, vocab, prime="abc", length=10,
                                                                cfg=DecodeConfig("sample"), seed=2).texts[0])


def test_greedy_shows_all_its_mass_on_the_characters_it_will_pick():
    logits = torch.tensor([[0.5, 2.0, -1.0, 1.0]])
    for cfg in (DecodeConfig("greedy"), DecodeConfig("beam"), DecodeConfig("top-p", temperature=0)):
        after = transform(logits, cfg).softmax(-1)
        assert after.tolist() == [[0.0, 1.0, 0.0, 0.0]]


def test_beam_search_stops_within_a_step_when_asked():
    engine = engine_for(CharLSTM(ModelConfig(vocab_size=7, hidden_size=8, num_layers=1, embed_dim=4)).eval())
    steps, asked = [], []
    real_step = engine.step

    def counted(ids, state):
        steps.append(len(ids))
        return real_step(ids, state)

    engine.step = counted
    with pytest.raises(Stopped):
        beam_search(engine, [1, 2], 500, 3, should_stop=lambda: asked.append(1) or len(asked) > 5)
    assert len(steps) == 5                      # five steps of the beam, then none
