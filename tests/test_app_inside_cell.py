"""App tests (AppTest) for the Learn part Inside the cell: it opens on every shipped model and on one trained in
the session; the numbers drawn are cell.gates' own, its cell the Neuron explorer's; the average, the position
and bad text."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import numpy as np
import pytest
from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df
from streamlit.testing.v1 import AppTest

from app import models
from app.plain import escape
from app.charts import show_char
from app.learn import cell_figures
from app.state import ChosenCorpus
from charlm.learn import cell

from helpers import APP, finished_fox_run, open_learn

SHIPPED = ["shipped", "shipped:python-docs", "shipped:seed-2017"]
ROWS = list(cell_figures.ROWS)   # i f o c h


def rerun(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def figure(at: AppTest):
    """The rows the page's main figure (its one altair chart) draws."""
    charts = at.get("vega_lite_chart")
    assert len(charts) == 1
    return convert_arrow_bytes_to_pandas_df(charts[0].proto.datasets[0].data.data)


def drawn(at: AppTest) -> dict[str, np.ndarray]:
    """Each of i f o c h along the text as the figure draws it, in the order of the text."""
    data = figure(at)
    return {name: data[data["kind"] == name].sort_values("position")["value"].to_numpy() for name in ROWS}


def dot(at: AppTest) -> str:
    charts = at.get("graphviz_chart")
    assert len(charts) == 1
    return charts[0].proto.spec


def page_trace(at: AppTest, model_key: str) -> tuple[str, cell.CellTrace, int, int]:
    """What the page reads (its text, as the model reads it), cell.gates over it, and the unit and position."""
    model = models.shipped(model_key)
    typed = at.text_area(key="cell_text").value
    ids, positions = model.vocab.read(typed)
    layer = at.number_input(key="cell_layer").value - 1
    return ("".join(typed[p] for p in positions), cell.gates(model.engine, ids, layer),
            at.selectbox(key="cell_unit").value, at.number_input(key="cell_at").value - 1)


def expected_dot(text: str, trace: cell.CellTrace, before: np.ndarray, unit: int, at: int) -> str:
    step = cell_figures.step(trace, before, at, unit, text[at])
    return cell_figures.diagram(step, cell_figures.unit_name(unit, trace.layer), len(text))


@pytest.mark.parametrize("model_key", SHIPPED)
def test_each_shipped_model_opens_with_its_diagram_gates_and_keepers(app_env, model_key):
    at = open_learn("inside_cell", model=model_key)
    assert not at.error and not at.warning
    assert dot(at).startswith("digraph cell {")
    text, trace, unit, position = page_trace(at, model_key)
    assert unit == cell.keepers(trace)[0].unit            # it opens on the unit that keeps its cell longest
    values = drawn(at)
    for name in ROWS:
        assert np.array_equal(values[name], getattr(trace, name)[:, unit].astype(np.float64)), name
    keepers = at.dataframe[-1].value
    assert list(keepers["unit"]) == [k.unit for k in cell.keepers(trace, top=10)]
    snaps = at.dataframe[0].value
    found = {gate: cell.snaps(trace, text, gate, top=5) for gate in "if"}
    assert list(snaps["reading"]) == [show_char(s.char) for g in "if" for s in found[g]]
    for gate, name in (("i", "input gate"), ("f", "forget gate")):   # a sentence per gate names each character
        said = [m.value for m in at.markdown if m.value.startswith(f"Averaged over the layer's units, the **{name}**")]
        assert len(said) == 1 and all(escape(show_char(s.char)) in said[0] for s in found[gate])


def test_the_diagram_shows_cell_gates_numbers_and_its_sum_holds(app_env):
    at = open_learn("inside_cell")
    text, trace, unit, position = page_trace(at, "shipped")
    assert 0 < position and text[position] == "\n"        # it opens on the first line break
    assert dot(at) == expected_dot(text, trace, trace.c[position - 1], unit, position)
    step = cell_figures.step(trace, trace.c[position - 1], position, unit, text[position])
    for name in "ifgoch":
        assert getattr(step, name) == float(getattr(trace, name)[position, unit])
    assert step.kept + step.added == pytest.approx(step.c, abs=1e-6)


def test_the_cell_shown_is_the_one_the_neuron_explorer_shows(app_env):
    at = open_learn("inside_cell")
    text, trace, unit, _ = page_trace(at, "shipped")
    shown = drawn(at)["c"]
    explorer = open_learn("neuron_explorer")
    explorer.selectbox(key="neuron_pick").set_value("any").run()
    explorer.number_input(key="neuron_number").set_value(unit)
    explorer.radio(key="neuron_any_kind").set_value("c")
    explorer.text_area(key="neuron_text").set_value(text)
    rerun(explorer)
    grid = convert_arrow_bytes_to_pandas_df(explorer.get("vega_lite_chart")[0].proto.datasets[0].data.data)
    np.testing.assert_allclose(shown, grid.sort_values("position")["value"].to_numpy(), rtol=0, atol=1e-6)


