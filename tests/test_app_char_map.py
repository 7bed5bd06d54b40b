"""App tests (AppTest) for the Character map part: one glyph per character on every shipped model and on a model
trained in the session, the neighbours table equal to charmap's, the cosine map redrawing, and the digit line
saying what charmap measures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from streamlit.testing.v1 import AppTest

from app import charts, plain
from app.state import ChosenCorpus
from charlm.engine.decoding import engine_for
from charlm.learn import charmap
from charlm.modelfile import checkpoint
from charlm.text.corpus import load_corpus
from charlm.train.trainer import train
from charlm.presets import get_preset

from helpers import APP, chart_data, finished_fox_run, open_learn

CHECKPOINTS = Path(__file__).resolve().parents[1] / "checkpoints"
SHIPPED = {"shipped": "demo", "shipped:python-docs": "python-docs", "shipped:seed-2017": "seed-2017"}


def vectors_of(name: str) -> charmap.CharVectors:
    ckpt = checkpoint.load(CHECKPOINTS / f"{name}.safetensors")
    return charmap.engine_vectors(engine_for(ckpt), ckpt.vocab)


def glyphs(at):
    """The map's points as drawn: the data frame of the glyph layer (the one with a class per row)."""
    [chart] = at.get("vega_lite_chart")
    [frame] = [frame for frame in chart_data(chart) if "class" in frame.columns]
    return frame


def table(at) -> list[tuple[str, str, float]]:
    [shown] = at.dataframe   # the neighbours table (cmap_neighbours), the page's one table
    frame = shown.value
    return list(zip(frame["character"], frame["class"], frame["similarity"]))


def expected_table(vectors: charmap.CharVectors, char: str) -> list[tuple[str, str, float]]:
    return [(charts.show_char(n.char), charmap.char_class(n.char), n.similarity)
            for n in charmap.neighbours(vectors, char, 8)]


@pytest.mark.parametrize("key", list(SHIPPED))
def test_each_shipped_model_maps_every_character_once_with_charmaps_neighbours(app_env, key):
    at = open_learn("char_map", key)
    vectors = vectors_of(SHIPPED[key])
    frame = glyphs(at)
    assert list(frame["character"]) == [charts.show_char(c) for c in vectors.chars]
    assert list(frame["class"]) == [charmap.char_class(c) for c in vectors.chars]
    made = charmap.char_map(vectors, "pca")
    np.testing.assert_array_equal(frame[["x", "y"]].to_numpy(), [(p.x, p.y) for p in made.points])
    assert at.selectbox(key="cmap_char").value == "a"
    assert table(at) == expected_table(vectors, "a")
    assert table(at)[0] == (charts.show_char(charmap.neighbours(vectors, "a")[0].char),
                            charmap.char_class(charmap.neighbours(vectors, "a")[0].char),
                            charmap.neighbours(vectors, "a")[0].similarity)
    assert not at.warning and not at.error


def test_the_cosine_map_moves_the_characters_and_keeps_them_all(app_env):
    at = open_learn("char_map")
    before = glyphs(at)
    at.radio(key="cmap_method").set_value("mds").run()
    assert not at.exception
    after = glyphs(at)
    assert list(after["character"]) == list(before["character"])
    made = charmap.char_map(vectors_of("demo"), "mds")
    np.testing.assert_array_equal(after[["x", "y"]].to_numpy(), [(p.x, p.y) for p in made.points])
    assert not np.allclose(after[["x", "y"]].to_numpy(), before[["x", "y"]].to_numpy())


def test_choosing_another_character_shows_its_own_neighbours(app_env):
    at = open_learn("char_map")
    at.selectbox(key="cmap_char").set_value("7").run()
    assert not at.exception
    assert table(at) == expected_table(vectors_of("demo"), "7")
    assert table(at) != expected_table(vectors_of("demo"), "a")
    frame = glyphs(at)
    assert list(frame.loc[frame["chosen"], "character"]) == ["7"]


