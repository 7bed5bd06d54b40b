"""App tests (AppTest) for the first six Learn parts: Text to numbers, Windows and targets, The model,
Next-character distribution, Surprise map and Neuron explorer; with the shipped models and a model
trained in the session."""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import pytest
from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df
from streamlit.testing.v1 import AppTest

from app.charts import show_char
from app.learn import draw
from app.learn.common import EXAMPLE_TEXT
from app.state import ChosenCorpus
from charlm.learn import anatomy
from charlm.modelfile import checkpoint
from charlm.train import jobs
from charlm.learn import neurons
from charlm.engine import scoring
from charlm.config import ModelConfig
from charlm.text.corpus import Vocab, load_corpus
from charlm.engine.decoding import engine_for
from charlm.engine.sampling import DecodeConfig
from charlm.units import LN2

from helpers import APP, configs, open_learn

PAGES = {
    "text_to_numbers": "Text to numbers",
    "windows_targets": "Windows and targets",
    "the_model": "The model",
    "next_character": "Next-character distribution",
    "surprise_map": "Surprise map",
    "neuron_explorer": "Neuron explorer",
}
CHECKPOINTS = Path(APP).parent / "checkpoints"
SHIPPED = checkpoint.load(CHECKPOINTS / "demo.safetensors")
SHIPPED_ENGINE = engine_for(SHIPPED)
SHIPPED_CHARS = list(SHIPPED.vocab)


def rerun(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def chart_data(at: AppTest, index: int = 0):
    """The rows an altair chart on the page draws."""
    chart = at.get("vega_lite_chart")[index]
    return convert_arrow_bytes_to_pandas_df(chart.proto.datasets[0].data.data)


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def entropy_bits(logits: np.ndarray) -> float:
    p = np.exp(logits - logits.max())
    p /= p.sum()
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def test_the_character_grid_wraps_long_lines_and_starts_a_row_after_a_line_break():
    cells = draw.grid_cells("ab\ncd" + "x" * 5, columns=4)
    assert cells == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (1, 3), (2, 0), (2, 1), (2, 2)]
    assert draw.grid_cells("\n\n", columns=4) == [(0, 0), (1, 0)]
    assert draw.grid_cells("abcd\ne", columns=4) == [(0, 0), (0, 1), (0, 2), (0, 3), (0, 4), (1, 0)]


# --- every page, with the shipped model and nothing trained --------------------------------------

@pytest.mark.parametrize("page", PAGES)
def test_each_part_opens_with_the_shipped_model_and_its_exact_title(app_env, page):
    at = open_learn(page)
    assert at.title[0].value == PAGES[page]
    assert at.selectbox(key="learn_model").value == "shipped"
    assert not at.error


# The neuron explorer ranks units on the whole text first (about 9 s here): slow; the other parts open quickly.
@pytest.mark.parametrize("page", [pytest.param(p, marks=pytest.mark.slow) if p == "neuron_explorer" else p
                                  for p in PAGES])
def test_each_part_opens_with_the_2017_window_model(app_env, page):
    at = open_learn(page, model="shipped:seed-2017")
    assert at.title[0].value == PAGES[page] and not at.error


@pytest.mark.slow
def test_text_with_nothing_to_read_gets_a_message_not_a_traceback(app_env):
    at = open_learn("surprise_map")
    for text, message in (("ë", "at least two characters"), ("ëëë", "Nothing here could be scored")):
        at.text_area(key="surprise_text").set_value(text)
        rerun(at)
        assert any(message in i.value for i in at.info) and not at.metric
    at = open_learn("neuron_explorer")
    at.text_area(key="neuron_text").set_value("")
    at.text_input(key="neuron_prime").set_value("")
    rerun(at)
    assert any("Type some text" in i.value for i in at.info)
    assert len(at.code) == 2   # with no prime the model starts from a line break, and still writes
    at = open_learn("next_character")
    at.text_area(key="next_prime").set_value("")
    rerun(at)
    assert any("With no prime" in c.value for c in at.caption)
    at = open_learn("text_to_numbers")
    at.text_input(key="numbers_sentence").set_value("")
    rerun(at)
    assert any("Type a sentence" in i.value for i in at.info)


