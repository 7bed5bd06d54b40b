"""Drawings the reading parts of Learn share: text as a grid of coloured characters, ids under characters,
and a prediction's probabilities as bars; all altair, so text from a model or a visitor is never markdown.

altair and pandas are imported inside the functions (together most of a second), as in app/charts.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from app.charts import show_char
from app.learn import figures
from charlm.units import format_fixed, plural

if TYPE_CHECKING:
    import altair as alt

COLUMNS = 80          # characters a grid row holds before it wraps
CELL_W, CELL_H = 11, 20   # pixels per character cell (sizes are steps: a layered chart's fixed height is lost)
_FONT = "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace"


def cell_steps() -> tuple[int, int]:
    """A character cell's width and height in pixels, larger in large type."""
    return figures.font_px(CELL_W), figures.font_px(CELL_H)


def grid_cells(text: str, columns: int = COLUMNS) -> list[tuple[int, int]]:
    """(row, column) of each character: a row holds `columns` characters; a line break ends its row (and may
    stand one past the last column, rather than alone on a row of its own)."""
    cells, row, col = [], 0, 0
    for char in text:
        if col == columns and char != "\n":
            row, col = row + 1, 0
        cells.append((row, col))
        col += 1
        if char == "\n":
            row, col = row + 1, 0
    return cells


def char_grid(text: str, values: Sequence[float], legend: str, *, diverging: bool = False,
              domain: tuple[float, float] | None = None, value_format: str = ".2f",
              details: dict[str, Sequence[str]] | None = None, columns: int = COLUMNS, first: int = 0) -> alt.Chart:
    """Each character of text in a cell coloured by its value (NaN: grey, no value); hover for the details.

    diverging: a blue-white-red scale centred on 0 (a unit's activation); else white to dark red (surprise).
    `details`: more tooltip lines, one string per character each. `first`: the position of text's first
    character in a longer text (the tooltip's positions count from there). In large type the cells and
    their letters grow.
    """
    import altair as alt
    import pandas as pd

    cells = grid_cells(text, columns)
    values = np.asarray(values, dtype=np.float64)
    if domain is None:
        finite = values[np.isfinite(values)]
        top = float(np.abs(finite).max()) if finite.size else 1.0
        domain = (-top, top) if diverging else (0.0, top)
    low, high = domain
    span = max(high - low, 1e-9)
    if diverging:
        dark = np.abs(values) > 0.6 * max(abs(low), abs(high))
    else:
        dark = (values - low) / span > 0.6
    data = pd.DataFrame({
        "row": [r for r, _ in cells], "col": [c for _, c in cells],
        "position": first + np.arange(len(text)),
        "character": [show_char(ch) for ch in text],
        "glyph": [" " if ch == " " else show_char(ch) for ch in text],   # spaces read best as space
        legend: values,
        "dark": dark & np.isfinite(values),
        **{name: list(column) for name, column in (details or {}).items()},
    })
    scale = (alt.Scale(scheme="redblue", domain=[low, 0, high], reverse=True, clamp=True) if diverging
             else alt.Scale(scheme="reds", domain=[low, high], clamp=True))
    tooltip = [alt.Tooltip("character:N"), alt.Tooltip("position:Q"),
               alt.Tooltip(f"{legend}:Q", format=value_format)] + [alt.Tooltip(f"{name}:N") for name in details or {}]
    base = alt.Chart(data).encode(
        x=alt.X("col:O", axis=None, scale=alt.Scale(paddingInner=0.05)),
        y=alt.Y("row:O", axis=None, scale=alt.Scale(paddingInner=0.1)),
        tooltip=tooltip,
    ).properties(width=alt.Step(cell_steps()[0]), height=alt.Step(cell_steps()[1]))
    boxes = base.mark_rect().encode(
        color=alt.condition(f"isValid(datum['{legend}']) && isFinite(datum['{legend}'])",
                            alt.Color(f"{legend}:Q", scale=scale, legend=alt.Legend(orient="top", title=legend)),
                            alt.value("#e6e6e6")))
    letters = base.mark_text(font=_FONT, fontSize=figures.font_px(13), baseline="middle").encode(
        text="glyph:N",
        color=alt.condition(alt.datum.dark, alt.value("white"), alt.value("#1b1b1b")))
    return (boxes + letters).configure_view(strokeWidth=0)


