"""App tests (AppTest) for the work bound on the Learn pages that read a whole text with the model: Surprise map,
Guess the next character and Neuron explorer. A window model re-reads its window for every character, so
their 400-character caps cost it seconds to minutes; each page cuts the text to what fits (saying so) and
finishes a run within seconds, while the shipped models that carry their state read what they always did."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from app import models
from charlm import workload
from charlm.modelfile import checkpoint
from charlm.engine.decoding import encode_prime, start_ids

from helpers import APP

# Each test runs a Learn page with a window model and with the shipped models at its caps (25 to 50 s each
# here): none is quick.
pytestmark = pytest.mark.slow

PAGE = "app/pages/learn/{}.py"
BOUND = "to keep each click within about 6 seconds of the server's time"
LONG = ("The cat sat on the mat, and the dog sat by the door.\n" * 40)[:2_000]   # 2,000, known to every model


@pytest.fixture(scope="module")
def window_128() -> models.LoadedModel:
    """A 2017-design model at the caps of size (3 x 512) with a 128-character window, the window for which a
    400-character text costs most (each character past the first 128 re-reads 128), trained (as its file
    says) on Python's documentation, so its validation text is at hand."""
    import torch

    from charlm.config import ModelConfig
    from charlm.nn.model import CharLSTM

    docs = models.shipped("shipped:python-docs")
    config = ModelConfig(vocab_size=len(docs.chars), hidden_size=512, num_layers=3)
    torch.manual_seed(0)
    ckpt = checkpoint.Checkpoint(config.to_dict(), docs.chars, CharLSTM(config).state_dict(), window=128,
                                 info={"corpus": "python-docs.txt", "corpus_sha256": docs.info["corpus_sha256"]})
    return models._from_checkpoint(ckpt, "window-128", "a window model at the caps")


@pytest.fixture
def visitor(app_env, monkeypatch, window_128):
    """A visitor to whom the window model is offered beside the shipped ones."""
    available = models.available
    monkeypatch.setattr(models, "available", lambda advice="": available(advice) + [window_128])
    return lambda: AppTest.from_file(APP, default_timeout=60).run()


def open_page(at: AppTest, module: str, model_key: str, **values) -> AppTest:
    """The page with this model chosen and these widget values from the first run on; a run must end within
    30 s (before the bound, the window model's runs took a minute and more)."""
    at.session_state["learn_model"] = model_key
    for key, value in values.items():
        at.session_state[key] = value
    at.switch_page(PAGE.format(module)).run(timeout=30)
    assert not at.exception, [e.value for e in at.exception]
    return at


def bound_notes(at: AppTest) -> list[str]:
    return [e.value for e in [*at.info, *at.warning] if BOUND in e.value]


def test_surprise_map_reads_what_fits_of_a_window_models_text_and_all_of_it_for_the_shipped_models(visitor,
                                                                                                  window_128):
    shape = workload.Shape.of(window_128.engine)
    most = workload.largest_within(lambda n: workload.score_s(shape, n), 400)
    assert 100 <= most < 400          # 400 characters: about 23 s of one core
    at = open_page(visitor(), "surprise_map", "window-128")
    at.text_area(key="surprise_text").input(LONG).run(timeout=30)
    assert not at.exception
    assert bound_notes(at) == [
        f"With this model (a 128-character window, 3 × 512) the map reads only the first {most} characters of this "
        f"text here, {BOUND}; paste a later part on its own to see it."]
    assert at.metric[2].value == f"{most - 1:,} of {most:,}"
    for key in ("shipped", "shipped:python-docs"):    # carried state: 2,000 characters, as before, no note
        at = open_page(visitor(), "surprise_map", key)
        at.text_area(key="surprise_text").input(LONG).run(timeout=30)
        assert not at.exception and not bound_notes(at)
        assert at.metric[2].value == "1,999 of 2,000"


def test_guess_game_plays_shorter_passages_with_a_window_model_and_full_ones_with_the_shipped(visitor, window_128):
    shape = workload.Shape.of(window_128.engine)
    most = workload.largest_within(lambda n: workload.score_s(shape, n), 400)
    at = open_page(visitor(), "guess_game", "window-128")
    assert bound_notes(at) == [
        f"With this model (a 128-character window, 3 × 512) the game plays passages of at most {most} characters, "
        f"not 400 here, {BOUND}; start a new passage when one ends."]
    assert len(at.session_state["guess_game"].passage) == most
    at = open_page(visitor(), "guess_game", "shipped:python-docs")
    assert not bound_notes(at)
    assert len(at.session_state["guess_game"].passage) == 400


def test_neuron_explorer_shares_the_bound_for_a_window_model_and_leaves_the_shipped_at_its_caps(visitor,
                                                                                                  window_128):
    shape = workload.Shape.of(window_128.engine)
    part = workload.BUDGET_S / 3
    read = workload.largest_within(lambda n: workload.states_s(shape, n), 400, part)
    assert 100 <= read < 400          # ranking 400 characters and colouring 400 more: about 46 s
    at = open_page(visitor(), "neuron_explorer", "window-128", neuron_feature="start of a word")
    at.text_area(key="neuron_text").input(LONG).run(timeout=30)
    assert not at.exception
    prime = at.text_input(key="neuron_prime").value
    ids = start_ids(window_128.vocab, encode_prime(window_128.vocab, prime)[0])
    wrote = workload.largest_within(lambda n: 2 * workload.write_s(shape, len(ids), n), 100, part)
    shared = "the ranking, the coloured text and the writing below share that time"
    assert bound_notes(at) == [
        f"With this model (a 128-character window, 3 × 512) the units are ranked over only the first {read} "
        f"characters here, {BOUND}; {shared}.",
        f"With this model (a 128-character window, 3 × 512) the unit is shown along only the first {read} "
        f"characters here, {BOUND}; {shared}.",
        f"With this model (a 128-character window, 3 × 512) it writes at most {wrote} characters after this prime "
        f"here, {BOUND}; shorten the prime or the length."]
    assert any(f"Ranked over {read} characters of the model's validation text." in c.value for c in at.caption)
    assert at.dataframe   # the ranking was shown
    for key in ("shipped", "shipped:python-docs"):      # carried state, at every cap of the page: no note
        at = open_page(visitor(), "neuron_explorer", key, neuron_feature="start of a word")
        at.text_area(key="neuron_text").input(LONG)
        at.text_input(key="neuron_prime").input("the cat sat on the mat. " * 8 + "the cat")   # 199 characters
        at.slider(key="neuron_length").set_value(400).run(timeout=30)
        assert not at.exception and not bound_notes(at)
        assert at.dataframe