def test_choosing_another_model_starts_its_own_values(app_env):
    at = open_learn("the_model")
    assert at.slider(key="model_seq").value == 64    # cpu-fast trains on 64 positions
    at.selectbox(key="learn_model").set_value("shipped:seed-2017")
    rerun(at)
    assert at.slider(key="model_seq").value == 100   # the 2017 design reads a 100-character window


def test_text_to_numbers_lists_the_vocabulary_and_turns_a_typed_sentence_into_indices(app_env):
    at = open_learn("text_to_numbers")
    vocab = at.dataframe[0].value
    assert list(vocab["index"]) == list(range(len(SHIPPED_CHARS)))
    assert list(vocab["character"]) == [show_char(c) for c in SHIPPED_CHARS]
    assert "count" not in vocab   # the Nietzsche text is not at hand: no counts, and the page says why
    assert any("Counts need the text" in c.value for c in at.caption)

    sentence = "Zoë paid 42 marks"
    at.text_input(key="numbers_sentence").set_value(sentence)
    rerun(at)
    expected = [SHIPPED_CHARS.index(c) for c in sentence if c in SHIPPED_CHARS]
    assert at.code[0].value == str(expected)
    assert at.code[1].value == sentence.replace("ë", "")   # back from the ids: ë never reached the model
    strip = chart_data(at)
    assert list(strip["character"]) == [show_char(c) for c in sentence]
    assert strip["index"][2] == "?" and not strip["known"][2]     # ë is flagged
    assert strip["index"][0] == str(SHIPPED_CHARS.index("Z"))
    assert "ë" in " ".join(t.value for t in at.text) and at.warning


def test_windows_and_targets_counts_examples_and_memory_for_the_recorded_corpus(app_env):
    at = open_learn("windows_targets")
    n, v = SHIPPED.info["corpus_chars"], len(SHIPPED_CHARS)
    assert metric(at, "Training examples") == f"{n - 100:,}"   # the 2017 design, first; a 100-character window
    assert [m.value for m in at.metric if m.label == "Training examples"][1] == f"{n - 1:,}"
    at.slider(key="windows_length").set_value(40)
    rerun(at)
    old = anatomy.window_design(n, v, 40)
    assert metric(at, "Training examples") == f"{old.examples:,}"
    assert metric(at, "Memory for them") == f"{old.total_bytes / 1e6:,.1f} MB"
    window, floats, target = (c.value for c in at.code[:3])
    assert window == EXAMPLE_TEXT[:40]                                  # the example window, 40 characters
    ids, floats = floats.splitlines()
    assert ids.startswith(f"[{SHIPPED_CHARS.index('H')}, {SHIPPED_CHARS.index('e')}, ")
    assert floats.startswith(f"[{SHIPPED_CHARS.index('H') / v:.3f}, {SHIPPED_CHARS.index('e') / v:.3f}, ")
    one_hot = target.split("[")[1].rstrip("]").split(", ")
    assert len(one_hot) == v and one_hot.count("1") == 1
    assert one_hot.index("1") == SHIPPED_CHARS.index(EXAMPLE_TEXT[40])   # the character after the window
    shift = at.code[3].value.splitlines()
    assert shift[0].startswith("input : H e") and shift[1].startswith("target: e ␣")


def test_the_model_counts_the_parameters_of_the_model_file_and_shapes_follow_the_batch(app_env):
    at = open_learn("the_model")
    total = ModelConfig.from_dict(SHIPPED.model_config).num_parameters()
    assert metric(at, "Parameters in all") == f"{total:,}" == "729,365"
    layers = at.dataframe[0].value
    assert sum(layers["parameters"]) == total
    at.slider(key="model_batch").set_value(8)
    at.slider(key="model_seq").set_value(10)
    rerun(at)
    head = at.dataframe[0].value.set_index("layer").loc["Linear head"]
    assert head["output shape"] == "(B, T, V) = (8, 10, 85)"


