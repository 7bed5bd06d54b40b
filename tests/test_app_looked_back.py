"""App tests (AppTest) for the Learn part "What it looked back at": it opens on every shipped model and on one
trained in the session, agrees with `python -m charlm explain`, steps its position, is reached from the Surprise
map at the position asked about, and answers a character outside the vocabulary with a message."""

from __future__ import annotations

import numpy as np
import pytest

from app.charts import show_char
from app.state import ChosenCorpus
from charlm.learn.influence import BACK

from helpers import chart_data, charlm, finished_fox_run, open_learn

TITLE = "What it looked back at"
SHIPPED = {"shipped": "demo", "shipped:python-docs": "python-docs", "shipped:seed-2017": "seed-2017"}


def figures(at):
    """(the grid's rows, the curve's rows) as the page drew them."""
    charts = at.get("vega_lite_chart")
    assert len(charts) == 2
    return chart_data(charts[0])[0], chart_data(charts[1])[0]


def metric(at, label_start: str) -> str:
    found = [m.value for m in at.metric if m.label.startswith(label_start)]
    assert len(found) == 1, [m.label for m in at.metric]
    return found[0]


def assert_shows(at, at_position: int, back: int = BACK) -> None:
    """The page predicts text[at_position]: its metric, the grid ending on it (framed) and the curve's distances."""
    text = at.text_area(key="lb_text").value
    assert not at.exception, [e.value for e in at.exception]
    assert at.number_input(key="lb_at").value == at_position
    assert metric(at, f"Character at position {at_position}") == show_char(text[at_position])
    grid, curve = figures(at)
    assert grid["position"].max() == at_position
    assert grid["position"].min() == max(0, at_position - back)
    assert grid["note"].iloc[-1].startswith("predicted here: p = ")
    assert np.isnan(grid.set_index("position").loc[at_position, "influence (nats)"])
    assert curve["distance"].tolist() == list(range(1, min(back, at_position) + 1))


@pytest.mark.parametrize("model", list(SHIPPED))
def test_the_part_opens_on_each_shipped_model_with_its_grid_and_curve(app_env, model):
    at = open_learn("looked_back", model)
    assert at.title[0].value == TITLE
    text = at.text_area(key="lb_text").value
    start = at.number_input(key="lb_at").value
    assert text[start] == "\n"                       # a line's end: the line-length lesson
    assert_shows(at, start)
    assert len(at.dataframe[0].value) == 10          # the ten that mattered most
    window = [c.value for c in at.caption if "influence is exactly 0" in c.value]
    assert window == (["This model reads only the last 100 characters before each prediction: a character further "
                       "back cannot change it, so its influence is exactly 0."] if model == "shipped:seed-2017" else [])


def test_explain_on_the_command_line_prints_the_numbers_the_part_shows(app_env, tmp_path):
    at = open_learn("looked_back", "shipped")
    at.number_input(key="lb_at").set_value(150).run()
    text = at.text_area(key="lb_text").value
    path = tmp_path / "text.txt"
    path.write_text(text, encoding="utf-8", newline="")
    run = charlm("explain", "checkpoints/demo.safetensors", path, "--at", 150)
    assert run.returncode == 0, run.stderr
    first, *lines = run.stdout.splitlines()
    assert metric(at, "ln p") == f"{first} nats"
    _, curve = figures(at)
    shown = [f"{d}\t{float(v):.4f}" for d, v in zip(curve["distance"], curve["influence (nats)"])]
    assert [f"{line.split(chr(9))[0]}\t{line.split(chr(9))[2]}" for line in lines] == shown
    assert len(lines) == 150                         # every character before position 150 (BACK is 200)


def test_next_and_previous_move_the_position_by_one_and_the_figures_follow(app_env):
    at = open_learn("looked_back", "shipped")
    at.number_input(key="lb_at").set_value(40).run()
    text = at.text_area(key="lb_text").value
    at.button(key="lb_next").click().run()
    assert_shows(at, 41)
    at.button(key="lb_prev").click().run()
    at.button(key="lb_prev").click().run()
    assert_shows(at, 39)
    assert metric(at, "Character at position 39") == show_char(text[39])


def test_previous_stops_at_the_first_position_with_something_before_it(app_env):
    at = open_learn("looked_back", "shipped")
    at.number_input(key="lb_at").set_value(1).run()
    assert at.button(key="lb_prev").disabled
    assert_shows(at, 1)


def test_the_surprise_map_opens_the_part_on_its_text_at_the_position_asked_about(app_env):
    at = open_learn("surprise_map", "shipped")
    text = at.text_area(key="surprise_text").value
    bits = chart_data(at.get("vega_lite_chart")[0])[0]["bits"].to_numpy()
    assert at.number_input(key="surprise_at").value == int(np.nanargmax(bits[2:]) + 2)   # its darkest cell
    at.number_input(key="surprise_at").set_value(57).run()
    at.button(key="surprise_explain").click().run()
    assert at.title[0].value == TITLE
    assert at.text_area(key="lb_text").value == text
    assert_shows(at, 57)


@pytest.fixture(scope="module")
def fox_run(tmp_path_factory):
    return finished_fox_run(tmp_path_factory.mktemp("job"))


def test_a_model_trained_in_the_session_works(app_env, fox_run):
    job, corpus = fox_run
    at = open_learn("looked_back", session={"job": job, "corpus": ChosenCorpus(corpus, corpus.stats(), "the fox text"),
                                            "learn_model": "trained"})
    assert at.selectbox(key="learn_model").value == "trained"
    text = at.text_area(key="lb_text").value
    assert text in corpus.text                       # a passage of its validation text
    assert_shows(at, at.number_input(key="lb_at").value)


def test_a_character_the_model_does_not_know_gets_a_message_not_a_traceback(app_env):
    at = open_learn("looked_back", "shipped")
    at.text_area(key="lb_text").set_value("the snowman \u2603 melts").run()
    at.number_input(key="lb_at").set_value(12).run()
    assert not at.exception
    assert [w.value for w in at.warning] == [
        "the character at 12 \\('\u2603'\\) is not one this model knows; it predicts none there. Move the position, "
        "or use characters this model knows."]
    assert not at.get("vega_lite_chart")
    at.text_area(key="lb_text").set_value("\u2603\u2603a").run()
    at.number_input(key="lb_at").set_value(2).run()
    assert [w.value for w in at.warning] == [
        "none of the characters before position 2 is one this model knows. Move the position, or use characters "
        "this model knows."]
    at.text_area(key="lb_text").set_value("a").run()
    assert not at.exception
    assert [i.value for i in at.info] == ["Type at least two characters: a prediction needs a character before it."]


def test_at_a_line_end_a_line_says_what_the_line_break_before_it_meant(app_env):
    lines = ["Whoever fights monsters should see to it that in the process he does not become",
             "a monster. And if you gaze long enough into an abyss, the abyss will gaze back",
             "into you. That which does not kill us makes us stronger, said the philosopher."]
    text = "\n".join(lines) + "\n"
    at_position = len(lines[0]) + 1 + len(lines[1])
    at = open_learn("looked_back", "shipped")
    at.text_area(key="lb_text").set_value(text).run()
    at.number_input(key="lb_at").set_value(at_position).run()
    assert_shows(at, at_position)
    # The demo model measures its lines: the line break 79 back is the 15th of the 158 characters before this one.
    assert ("Predicting a line break: the line break before it, 79 characters back, has influence -0.023 nats, the "
            "15th largest of the 158 measured (either way): without it the model expects this line break more: the "
            "two lines would read as one long line, and a break looks overdue.") in [c.value for c in at.caption]
