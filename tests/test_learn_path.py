"""App tests (AppTest) for the guided path through Learn: each part's place, its neighbours and its line to try;
the model picker following the session's new models once; and the Neuron explorer's opening feature."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from app.learn import LEARN_PAGES, path
from app.state import ChosenCorpus
from charlm.engine.decoding import engine_for
from charlm.learn import neurons
from charlm.modelfile import checkpoint

from helpers import APP, finished_fox_run

MODULES = [module for module, _, _, _ in LEARN_PAGES]
ADDRESSES = {module: address for module, _, address, _ in LEARN_PAGES}


def open_part(module: str, session: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    for key, value in (session or {}).items():
        at.session_state[key] = value
    at.run()
    at.switch_page(path.page_file(module)).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def links(at: AppTest) -> dict[str, str]:
    """The page links drawn: label -> the address they open."""
    return {link.proto.label: link.proto.page for link in at.get("page_link")}


@pytest.fixture(scope="module")
def fox_run(tmp_path_factory):
    """A finished tiny run on a text with line breaks and words but no quotes, brackets or digits."""
    job, corpus = finished_fox_run(tmp_path_factory.mktemp("job"))
    return job, corpus


def session_of(fox_run) -> dict:
    job, corpus = fox_run
    return {"job": job, "corpus": ChosenCorpus(corpus, corpus.stats(), "the fox text")}


# --- the path ----------------------------------------------------------------------------------------

def test_the_path_has_every_part_once_in_teaching_order_with_a_line_to_try():
    assert list(path.TRY_THIS) == MODULES
    assert path.neighbours("text_to_numbers") == (1, None, ("windows_targets", "Windows and targets"))
    assert path.neighbours("guess_game") == (14, ("decoding_lab", "Decoding lab"), None)
    assert path.neighbours("surprise_map") == (5, ("next_character", "Next-character distribution"),
                                                ("neuron_explorer", "Neuron explorer"))
    assert path.neighbours("looked_back") == (7, ("neuron_explorer", "Neuron explorer"),
                                               ("inside_cell", "Inside the cell"))
    assert path.neighbours("char_map") == (9, ("inside_cell", "Inside the cell"),
                                            ("training_over_time", "Training over time"))


@pytest.mark.parametrize("module", MODULES)
def test_each_part_says_where_it_is_on_the_path_and_links_its_neighbours(app_env, module):
    at = open_part(module)
    number = MODULES.index(module) + 1
    assert f"Part {number} of 14" in [c.value for c in at.caption]
    expected = {}
    if number > 1:
        before = LEARN_PAGES[number - 2]
        expected[f"Previous: {before[1]}"] = before[2]
    if number < 14:
        after = LEARN_PAGES[number]
        expected[f"Next: {after[1]}"] = after[2]
    drawn = links(at)
    assert {label: page for label, page in drawn.items() if label.startswith(("Previous:", "Next:"))} == expected
    assert f"**Try this:** {path.TRY_THIS[module]}" in [m.value for m in at.markdown]


def test_next_opens_the_next_part(app_env):
    at = open_part("surprise_map")
    at.switch_page(path.page_file("neuron_explorer")).run()   # where the Next link points (AppTest cannot click one)
    assert at.title[0].value == "Neuron explorer" and "Part 6 of 14" in [c.value for c in at.caption]


# --- the model picker ----------------------------------------------------------------------------------

def test_a_session_with_a_model_opens_each_part_on_it(app_env, fox_run):
    for module in ("text_to_numbers", "the_model"):
        at = open_part(module, session_of(fox_run))
        assert at.selectbox(key="learn_model").value == "trained"


def test_the_picker_moves_to_a_new_model_once_and_then_keeps_the_visitors_choice(app_env, fox_run, trained):
    at = open_part("text_to_numbers")
    assert at.selectbox(key="learn_model").value == "shipped"        # nothing of the session's yet
    for key, value in session_of(fox_run).items():                     # a run gets its first checkpoint
        at.session_state[key] = value
    at.run()
    assert at.selectbox(key="learn_model").value == "trained"
    at.selectbox(key="learn_model").set_value("shipped:python-docs").run()
    at.run()
    assert at.selectbox(key="learn_model").value == "shipped:python-docs"   # the visitor's choice stays
    at.switch_page(path.page_file("the_model")).run()
    assert at.selectbox(key="learn_model").value == "shipped:python-docs"

    at.switch_page("app/pages/train.py").run()                         # an upload is a new model too
    at.file_uploader(key="checkpoint_upload").set_value(
        ("cat.safetensors", checkpoint.to_bytes(trained.checkpoint), "application/octet-stream")).run()
    assert not at.exception and not at.error
    upload = next(iter(at.session_state["uploaded_models"]))
    at.switch_page(path.page_file("the_model")).run()
    assert at.selectbox(key="learn_model").value == upload
    at.selectbox(key="learn_model").set_value("trained").run()
    at.switch_page(path.page_file("text_to_numbers")).run()
    assert at.selectbox(key="learn_model").value == "trained"

    at.switch_page("app/pages/generate.py").run()                      # Generate opens on the run's model
    assert at.selectbox(key="gen_model").value == "trained"


def test_models_newest_prefers_the_current_run_then_kept_runs_then_the_latest_upload():
    from app import models

    def made(key: str):
        return models.LoadedModel(key, key, engine=None, vocab=None, summary="")

    shipped, run, kept, first, last = (made(k) for k in ("shipped", "trained", "run:2", "upload:a", "upload:b"))
    assert models.newest([shipped, run, kept, first, last]) is run
    assert models.newest([shipped, kept, first, last]) is kept
    assert models.newest([shipped, first, last]) is last
    assert models.newest([shipped]) is None


# --- the Neuron explorer's opening feature ---------------------------------------------------------

def test_the_neuron_explorer_opens_on_the_clearest_feature_its_passage_shows(app_env, fox_run):
    job, corpus = fox_run
    at = open_part("neuron_explorer", {**session_of(fox_run), "learn_model": "trained"})
    assert not at.error
    feature = at.selectbox(key="neuron_feature").value
    passage = at.text_area(key="neuron_text").value
    values = neurons.text_features(passage)[feature]
    assert values.min() < values.max()   # it shows in the passage: the fox text has no quotes
    ckpt = checkpoint.load(job.best_checkpoint())
    val = corpus.text[len(corpus.split()[0]):]
    ranked = neurons.rank_features(engine_for(ckpt), list(ckpt.vocab), val, "h")
    assert set(ranked) == {"position in line", "start of a word"}
    assert feature == max(ranked, key=lambda name: abs(ranked[name][0].correlation))
    best = ranked[feature][0]
    assert at.dataframe[0].value["unit"][0] == f"h · layer 1 · unit {best.unit} · r = {best.correlation:+.2f}"


def test_clearest_feature_leaves_out_what_the_passage_never_shows():
    unit = lambda r: [neurons.RankedUnit(0, 0, "h", r)]
    ranked = {"inside quotes": unit(0.9), "position in line": unit(-0.6), "start of a word": unit(0.3)}
    assert neurons.clearest_feature(ranked, 'say "yes"\nno') == "inside quotes"
    assert neurons.clearest_feature(ranked, "no quotes\nhere") == "position in line"
    assert neurons.clearest_feature(ranked, "1") is None
