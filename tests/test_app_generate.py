"""App tests (AppTest) for the Generate page: the shipped model, every strategy, Write and Step modes."""

import re

import pytest
from streamlit.testing.v1 import AppTest

from charlm.engine.decoding import STRATEGIES

from helpers import APP, step_text, written


@pytest.fixture
def at(app_env):
    app = AppTest.from_file(APP, default_timeout=60)
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def test_first_open_shows_the_shipped_model_ready_to_write(at):
    assert at.title[0].value == "Generate"
    assert at.selectbox(key="gen_model").value == "shipped"
    assert "parameters" in at.text[0].value   # the summary, as plain text
    card = " ".join(m.value for m in at.markdown)
    assert card.startswith("**Model card: the demo model** (`demo.safetensors`)")   # checkpoints/MODEL_CARD.md
    assert at.button(key="write").label == "Write"


def test_first_open_shows_a_sample_the_write_button_gives_again_with_its_seed(at):
    sample = written(at)
    assert sample.startswith("The ") and len(sample) == len("The ") + 500
    line = next(c.value for c in at.caption if "written as the page opened" in c.value)
    assert "top-p (nucleus), p 0.9, temperature 0.8" in line
    seed = int(re.search(r"seed (\d+)", line).group(1))
    at.number_input(key="gen_seed").set_value(seed)
    at.button(key="write").click().run()
    assert not at.exception
    assert written(at) == sample                  # numpy's first sample is the torch model's Write
    assert not any("written as the page opened" in c.value for c in at.caption)


def test_write_uses_the_defaults_and_shows_plain_text(at):
    prime = "[1] _Truth_ -- is it "   # characters markdown would take for markup, all known to the model
    at.text_area(key="gen_prime").set_value(prime)
    at.slider(key="gen_length").set_value(60)
    at.button(key="write").click().run()
    assert not at.exception and not at.error
    text = written(at)
    assert text.startswith(prime)   # a code block: markdown characters stay as they are
    assert len(text) == len(prime) + 60
    assert "top-p (nucleus), p 0.9, temperature 0.8" in " ".join(c.value for c in at.caption)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_writes_and_shows_only_its_own_knobs(at, strategy):
    at.selectbox(key="gen_strategy").set_value(strategy).run()
    sliders = {s.key for s in at.slider}
    assert ("gen_temperature" in sliders) == (strategy not in ("greedy", "beam"))
    assert ("gen_top_k" in sliders) == (strategy == "top-k")
    assert ("gen_top_p" in sliders) == (strategy == "top-p")
    assert ("gen_min_p" in sliders) == (strategy == "min-p")
    assert ("gen_beam_width" in sliders) == (strategy == "beam")
    at.slider(key="gen_length").set_value(40)
    at.number_input(key="gen_samples").set_value(2)
    if strategy not in ("greedy", "beam"):   # they draw nothing at random, and show no Seed box
        at.number_input(key="gen_seed").set_value(7)
    at.button(key="write").click().run()
    assert not at.exception and not at.error
    texts = [c.value for c in at.code]
    assert len(texts) == 2 and all(len(t) == len("The ") + 40 for t in texts)
    if strategy == "greedy":
        assert texts[0] == texts[1]   # greedy has no randomness
    if strategy == "beam":
        assert sum("log-probability" in c.value for c in at.caption) == 2   # one label per text


def test_the_same_seed_writes_the_same_text(at):
    at.number_input(key="gen_seed").set_value(3)
    at.slider(key="gen_length").set_value(50)
    first = written(at.button(key="write").click().run())
    at.slider(key="gen_length").set_value(50)
    second = written(at.button(key="write").click().run())
    assert first == second


def test_a_stop_click_keeps_what_was_written(at):
    at.slider(key="gen_length").set_value(30)
    at.button(key="write").click().run()
    text = written(at)
    state = at.session_state["gen_write_state"]
    state.running = True   # as if the run were still writing when the Stop click interrupted it
    state.texts = [state.texts[0][:12]]
    at.run()
    assert written(at) == text[: len("The ") + 12]
    assert any("stopped after 12 characters" in c.value for c in at.caption)


def test_an_interrupted_write_shows_exactly_what_it_had_written_and_where_it_stopped(app_env):
    """A Stop click ends the writing run by an exception; the next run finds the Write still marked running."""
    from app.writing import WriteState

    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["gen_write_state"] = WriteState(prime="The ", texts=["quick brown ", "slow green t"],
                                                     caption="Demo model · top-p · seed 5")   # running=True
    at.run()
    assert not at.exception
    assert [c.value for c in at.code] == ["The quick brown ", "The slow green t"]
    assert "Demo model · top-p · seed 5 · stopped after 12 characters" in [c.value for c in at.caption]
    state = at.session_state["gen_write_state"]
    assert state.stopped and not state.running


def test_step_mode_writes_what_write_writes_with_the_same_seed(at):
    at.number_input(key="gen_seed").set_value(21)
    at.segmented_control(key="gen_mode").set_value("Step").run()
    at.button(key="step_ten").click().run()
    at.button(key="step_ten").click().run()
    stepped = step_text(at)
    at.segmented_control(key="gen_mode").set_value("Write").run()
    at.slider(key="gen_length").set_value(20)
    at.button(key="write").click().run()
    assert not at.exception
    assert written(at) == stepped and len(stepped) == len("The ") + 20