def test_the_model_of_the_2017_design_has_no_embedding_and_its_own_count(app_env):
    at = open_learn("the_model", model="shipped:seed-2017")
    config = ModelConfig.from_dict(checkpoint.load(CHECKPOINTS / "seed-2017.safetensors").model_config)
    assert metric(at, "Parameters in all") == f"{config.num_parameters():,}"
    layers = list(at.dataframe[0].value["layer"])
    assert "Scaled index" in layers and "Embedding" not in layers
    assert at.slider(key="model_seq").value == 100   # its window
    assert any("2017 design" in i.value for i in at.info)


def test_next_character_follows_the_prime_and_temperature_reshapes_the_distribution(app_env):
    at = open_learn("next_character")
    for prime in ("The philosopher", "He said, ("):
        at.text_area(key="next_prime").set_value(prime)
        rerun(at)
        logits = SHIPPED_ENGINE.read([SHIPPED_CHARS.index(c) for c in prime])[0][0]
        table = at.dataframe[0].value.set_index("distribution")
        assert table.loc["model", "likeliest"] == show_char(SHIPPED_CHARS[int(np.argmax(logits))])
        assert table.loc["model", "entropy (bits)"] == pytest.approx(entropy_bits(logits), abs=1e-3)
    panels = set(chart_data(at)["stage"])
    assert any(p.startswith("model: ") for p in panels) and any(p.startswith("top-k 20: ") for p in panels)

    at.slider(key="next_temperature").set_value(1.5)
    rerun(at)
    warm = at.dataframe[0].value.set_index("distribution")
    assert warm.loc["temperature 1.5", "entropy (bits)"] == pytest.approx(entropy_bits(logits / 1.5), abs=1e-3)
    at.slider(key="next_temperature").set_value(0.5)
    rerun(at)
    cool = at.dataframe[0].value.set_index("distribution")
    assert cool.loc["temperature 0.5", "entropy (bits)"] < warm.loc["temperature 1.5", "entropy (bits)"]
    at.slider(key="next_top_k").set_value(3)
    rerun(at)
    assert at.dataframe[0].value.set_index("distribution").loc["top-k 3", "characters left"] == 3


def test_surprise_map_shows_the_mean_score_text_gives_and_colours_every_character(app_env):
    at = open_learn("surprise_map")
    text = 'The will to power; "truth" is a woman. Zoë? 1886.'
    at.text_area(key="surprise_text").set_value(text)
    rerun(at)
    expected = scoring.score_text(SHIPPED_ENGINE, SHIPPED_CHARS, text)
    assert metric(at, "Mean surprise") == f"{expected.mean_bits:.3f} bits/char"
    assert metric(at, "In nats") == f"{expected.mean_nats:.3f} nats/char"
    assert metric(at, "Characters scored") == f"{len(text) - 2} of {len(text)}"   # not the first, nor ë
    grid = chart_data(at)
    assert len(grid) == len(text) and list(grid["character"]) == [show_char(c) for c in text]
    bits = grid["bits"].to_numpy()
    assert math.isnan(bits[0]) and math.isnan(bits[text.index("ë")])
    np.testing.assert_allclose(bits[1:], expected.surprise / LN2, rtol=1e-6)
    top = expected.top[text.index("w") - 1]
    assert grid["expected"][text.index("w")].startswith(f"{show_char(top[0][0])} {top[0][1]:.0%}")
    assert any("ë" in c.value and "Not scored" in c.value for c in at.caption)


def test_surprise_map_of_a_window_model_reads_at_most_400_characters(app_env):
    at = open_learn("surprise_map", model="shipped:seed-2017")
    at.text_area(key="surprise_text").set_value(EXAMPLE_TEXT * 3)
    rerun(at)
    assert metric(at, "Characters scored") == "399 of 400"
    assert any("window" in c.value and "first 400" in c.value for c in at.caption)