def test_the_demo_models_digit_line_says_digits_are_nearer_each_other_than_to_letters(app_env):
    at = open_learn("char_map")
    vectors = vectors_of("demo")
    kinds = [charmap.char_class(c) for c in vectors.chars]
    digits = [i for i, k in enumerate(kinds) if k == "digit"]
    letters = [i for i, k in enumerate(kinds) if k in ("lower", "upper")]
    within = charmap.mean_cosine_distance(vectors.vectors, digits, digits)
    across = charmap.mean_cosine_distance(vectors.vectors, digits, letters)
    assert within < across
    [line] = [c.value for c in at.caption if c.value.startswith("Digits:")]
    assert line.startswith(f"Digits: mean cosine distance {within:.3f} between two digits, {across:.3f} from a "
                           "digit to a letter (10 digits, 53 letters): digits are nearer each other than to letters.")


def test_the_case_line_counts_capitals_whose_nearest_small_letter_is_their_own(app_env):
    at = open_learn("char_map")
    vectors = vectors_of("demo")
    similarity = charmap.cosine_similarities(vectors.vectors)
    lower = [i for i, c in enumerate(vectors.chars) if c.islower() and c.isascii()]
    own = sum(vectors.chars[lower[int(np.argmax(similarity[vectors.chars.index(c), lower]))]] == c.lower()
              for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    [line] = [c.value for c in at.caption if c.value.startswith("Upper and lower case:")]
    assert line == (f"Upper and lower case: for {own} of the 26 capitals whose small letter the model has, the "
                    "nearest small letter is its own (by chance: about 1 in 26).")


def test_a_model_trained_in_the_session_is_mapped(app_env, tmp_path):
    job, corpus = finished_fox_run(tmp_path)
    at = open_learn("char_map", session={"job": job, "corpus": ChosenCorpus(corpus, corpus.stats(), "the fox text")})
    assert at.selectbox(key="learn_model").value == "trained"
    ckpt = checkpoint.load(job.best_checkpoint())
    vectors = charmap.engine_vectors(engine_for(ckpt), ckpt.vocab)
    assert list(glyphs(at)["character"]) == [charts.show_char(c) for c in ckpt.vocab]
    assert table(at) == expected_table(vectors, "a")
    # The fox text has no digits and no capitals: neither line is drawn.
    assert not [c.value for c in at.caption if c.value.startswith(("Digits:", "Upper and lower case:"))]


def test_a_model_of_two_characters_gets_a_message_not_a_map(app_env, tmp_path):
    corpus = load_corpus("ab" * 600, name="ab.txt")
    tiny = get_preset("tiny")
    out = tmp_path / "ab.safetensors"
    train(corpus, tiny.model_config(len(corpus.vocab), hidden_size=8, embed_dim=4),
          tiny.train_config(max_steps=1, device="cpu", seed=0, sample_chars=10, batch_size=2, seq_len=8), out=out)
    at = open_learn("char_map")
    at.switch_page("app/pages/train.py").run()
    at.file_uploader(key="checkpoint_upload").set_value(("ab.safetensors", out.read_bytes(),
                                                         "application/octet-stream")).run()
    at.switch_page("app/pages/learn/char_map.py").run()
    assert not at.exception
    assert at.selectbox(key="learn_model").value.startswith("upload:")
    assert not at.get("vega_lite_chart")
    assert [i.value for i in at.info] == ["This model knows 2 characters: too few for a map (with two, every map is "
                                          "one line between them). Train a model on a text with more kinds of "
                                          "characters."]


def linked(params: dict) -> AppTest:
    """A fresh visitor opening a Character map link with these query parameters (as tests/test_app_links.py)."""
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    for name, value in params.items():
        at.query_params[name] = value
    at.switch_page("app/pages/learn/char_map.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_a_link_opens_on_its_projection_and_character(app_env):
    at = linked({"model": "shipped:python-docs", "cmap_method": "mds", "cmap_char": "{"})
    assert (at.radio(key="cmap_method").value, at.selectbox(key="cmap_char").value) == ("mds", "{")
    assert table(at) == expected_table(vectors_of("python-docs"), "{")


def test_a_link_to_a_character_the_model_lacks_opens_on_a_with_a_message(app_env):
    at = linked({"model": "shipped", "cmap_char": "{"})   # the demo model has no braces
    assert at.selectbox(key="cmap_char").value == "a"
    assert [i.value for i in at.info] == [plain.escape("This model does not have the character '{': the page "
                                                       "shows 'a' instead.")]
    assert table(at) == expected_table(vectors_of("demo"), "a")