def test_write_and_step_clicks_reuse_the_models_engine(at, monkeypatch):
    from charlm.engine.arrays import ArrayLSTM

    built = []
    from_weights = ArrayLSTM.from_weights.__func__
    monkeypatch.setattr(ArrayLSTM, "from_weights",
                        classmethod(lambda cls, *args, **kw: built.append(1) or from_weights(cls, *args, **kw)))
    at.slider(key="gen_length").set_value(20)
    at.button(key="write").click().run()
    at.segmented_control(key="gen_mode").set_value("Step").run()
    at.button(key="step_next").click().run()
    assert not at.exception and len(step_text(at)) == len("The ") + 1
    assert built == []                       # the weights were folded once, when the model loaded


def test_prime_characters_the_model_never_saw_are_reported(at):
    at.text_area(key="gen_prime").set_value("日本 The ")
    at.slider(key="gen_length").set_value(20)
    at.button(key="write").click().run()
    assert not at.exception
    assert any("never saw" in i.value for i in at.info)


@pytest.mark.slow
def test_step_mode_takes_picks_overrides_and_undoes(at):
    at.segmented_control(key="gen_mode").set_value("Step").run()
    assert step_text(at) == "The "
    assert len(at.get("vega_lite_chart")) == 1   # the next-character candidates

    at.button(key="step_next").click().run()
    assert len(step_text(at)) == 5
    assert len(at.get("vega_lite_chart")) == 2   # plus the last step, its pick highlighted

    third = at.session_state["gen_step_state"].session.candidates(10)[3][0]
    at.button(key="cand_3").click().run()
    assert step_text(at)[-1] == third
    assert "you chose" in " ".join(m.value for m in at.markdown)

    at.text_input(key="own_char").input("x")
    at.button(key="FormSubmitter:own_char_form-Add").click().run()
    assert step_text(at)[-1] == "x"

    at.text_input(key="own_char").input("\\n")
    at.button(key="FormSubmitter:own_char_form-Add").click().run()
    assert step_text(at).endswith("x\n")

    at.text_input(key="own_char").input("€")
    at.button(key="FormSubmitter:own_char_form-Add").click().run()
    assert "does not know the character" in at.error[0].value
    assert step_text(at).endswith("x\n")

    at.button(key="step_undo").click().run()
    at.button(key="step_undo").click().run()
    assert step_text(at)[-1] == third
    assert len(step_text(at)) == 6

    at.button(key="step_ten").click().run()
    assert len(step_text(at)) == 16
    assert not at.exception


def test_step_mode_follows_a_strategy_change_without_losing_the_text(at):
    at.segmented_control(key="gen_mode").set_value("Step").run()
    at.button(key="step_ten").click().run()
    text = step_text(at)
    at.selectbox(key="gen_strategy").set_value("greedy").run()
    assert step_text(at) == text
    session = at.session_state["gen_step_state"].session
    assert session.cfg.strategy == "greedy"
    best = session.candidates(1)[0][0]
    at.button(key="step_next").click().run()
    assert step_text(at) == text + best
    at.button(key="step_restart").click().run()
    assert step_text(at) == "The "


def test_the_model_card_is_shown_beside_the_shipped_model(tmp_path, monkeypatch):
    from app import models

    card = tmp_path / "MODEL_CARD.md"
    card.write_text("**Demo model.** `python -m charlm train nietzsche.txt --minutes 30`; 30 minutes on a laptop CPU; "
                    "validation loss 1.40 nats/char.\n", encoding="utf-8")
    path, label, _ = models.SHIPPED["shipped"]
    monkeypatch.setitem(models.SHIPPED, "shipped", (path, label, card))
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert any("python -m charlm train nietzsche.txt" in m.value for m in at.markdown)


def test_without_a_shipped_model_the_page_says_what_to_do(tmp_path, monkeypatch):
    from app import models

    for key, (_, label, card) in list(models.SHIPPED.items()):
        monkeypatch.setitem(models.SHIPPED, key, (tmp_path / "missing.safetensors", label, card))
    models.shipped.clear()
    try:
        at = AppTest.from_file(APP, default_timeout=60).run()
        assert not at.exception
        assert "could not be loaded" in at.warning[0].value
        assert "No model yet" in at.info[0].value
        assert not at.code                         # the first view's sample went with the model
        assert "gen_write_state" not in at.session_state
    finally:
        models.shipped.clear()


def test_a_damaged_shipped_model_file_costs_the_sample_and_the_model_not_the_page(tmp_path, monkeypatch, app_env):
    from app import models, writing

    damaged = tmp_path / "demo.safetensors"
    damaged.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    monkeypatch.setattr(writing, "SHIPPED_FILE", damaged)
    for key, (_, label, card) in list(models.SHIPPED.items()):
        monkeypatch.setitem(models.SHIPPED, key, (damaged, label, card))
    writing.shipped_engine.clear()
    models.shipped.clear()
    try:
        at = AppTest.from_file(APP, default_timeout=60).run()
        assert not at.exception and not at.error
        assert not at.code                                   # no sample, and no traceback either
        assert "not a charlm model (no charlm metadata)" in at.warning[0].value.replace("\\", "")
        assert "No model yet" in at.info[0].value            # the page says what to do
    finally:
        writing.shipped_engine.clear()
        models.shipped.clear()