def ids_strip(pairs: list[tuple[str, int | None]], columns: int = 24) -> alt.Chart:
    """Each character with its id beneath it; a character outside the vocabulary is flagged (orange, '?')."""
    import altair as alt
    import pandas as pd

    rows = [{"slot": i % columns, "line": i // columns, "position": i, "character": show_char(ch),
             "index": "?" if idx is None else str(idx), "known": idx is not None}
            for i, (ch, idx) in enumerate(pairs)]
    data = pd.DataFrame(rows)
    base = alt.Chart(data).encode(
        x=alt.X("slot:O", axis=None), y=alt.Y("line:O", axis=None),
        tooltip=["position:Q", "character:N", alt.Tooltip("index:N", title="index (? = not in the vocabulary)")],
    ).properties(width=alt.Step(34), height=alt.Step(46))
    boxes = base.mark_rect(stroke="white", strokeWidth=2).encode(
        color=alt.condition(alt.datum.known, alt.value("#e8eef7"), alt.value("#f5b041")))
    chars = base.mark_text(font=_FONT, fontSize=16, dy=-8).encode(text="character:N")
    indices = base.mark_text(font=_FONT, fontSize=11, dy=11, color="#2c6fbb").encode(text="index:N")
    return (boxes + chars + indices).configure_view(strokeWidth=0)


def entropy_bits(probs: np.ndarray) -> float:
    """-sum p log2 p over the characters with p > 0: how many yes/no questions the prediction leaves open."""
    p = np.asarray(probs, dtype=np.float64)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum()) + 0.0   # + 0.0: a certain character gives 0, not -0.0


def distribution_chart(chars: list[str], stages: list[tuple[str, np.ndarray]], shown: int = 15) -> alt.Chart:
    """One panel of bars per stage (the model, then each setting): the `shown` characters the model likes best."""
    import altair as alt
    import pandas as pd

    order = np.argsort(-stages[0][1], kind="stable")[:shown]
    labels = [show_char(chars[i]) for i in order]
    titles = [f"{name}: {format_fixed(entropy_bits(p))} bits, "
              f"{plural(int(np.count_nonzero(p > 0)), 'character')} left" for name, p in stages]
    data = pd.DataFrame([{"stage": title, "character": label, "probability": float(p[i])}
                         for title, (_, p) in zip(titles, stages) for i, label in zip(order, labels)])
    base = alt.Chart().encode(
        x=alt.X("character:N", sort=labels, title=None, axis=alt.Axis(labelAngle=0, labelFontSize=14)),
        y=alt.Y("probability:Q", title=None, scale=alt.Scale(domain=[0, 1.15]),   # headroom for the labels
                axis=alt.Axis(format="%", values=[0, 0.5, 1])),
        tooltip=["character:N", alt.Tooltip("probability:Q", format=".2%"), "stage:N"],
    )
    bars = base.mark_bar(color="#2c6fbb")
    shares = base.mark_text(dy=-7, fontSize=10, color="#444").encode(
        text=alt.Text("probability:Q", format=".0%")).transform_filter(alt.datum.probability >= 0.005)
    panel = alt.layer(bars, shares, data=data).properties(width=max(280, 34 * len(labels)), height=80)
    return panel.facet(row=alt.Row("stage:N", sort=titles, title=None,
                                   header=alt.Header(labelAngle=0, labelAlign="left", labelAnchor="start",
                                                     labelOrient="top", labelFontSize=13)))
