"""Tests for app/learn/figures.py: a figure's PNG and SVG (also past altair's 5,000-row limit), its labels in large
type, and in the app the download buttons under a part's figure and the large-type toggle kept across pages."""

from __future__ import annotations

import json

import altair as alt
import pandas as pd
import pytest

from app.learn import figures

from helpers import open_learn

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def chart(rows: int) -> alt.Chart:
    frame = pd.DataFrame({"x": range(rows), "y": [i % 7 for i in range(rows)]})
    return alt.Chart(frame).mark_point().encode(x="x:Q", y="y:Q").properties(width=200, height=100)


@pytest.mark.parametrize("rows", [10, 6_000], ids=["small", "past altair's row limit"])
def test_a_chart_is_saved_as_png_and_svg(rows):
    picture = figures.png(chart(rows))
    assert isinstance(picture, bytes) and picture.startswith(PNG_SIGNATURE)
    drawing = figures.svg(chart(rows))
    assert isinstance(drawing, str) and "<svg" in drawing


def test_the_spec_holds_every_row_and_leaves_altairs_limit_as_it_was():
    spec = figures.spec(chart(6_000))
    [values] = spec["datasets"].values()
    assert len(values) == 6_000
    with pytest.raises(alt.MaxRowsError):   # elsewhere the process's own setting still holds
        chart(6_000).to_dict()


def test_sized_leaves_a_chart_as_it_is_in_normal_type_and_sets_its_labels_in_large_type(monkeypatch):
    drawn = chart(10)
    monkeypatch.setattr(figures, "large_type", lambda: False)
    assert figures.sized(drawn) is drawn
    assert not {"axis", "legend", "header", "title"} & set(drawn.to_dict()["config"])   # altair's theme sets "view"
    monkeypatch.setattr(figures, "large_type", lambda: True)
    config = figures.sized(drawn).to_dict()["config"]
    labels = {"labelFontSize": figures.AXIS_PX, "titleFontSize": figures.TITLE_PX}
    assert config["axis"] == labels and config["legend"] == labels and config["header"] == labels
    assert config["title"] == {"fontSize": figures.TITLE_PX}


def test_font_px_grows_a_marks_type_only_in_large_type(monkeypatch):
    monkeypatch.setattr(figures, "large_type", lambda: False)
    assert figures.font_px(15) == 15
    monkeypatch.setattr(figures, "large_type", lambda: True)
    assert figures.font_px(15) == 21


# --- in the app -----------------------------------------------------------------------------------

TOGGLE = "learn_large_type_toggle"


def axis_config(at) -> dict:
    """The character map's axis settings as sent to the browser ({} when none are set)."""
    [chart] = at.get("vega_lite_chart")
    return json.loads(chart.proto.spec).get("config", {}).get("axis", {})


def test_the_character_maps_figure_has_png_and_svg_downloads(app_env):
    at = open_learn("char_map")
    buttons = {button.key: button.proto.label for button in at.get("download_button")}
    assert buttons == {"cmap_scatter_png": "PNG", "cmap_scatter_svg": "SVG"}


def test_large_type_stays_on_across_parts_and_generate(app_env):
    at = open_learn("char_map")
    assert at.toggle(key=TOGGLE).value is False
    assert axis_config(at).get("labelFontSize") is None
    at.toggle(key=TOGGLE).set_value(True).run()
    assert at.session_state[figures.LARGE] is True
    assert axis_config(at) == {"labelFontSize": figures.AXIS_PX, "titleFontSize": figures.TITLE_PX}

    at.switch_page("app/pages/learn/surprise_map.py").run()
    assert not at.exception
    assert at.toggle(key=TOGGLE).value is True
    at.switch_page("app/pages/generate.py").run()
    assert not at.exception and at.session_state[figures.LARGE] is True
    at.switch_page("app/pages/learn/char_map.py").run()
    assert not at.exception
    assert at.toggle(key=TOGGLE).value is True
    assert axis_config(at) == {"labelFontSize": figures.AXIS_PX, "titleFontSize": figures.TITLE_PX}

    at.toggle(key=TOGGLE).set_value(False).run()   # and off again, for every part
    at.switch_page("app/pages/learn/surprise_map.py").run()
    assert at.toggle(key=TOGGLE).value is False and at.session_state[figures.LARGE] is False
