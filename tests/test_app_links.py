"""App tests (AppTest) for share links (app/links.py): a page's Copy link holds its model and settings, opening
it gives another visitor the same view, and a bad, hostile or too long link gets a message and the defaults."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest
from streamlit.testing.v1 import AppTest

from app import links, models
from charlm.modelfile import checkpoint
from charlm.learn import neurons

from helpers import APP, open_learn


@pytest.fixture(autouse=True)
def _env(app_env):
    pass


def opened(link_or_params, page: str | None = None) -> AppTest:
    """A fresh visitor opening a link (or these query parameters) on a page (app/pages/<page>.py)."""
    if isinstance(link_or_params, str):
        parts = urlsplit(link_or_params)
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        page = page or ("generate" if parts.path in ("", "/") else
                        "learn/" + {p: m for m, _, p, _ in links.LEARN_PAGES}[parts.path.strip("/")])
    else:
        params = link_or_params
    at = AppTest.from_file(APP, default_timeout=60)
    for name, value in params.items():
        at.query_params[name] = value
    if page == "generate":
        at.run()
    else:
        at.run()   # the router's first run opens Generate; the address's page is opened next, as Streamlit does
        for name, value in params.items():
            at.query_params[name] = value
        at.switch_page(f"app/pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def copied_link(at: AppTest) -> str:
    """The address in the sidebar's Copy link popover."""
    blocks = [m.value for m in at.sidebar.markdown if m.value.startswith("```text")]
    assert len(blocks) == 1, [m.value for m in at.sidebar.markdown]
    return blocks[0].split("\n")[1]


def test_a_text_to_numbers_link_opens_the_same_model_and_sentence_and_leaves_the_address():
    at = open_learn("text_to_numbers", "shipped:python-docs")
    at.text_input[0].set_value("print(x) # 42").run()
    link = copied_link(at)
    assert link.startswith("/text-to-numbers?")   # AppTest has no address of its own; a server's gives its host
    assert dict(parse_qsl(urlsplit(link).query)) == {"model": "shipped:python-docs", "numbers_text": "print(x) # 42"}
    assert "session" not in link

    other = opened(link)
    assert other.selectbox(key="learn_model").value == "shipped:python-docs"
    box = other.text_input[0]
    assert box.value == "print(x) # 42"
    assert other.code[1].value == "print(x) # 42"   # the indices, turned back into characters
    assert not other.warning
    assert set(other.query_params) <= {"session"}   # applied once: the link's values leave the address
    assert copied_link(other) == link


def test_the_sentence_box_is_created_with_the_sentence_its_indices_spell():
    # A browser that mounts the box again shows the value it was created with: it must be the sentence the indices
    # below are made from (before, it was created empty and given the sentence through session state, and a
    # page opened by a link showed an empty box over a sentence's indices).
    for at in (open_learn("text_to_numbers"), opened({"model": "shipped", "numbers_text": "Zarathustra"},
                                                     "learn/text_to_numbers")):
        box = at.text_input[0]
        assert box.proto.default == box.value == at.code[1].value
    assert box.value == "Zarathustra"


def test_a_generate_link_carries_the_prime_strategy_knobs_and_seed():
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.selectbox(key="gen_model").set_value("shipped:seed-2017").run()
    at.text_area(key="gen_prime").set_value("Beyond good\nand evil").run()
    at.selectbox(key="gen_strategy").set_value("top-k").run()
    at.number_input(key="gen_seed").set_value(1234)
    at.slider(key="gen_temperature").set_value(1.25)
    at.slider(key="gen_top_k").set_value(7).run()
    link = copied_link(at)
    values = dict(parse_qsl(urlsplit(link).query))
    assert urlsplit(link).path == "/"
    assert {k: values[k] for k in ("model", "gen_prime", "gen_strategy", "gen_seed", "gen_temperature", "gen_top_k")} \
        == {"model": "shipped:seed-2017", "gen_prime": "Beyond good\nand evil", "gen_strategy": "top-k",
            "gen_seed": "1234", "gen_temperature": "1.25", "gen_top_k": "7"}

    other = opened(link)
    assert other.selectbox(key="gen_model").value == "shipped:seed-2017"
    assert other.text_area(key="gen_prime").value == "Beyond good\nand evil"
    assert other.selectbox(key="gen_strategy").value == "top-k"
    assert other.number_input(key="gen_seed").value == 1234
    assert other.slider(key="gen_temperature").value == 1.25
    assert other.slider(key="gen_top_k").value == 7
    assert not other.warning
    other.button(key="write").click().run()
    at.button(key="write").click().run()
    assert other.code[0].value == at.code[0].value   # the same model, prime, strategy and seed: the same text


