"""App tests (AppTest) for the Surprise map's defects: what its mean is beside the validation loss, a paste over its
cap, and the first scored character of a passage cut from the middle of a text."""

from __future__ import annotations

import math

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from app.learn.common import EXAMPLE_TEXT
from app.state import ChosenCorpus
from charlm.engine import scoring
from charlm.engine.decoding import engine_for
from charlm.modelfile import checkpoint
from charlm.units import LN2

from helpers import APP, chart_data, finished_fox_run

PAGE = "app/pages/learn/surprise_map.py"
SHIPPED = checkpoint.load(__import__("pathlib").Path(APP).parent / "checkpoints" / "demo.safetensors")
SHIPPED_ENGINE, SHIPPED_CHARS = engine_for(SHIPPED), list(SHIPPED.vocab)


def open_map(session: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    for key, value in (session or {}).items():
        at.session_state[key] = value
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def typed(at: AppTest, text: str) -> AppTest:
    at.text_area(key="surprise_text").set_value(text).run()
    assert not at.exception and not at.error, [e.value for e in at.exception]
    return at


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


@pytest.fixture(scope="module")
def fox_run(tmp_path_factory):
    """A finished tiny run on the fox text, which is then the session's text: the model's own text is at hand."""
    job, corpus = finished_fox_run(tmp_path_factory.mktemp("job"))
    ckpt = checkpoint.load(job.best_checkpoint())
    return job, corpus, engine_for(ckpt), list(ckpt.vocab)


def test_the_mean_is_not_presented_as_the_validation_loss(app_env):
    at = typed(open_map(), EXAMPLE_TEXT)
    assert not any("is the model's loss on it" in m.value for m in at.markdown)
    note = next(c.value for c in at.caption if c.value.startswith("Not the same number as the validation loss"))
    assert "32 streams" in note and "empty memory" in note and "from an empty memory." in note


def test_a_paste_over_the_cap_is_read_up_to_it_and_the_page_says_why(app_env):
    pasted = (EXAMPLE_TEXT * 10)[:2_600]
    at = typed(open_map(), pasted)
    assert at.text_area(key="surprise_text").value == pasted        # the visitor's text stays in the box
    assert [w.value for w in at.warning] == [
        "This text has 2,600 characters; the map reads at most 2,000 (to keep each click quick), so it reads the "
        "first 2,000. Paste a later part on its own to see it."]
    # No link can hold it either, and the Copy link control says so where the link would be.
    assert "This text is 2,600 characters long; a link holds at most 2,000. Shorten it to share it." in [
        i.value for i in at.info]
    assert metric(at, "Characters scored") == "1,999 of 2,000"
    expected = scoring.score_text(SHIPPED_ENGINE, SHIPPED_CHARS, pasted[:2_000])
    assert metric(at, "Mean surprise") == f"{expected.mean_bits:.3f} bits/char"


def test_a_passage_of_the_models_own_text_is_read_after_the_text_before_it(app_env, fox_run):
    job, corpus, engine, chars = fox_run
    at = open_map({"job": job, "corpus": ChosenCorpus(corpus, corpus.stats(), "the fox text"),
                   "learn_model": "trained"})
    text = at.text_area(key="surprise_text").value
    start = corpus.text.rfind(text)
    assert start >= 500 and len(text) >= 20                               # a passage from the middle of the text
    expected = scoring.score_text(engine, chars, corpus.text[start - 500:start + len(text)], start=500)
    bits = chart_data(at.get("vega_lite_chart")[0])[0]["bits"].to_numpy()
    assert not math.isnan(bits[0])                                        # its first character is scored too
    np.testing.assert_allclose(bits, expected.surprise / LN2, rtol=1e-6)
    assert metric(at, "Characters scored") == f"{len(text):,} of {len(text):,}"
    assert metric(at, "Mean surprise") == f"{expected.mean_bits:.3f} bits/char"
    assert any(c.value.startswith("Not scored: nothing; the model first read the 500 characters before this")
               for c in at.caption)


def test_a_text_read_from_an_empty_memory_leaves_its_first_scored_character_out_of_the_ranking(app_env):
    text = "  He said that the truth is rarely pure, and never simple at all."   # cut from the middle of a text
    alone = scoring.score_text(SHIPPED_ENGINE, SHIPPED_CHARS, text)
    assert int(np.nanargmax(alone.surprise)) == 0   # a space after a space, known alone: the most surprising
    at = typed(open_map(), text)
    table = at.dataframe[0].value
    assert "␣" not in list(table["after"]) and len(table) == 8
    assert table["bits"][0] == round(float(np.nanmax(alone.surprise[1:])) / LN2, 2)
    assert "Left out of this list: the second character, which the model guesses from the first alone." in [
        c.value for c in at.caption]