def test_neuron_explorer_ranks_units_and_a_held_unit_changes_the_writing(app_env):
    at = open_learn("neuron_explorer")
    feature = at.selectbox(key="neuron_feature").value   # the clearest here (tests/test_learn_path.py holds which)
    ranked = neurons.rank_units(SHIPPED_ENGINE, SHIPPED_CHARS, EXAMPLE_TEXT, feature, "h", top=10)
    shown = list(at.dataframe[0].value["unit"])
    assert shown[0] == f"h · layer 1 · unit {ranked[0].unit} · r = {ranked[0].correlation:+.2f}"
    assert len(shown) == len(ranked)

    at.selectbox(key="neuron_pick").set_value(1)
    at.text_input(key="neuron_prime").set_value("The ")
    at.slider(key="neuron_length").set_value(80)
    at.slider(key="neuron_clamp").set_value(-1.0)
    rerun(at)
    unit = ranked[1].unit
    grid = chart_data(at)
    h = neurons.activations(SHIPPED_ENGINE, Vocab.from_list(SHIPPED_CHARS).read(EXAMPLE_TEXT)[0], "h")[:, 0, unit]
    np.testing.assert_allclose(grid["value"].to_numpy(), h, rtol=1e-5, atol=1e-6)
    free, held = (c.value for c in at.code)
    prime = [SHIPPED_CHARS.index(c) for c in "The "]
    write = lambda clamp: "".join(SHIPPED_CHARS[i] for i in neurons.clamped_write(
        SHIPPED_ENGINE, prime, 80, DecodeConfig(), np.random.default_rng(0), clamp))
    assert free == "The " + write({})                 # seed 0, the Generate page's default strategy
    assert held == "The " + write({(0, unit): -1.0})
    assert free != held


@pytest.mark.slow
def test_neuron_explorer_picks_any_unit_by_number(app_env):
    at = open_learn("neuron_explorer")
    at.selectbox(key="neuron_pick").set_value("any").run()
    at.number_input(key="neuron_number").set_value(383)
    at.radio(key="neuron_any_kind").set_value("c")
    rerun(at)
    c = neurons.activations(SHIPPED_ENGINE, Vocab.from_list(SHIPPED_CHARS).read(EXAMPLE_TEXT)[0], "c")[:, 0, 383]
    np.testing.assert_allclose(chart_data(at)["value"].to_numpy(), c, rtol=1e-5, atol=1e-6)
    assert any("unit 383" in cap.value for cap in at.caption)


# --- a model trained in this session ---------------------------------------------------------------

def story(n_chars: int, seed: int = 0) -> str:
    """Lines of made-up prose with quoted speech, brackets and numbers, so every feature varies."""
    words = "river stone light garden walks under over slowly bright the a of".split()
    rng = random.Random(seed)
    lines = []
    while sum(len(line) + 1 for line in lines) < n_chars:
        said = " ".join(rng.choice(words) for _ in range(rng.randint(3, 8)))
        form = rng.random()
        lines.append(f'she said, "{said}."' if form < 0.35 else
                     f"{said} ({rng.randint(1, 99)} times)." if form < 0.55 else f"{said}.")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def session_model(tmp_path_factory):
    """A tiny model trained as the Train page trains one (a job), with the text it learned from."""
    corpus = load_corpus(story(12_000), name="story.txt")
    job = jobs.TrainingJob(corpus, "tiny", *configs(corpus, max_steps=60, seed=0),
                           workdir=tmp_path_factory.mktemp("job")).start()
    job.join(180)
    assert job.snapshot().status == "done" and job.best_checkpoint() is not None
    ckpt = checkpoint.load(job.best_checkpoint())
    return job, corpus, engine_for(ckpt), list(ckpt.vocab)


def open_trained(page: str, session_model) -> AppTest:
    job, corpus, _, _ = session_model
    at = open_learn(page, session={"job": job, "corpus": ChosenCorpus(corpus, corpus.stats(), "a test story")},
                    model="trained")
    assert at.title[0].value == PAGES[page] and not at.error
    return at


def text_at_hand(at: AppTest) -> bool:
    return any("Its training text is at hand" in c.value for c in at.caption)


