"""Learn in a real browser: every part reached from the navigation by its name, on the shipped models.

Each part is opened from the sidebar, shows its title and no error, and is photographed (tests/screenshots/,
for a person to look at). The Surprise map and the Neuron explorer are touched as a visitor would; the model
chosen on one part is still chosen on the next.
"""

from __future__ import annotations

from urllib.parse import urlparse

import pytest

from app.learn import LEARN_PAGES
from .browsing import choose, expect, go_to, main, settle, shot, streamlit_server, visit


@pytest.fixture(scope="module")
def learn_server(tmp_path_factory):
    with streamlit_server(tmp_path_factory.mktemp("learn")) as (url, _):
        yield url


def no_error(page) -> None:
    assert page.get_by_test_id("stException").count() == 0
    assert page.get_by_test_id("stAlertContentError").count() == 0


def test_every_learn_part_opens_by_its_name_and_works_on_the_shipped_models(learn_server, browser):
    page = visit(browser, learn_server)
    nav = page.get_by_test_id("stSidebarNav")
    expect(nav.get_by_text("Learn", exact=True)).to_be_visible()   # the section's heading
    for number, (module, title, path, _) in enumerate(LEARN_PAGES, start=1):
        go_to(page, title)
        assert urlparse(page.url).path == "/" + path
        if title != "2017 vs today":   # that part always compares the two shipped designs: no model to choose
            expect(main(page).get_by_role("combobox", name="Model to explore")).to_be_visible()
        no_error(page)
        shot(page, f"learn-{number:02d}-{path}")


def test_the_surprise_map_reads_a_visitors_text_and_the_model_choice_carries_to_the_next_part(learn_server, browser):
    page = visit(browser, learn_server)
    go_to(page, "Surprise map")
    box = main(page).get_by_role("textbox", name="Text to read (type or paste your own)")
    box.fill('She said, "the the the the the the the." Then zqxj.')
    box.press("Control+Enter")
    settle(page)
    expect(main(page).get_by_text("Characters scored")).to_be_visible()
    expect(main(page).get_by_text("50 of 51")).to_be_visible()          # the first character is only read
    expect(main(page).get_by_test_id("stVegaLiteChart").first).to_be_visible()
    no_error(page)
    shot(page, "learn-surprise-map-own-text")

    choose(page, "Model to explore", "Python docs model (shipped)")
    expect(main(page).get_by_text("Its training text is at hand")).to_be_visible()
    go_to(page, "Baselines")
    expect(main(page).get_by_role("combobox", name="Model to explore")).to_have_value("Python docs model (shipped)")
    expect(main(page).get_by_text("letter frequencies").first).to_be_visible()
    no_error(page)
    shot(page, "learn-baselines-python-docs")


def test_the_neuron_explorer_holds_a_unit_and_the_writing_changes(learn_server, browser):
    page = visit(browser, learn_server)
    go_to(page, "Neuron explorer")
    expect(main(page).get_by_text("Unit to watch")).to_be_visible()
    hold = main(page).get_by_role("slider", name="Hold h at")
    hold.focus()
    hold.press("Home")   # hold the unit at its lowest value
    settle(page)
    expect(hold).to_have_value("-1")
    texts = main(page).get_by_test_id("stCode").all_inner_texts()
    assert len(texts) >= 2 and texts[-1] != texts[-2]    # written with and without the unit held
    no_error(page)
    shot(page, "learn-neuron-explorer-held")