def test_the_average_is_the_layers_mean(app_env):
    at = open_learn("inside_cell")
    at.selectbox(key="cell_unit").set_value(cell_figures.AVERAGE)
    rerun(at)
    text, trace, unit, position = page_trace(at, "shipped")
    values = drawn(at)
    for name in ROWS:
        assert np.array_equal(values[name], getattr(trace, name).mean(axis=1, dtype=np.float64)), name
    assert dot(at) == expected_dot(text, trace, trace.c[position - 1], cell_figures.AVERAGE, position)
    assert "the average of layer 1's units" in dot(at)


def test_moving_the_position_moves_the_diagram(app_env):
    at = open_learn("inside_cell")
    at.number_input(key="cell_at").set_value(10)
    rerun(at)
    text, trace, unit, position = page_trace(at, "shipped")
    assert position == 9 and text[9] == '"'                # a quote, escaped for graphviz
    assert f'label="Reading “\\"” (character 10 of {len(text)}):' in dot(at)
    assert dot(at) == expected_dot(text, trace, trace.c[8], unit, 9)
    data = figure(at)
    assert set(data.loc[data["chosen"], "position"]) == {10}
    at.number_input(key="cell_at").set_value(1)
    rerun(at)
    assert dot(at) == expected_dot(text, trace, np.zeros(trace.c.shape[1], np.float32), unit, 0)


@pytest.mark.parametrize("number", [100, 101, 250])   # the 2017 model's window is 100 characters
def test_a_window_models_cell_before_is_from_the_same_re_reading(app_env, number):
    at = open_learn("inside_cell", model="shipped:seed-2017")
    at.number_input(key="cell_at").set_value(number)
    rerun(at)
    text, trace, unit, position = page_trace(at, "shipped:seed-2017")
    model = models.shipped("shipped:seed-2017")
    ids, _ = model.vocab.read(text)
    # The re-reading that ends at the position starts `window` - 1 characters before it (or at the text's start):
    # its cell one step earlier.
    before = cell.gates(model.engine, ids[max(0, position - model.window + 1):position], 0).c[-1]
    assert dot(at) == expected_dot(text, trace, before, unit, position)
    step = cell_figures.step(trace, before, position, unit, text[position])
    assert step.kept + step.added == pytest.approx(step.c, abs=1e-5)
    assert any("re-reads the 100 characters ending there" in c.value for c in at.caption)


def test_a_model_trained_in_the_session_works(app_env, tmp_path):
    job, corpus = finished_fox_run(tmp_path)
    at = open_learn("inside_cell", session={"job": job, "corpus": ChosenCorpus(corpus, corpus.stats(), "fox")})
    assert at.selectbox(key="learn_model").value == "trained"
    assert not at.error and dot(at).startswith("digraph cell {")
    assert "\n" in at.text_area(key="cell_text").value
    assert len(figure(at)) and len(at.dataframe) == 2


@pytest.mark.parametrize("typed, said", [("", "Type some text"), ("€™€", "knows none of these characters")])
def test_text_it_cannot_read_gets_a_message(app_env, typed, said):
    at = open_learn("inside_cell")
    at.text_area(key="cell_text").set_value(typed)
    rerun(at)
    assert [said in i.value for i in at.info] == [True]
    assert not at.get("graphviz_chart") and not at.get("vega_lite_chart")


def test_unknown_characters_are_skipped_and_listed(app_env):
    at = open_learn("inside_cell")
    at.text_area(key="cell_text").set_value("the €cat\n™sat")
    rerun(at)
    assert ("Characters outside the model's vocabulary (skipped: the model reads on, and the character numbers "
            "below count only what it reads): € ™") in [
        c.value for c in at.caption]
    text, trace, unit, _ = page_trace(at, "shipped")
    assert text == "the cat\nsat" and len(drawn(at)["c"]) == len(text)


def test_a_share_link_opens_the_same_unit_and_character(app_env):
    at = open_learn("inside_cell")
    at.selectbox(key="cell_unit").set_value(cell_figures.AVERAGE)
    at.number_input(key="cell_at").set_value(5)
    rerun(at)
    [link] = [m.value.split("\n")[1] for m in at.sidebar.markdown if m.value.startswith("```text")]
    params = dict(parse_qsl(urlsplit(link).query, keep_blank_values=True))
    assert params["cell_unit"] == "-1" and params["cell_at"] == "5"
    other = AppTest.from_file(APP, default_timeout=60)
    other.run()   # the router's first run opens Generate; the address's page is opened next, as Streamlit does
    for name, value in params.items():
        other.query_params[name] = value
    other.switch_page("app/pages/learn/inside_cell.py").run()
    assert not other.exception and not other.warning
    assert other.selectbox(key="cell_unit").value == cell_figures.AVERAGE
    assert other.number_input(key="cell_at").value == 5 and dot(other) == dot(at)