@pytest.mark.slow
def test_text_to_numbers_counts_the_trained_models_own_text(app_env, session_model):
    at = open_trained("text_to_numbers", session_model)
    _, corpus, _, chars = session_model
    assert text_at_hand(at)
    vocab = at.dataframe[0].value
    assert list(vocab["count"]) == [corpus.text.count(c) for c in chars]


def test_windows_and_targets_of_the_trained_model_use_its_text(app_env, session_model):
    at = open_trained("windows_targets", session_model)
    assert text_at_hand(at)
    n = len(session_model[1].text)
    assert [m.value for m in at.metric if m.label == "Training examples"] == [f"{n - 100:,}", f"{n - 1:,}"]


def test_the_model_counts_the_trained_models_parameters(app_env, session_model):
    at = open_trained("the_model", session_model)
    config = session_model[0].model_cfg
    assert config.hidden_size == 32 and metric(at, "Parameters in all") == f"{config.num_parameters():,}"


def test_next_character_of_the_trained_model(app_env, session_model):
    at = open_trained("next_character", session_model)
    _, _, engine, chars = session_model
    at.text_area(key="next_prime").set_value('she said, "the riv')
    rerun(at)
    logits = engine.read([chars.index(c) for c in 'she said, "the riv'])[0][0]
    table = at.dataframe[0].value.set_index("distribution")
    assert table.loc["model", "likeliest"] == show_char(chars[int(np.argmax(logits))])


def test_a_setting_past_the_trained_models_vocabulary_starts_again_when_it_is_chosen(app_env, session_model):
    job, corpus, _, chars = session_model
    at = open_learn("next_character", session={"job": job, "corpus": ChosenCorpus(corpus, corpus.stats(), "a test story")},
                    model="shipped")   # the part opens on the session's model; the visitor goes to the demo first
    at.slider(key="next_top_k").set_value(80)
    rerun(at)
    at.selectbox(key="learn_model").set_value("trained")
    rerun(at)
    assert len(chars) < 80 and at.slider(key="next_top_k").value == 20 and at.slider(key="next_top_k").max == len(chars)


def test_surprise_map_of_the_trained_model_reads_its_validation_text(app_env, session_model):
    at = open_trained("surprise_map", session_model)
    _, corpus, engine, chars = session_model
    assert text_at_hand(at)
    text = at.text_area(key="surprise_text").value
    assert text in corpus.text[-len(corpus.split()[1]):]   # a passage of its validation text
    at_text = corpus.text.rfind(text)   # read after the 500 characters before it (tests/test_learn_surprise.py)
    expected = scoring.score_text(engine, chars, corpus.text[at_text - 500:at_text + len(text)], start=500)
    assert metric(at, "Mean surprise") == f"{expected.mean_bits:.3f} bits/char"
    typed = 'she said, "$5 for *the* river."'   # $ and * are not in the story's vocabulary
    at.text_area(key="surprise_text").set_value(typed)
    rerun(at)
    assert metric(at, "Mean surprise") == f"{scoring.score_text(engine, chars, typed).mean_bits:.3f} bits/char"
    line = next(c.value for c in at.caption if c.value.startswith("Not scored"))
    assert "vocabulary: \\$ \\*." in line   # shown literally in the caption, not as LaTeX or emphasis


def test_neuron_explorer_of_the_trained_model_ranks_on_its_validation_text(app_env, session_model):
    at = open_trained("neuron_explorer", session_model)
    _, corpus, engine, chars = session_model
    assert text_at_hand(at)
    val = corpus.text[-len(corpus.split()[1]):]
    ranked = neurons.rank_units(engine, chars, val, at.selectbox(key="neuron_feature").value, "h", top=10)
    first = at.dataframe[0].value["unit"][0]
    assert first == f"h · layer 1 · unit {ranked[0].unit} · r = {ranked[0].correlation:+.2f}"
    at.slider(key="neuron_clamp").set_value(-1.0)
    rerun(at)
    free, held = (c.value for c in at.code)
    assert free != held
