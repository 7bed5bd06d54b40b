"""A Learn part's main figure, to keep: drawn on the page with PNG and SVG downloads beneath it, and the
larger type a projector needs (one toggle in the sidebar, kept across parts).

The files are made only when a visitor clicks a download (Streamlit calls the function then), by
vl-convert (Vega's own renderer, no browser), from the same chart the page draws.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

if TYPE_CHECKING:
    import altair as alt

LARGE = "learn_large_type"          # the visitor's choice, kept across parts (a widget's own key is not)
_TOGGLE = "learn_large_type_toggle"
PNG_SCALE = 2                       # pixels per chart pixel in a PNG: sharp on a slide
# In large type: the size of the page's text, and of a chart's labels, in pixels (Streamlit's own are 16 and 12).
PAGE_PX, AXIS_PX, TITLE_PX = 22, 17, 19


def large_type() -> bool:
    """Whether the visitor asked for large type (a figure's letters may be drawn larger then)."""
    return bool(st.session_state.get(LARGE, False))


def font_px(normal: int) -> int:
    """A figure's font size: as drawn, or about 1.4 times it in large type."""
    return round(normal * 1.4) if large_type() else normal


def _keep() -> None:
    st.session_state[LARGE] = st.session_state[_TOGGLE]


def projector_toggle() -> None:
    """The large-type toggle (sidebar); on, the page's text and its figures' labels grow."""
    st.session_state[_TOGGLE] = large_type()
    st.sidebar.toggle("Large type (projector)", key=_TOGGLE, on_change=_keep,
                      help="Larger text and figure labels on every Learn part, for a room reading a screen.")
    if large_type():
        st.html(f"<style>html {{ font-size: {PAGE_PX}px; }}</style>")


def sized(chart: alt.TopLevelMixin) -> alt.TopLevelMixin:
    """The chart with its axis, legend and header labels at the visitor's type size."""
    if not large_type():
        return chart
    labels = dict(labelFontSize=AXIS_PX, titleFontSize=TITLE_PX)
    return (chart.configure_axis(**labels).configure_legend(**labels).configure_header(**labels)
            .configure_title(fontSize=TITLE_PX))


def spec(chart: alt.TopLevelMixin) -> dict:
    """The chart's Vega-Lite specification with its data written in (however many rows)."""
    import altair as alt
    from streamlit.elements.vega_charts import _altair_globals_lock

    # altair's data settings are process-wide; Streamlit changes them under this lock while it draws a chart,
    # so the same lock keeps another visitor's chart from reading ours (pinned Streamlit; tests hold it).
    with _altair_globals_lock, alt.data_transformers.enable("default", max_rows=None):
        return chart.to_dict()


def png(chart: alt.TopLevelMixin) -> bytes:
    import vl_convert

    return vl_convert.vegalite_to_png(spec(chart), scale=PNG_SCALE)


def svg(chart: alt.TopLevelMixin) -> str:
    import vl_convert

    return vl_convert.vegalite_to_svg(spec(chart))


def show(chart: alt.TopLevelMixin, key: str, name: str, **drawn) -> None:
    """Draw a part's main figure (`key`: its element key; `drawn`: st.altair_chart's width, height...) with PNG
    and SVG downloads named `name`.png and `name`.svg."""
    chart = sized(chart)
    st.altair_chart(chart, key=key, **{"width": "content", **drawn})
    with st.container(horizontal=True):   # side by side, each as wide as its label (in large type too)
        st.download_button("PNG", lambda: png(chart), file_name=f"{name}.png", mime="image/png",
                           key=f"{key}_png", icon=":material/download:", on_click="ignore",
                           help="This figure as a picture, for slides and handouts.")
        st.download_button("SVG", lambda: svg(chart), file_name=f"{name}.svg", mime="image/svg+xml",
                           key=f"{key}_svg", icon=":material/download:", on_click="ignore",
                           help="This figure as a drawing that stays sharp at any size.")