def test_a_next_character_link_keeps_its_values_over_the_models_starting_values():
    at = open_learn("next_character", "shipped")
    at.text_area(key="next_prime").set_value("Part one.\nThe will to ").run()   # the prime box takes line breaks
    at.slider(key="next_top_k").set_value(5).run()
    other = opened(copied_link(at))
    assert other.text_area(key="next_prime").value == "Part one.\nThe will to "
    assert other.slider(key="next_top_k").value == 5


@pytest.mark.parametrize("params, refused", [
    ({"gen_temperature": "hot"}, "gen_temperature"),
    ({"gen_temperature": "nan"}, "gen_temperature"),
    ({"gen_temperature": "9"}, "gen_temperature (outside 0 to 2)"),
    ({"gen_strategy": "<script>"}, "gen_strategy (not one of its choices)"),
    ({"gen_samples": "1e9"}, "gen_samples"),
    ({"gen_prime": "x" * 2001}, "gen_prime (longer than the 2,000 characters it takes)"),
])
def test_a_bad_generate_value_gets_a_message_and_the_default(params, refused):
    at = opened(params, "generate")
    assert len(at.warning) == 1 and refused in at.warning[0].value, [w.value for w in at.warning]
    fresh = AppTest.from_file(APP, default_timeout=60).run()
    for key in ("gen_temperature", "gen_samples"):
        if key in params:
            assert at.session_state[key] == fresh.session_state[key]
    if "gen_prime" in params:
        assert at.text_area(key="gen_prime").value == fresh.text_area(key="gen_prime").value


def test_a_text_over_the_cap_is_refused_with_the_cap_named_never_cut():
    at = opened({"model": "shipped", "surprise_text": "a" * 2001}, "learn/surprise_map")
    assert [w.value for w in at.warning] == [
        "This link holds values this page does not take, so they are left at their defaults: surprise_text "
        "(longer than the 2,000 characters it takes)."]
    assert at.text_area(key="surprise_text").value != "a" * 2000

    with pytest.raises(ValueError, match="^This text is 2,500 characters long; a link holds at most 2,000. "
                                         "Shorten it to share it.$"):
        links.address("baselines", {"model": "shipped", "bl_paste": "b" * 2500})


@pytest.mark.parametrize("model", ["trained", "upload:0123456789abcdef", "run:1", "p-notpublished", "../../etc"])
def test_a_link_to_a_model_not_offered_opens_on_the_defaults(model):
    at = opened({"model": model, "numbers_text": "hello"}, "learn/text_to_numbers")
    assert [w.value for w in at.warning] == [
        "This link's model is not on this server (a published model is withdrawn by its owner or expires): the "
        "page opens on another model, with its own defaults."]
    assert at.selectbox(key="learn_model").value == "shipped"
    assert at.text_input[0].value != "hello"


def test_a_neuron_explorer_link_is_checked_against_its_model():
    feature = list(neurons.FEATURES)[1]
    at = opened({"model": "shipped", "neuron_feature": feature, "neuron_kind": "c", "neuron_pick": "any",
                 "neuron_number": "383", "neuron_layer": "1", "neuron_clamp": "2"},
                "learn/neuron_explorer")
    assert at.number_input(key="neuron_number").value == 383
    assert [w.value for w in at.warning] == [
        "This link holds values this page does not take, so they are left at their defaults: neuron_clamp "
        "(outside -1 to 1)."]
    assert at.selectbox(key="neuron_feature").value == feature and at.radio(key="neuron_kind").value == "c"
    assert at.slider(key="neuron_clamp").value == 1.0
    at = opened({"model": "shipped", "neuron_feature": feature, "neuron_kind": "h", "neuron_pick": "any",
                 "neuron_number": "384"}, "learn/neuron_explorer")   # the demo has 384 units
    assert "neuron_number (outside 0 to 383)" in at.warning[0].value
    assert at.number_input(key="neuron_number").value == 0


def test_a_training_over_time_link_opens_on_its_evaluation():
    at = open_learn("training_over_time", "shipped")
    steps = [row["step"] for row in checkpoint.load(models.SHIPPED_PATH).history]
    chosen = steps[len(steps) // 2]
    assert chosen != steps[-1]   # the page opens on the last
    at.select_slider(key="tot_step:shipped").set_value(chosen).run()
    link = copied_link(at)
    assert dict(parse_qsl(urlsplit(link).query)) == {"model": "shipped", "tot_step": str(chosen)}
    other = opened(link)
    assert other.select_slider(key="tot_step:shipped").value == chosen
