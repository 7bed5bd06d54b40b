"""Inside the cell's drawings: the LSTM cell as a diagram with one character's numbers, and its gates over a text.

Functions of numbers only: the page computes the trace, these pick one unit (or the layer's average) and draw.
altair and pandas are imported inside the functions, as in app/charts.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from app.charts import show_char
from app.learn import draw, figures
from charlm.learn.cell import CellTrace

if TYPE_CHECKING:
    import altair as alt

AVERAGE = -1                # the unit choice that means the layer's average
ROWS = {"i": "i  input gate", "f": "f  forget gate", "o": "o  output gate", "c": "c  cell", "h": "h  output"}
TEXT_ROW = "text"
SLOTS = len(ROWS) + 2       # rows per band of the figure: the text, the five, a gap
GATE_COLOUR = "#2c6fbb"     # a gate wide open; white when shut
FONT = "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace"   # the characters, as the text grids draw them


def unit_name(unit: int, layer: int) -> str:
    return f"the average of layer {layer + 1}'s units" if unit == AVERAGE else f"unit {unit} of layer {layer + 1}"


def _average(values: np.ndarray) -> np.ndarray:
    """The mean over units (the last axis), in float64: the one average the figure and the diagram both show."""
    return values.mean(axis=-1, dtype=np.float64)


def along(trace: CellTrace, unit: int) -> dict[str, np.ndarray]:
    """i f g o c h over the text (T,) float64, for one unit or the layer's average (unit AVERAGE)."""
    if unit == AVERAGE:
        return {name: _average(getattr(trace, name)) for name in "ifgoch"}
    return {name: getattr(trace, name)[:, unit].astype(np.float64) for name in "ifgoch"}


@dataclass(frozen=True)
class Step:
    """The cell reading one character: the gates, the cell before and after, and the products between."""
    position: int     # in the text read, from 0
    char: str
    f: float
    i: float
    g: float
    o: float
    c_before: float   # the cell the step starts from
    kept: float       # f * c_before: what the cell keeps
    added: float      # i * g: what enters it
    c: float          # kept + added
    squashed: float   # tanh(c)
    h: float          # o * tanh(c)


def step(trace: CellTrace, c_before: np.ndarray, at: int, unit: int, char: str) -> Step:
    """The Step at position `at` for one unit or the layer's average; c_before (hidden,) is the cell the step
    started from. An average is each quantity's mean over the units, products included (the mean of f * c
    before, not the product of two means), so the diagram's sum holds for averages too."""
    parts = {name: getattr(trace, name)[at] for name in "ifgoch"}
    wide = {name: value.astype(np.float64) for name, value in parts.items()}
    before = np.asarray(c_before, dtype=np.float32)
    parts |= {"c_before": before, "kept": wide["f"] * before, "added": wide["i"] * wide["g"],
              "squashed": np.tanh(wide["c"])}
    pick = (lambda v: float(_average(v))) if unit == AVERAGE else (lambda v: float(v[unit]))
    return Step(at, char, **{name: pick(value) for name, value in parts.items()})


def _dot_text(text: str) -> str:
    """Text for a quoted DOT label, shown as it is (graphviz reads backslashes, quotes and entities)."""
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("&", "&amp;")


def _gate_fill(value: float) -> tuple[str, str]:
    """A gate's fill, from white (shut) to GATE_COLOUR (open), and a font colour that reads on it."""
    share = min(max(value, 0.0), 1.0)
    rgb = [round(255 + share * (int(GATE_COLOUR[k:k + 2], 16) - 255)) for k in (1, 3, 5)]
    return "#" + "".join(f"{v:02x}" for v in rgb), ("white" if share > 0.6 else "black")


def diagram(s: Step, unit: str, total: int) -> str:
    """The cell at one character as a graphviz (DOT) graph: the cell's path left to right, the gates feeding in."""
    def gate(name: str, label: str, value: float) -> str:
        fill, font = _gate_fill(value)
        return f'{name} [label="{label}\\n{value:.3f}", fillcolor="{fill}", fontcolor="{font}"];'

    title = f"Reading “{show_char(s.char)}” (character {s.position + 1:,} of {total:,}): {unit}"
    return "\n".join([
        "digraph cell {",
        f'  rankdir=LR; bgcolor="transparent"; labelloc=t; fontname="Helvetica"; fontsize=14; '
        f'label="{_dot_text(title)}";',
        '  node [shape=box, style="rounded,filled", fillcolor="#eeeeee", fontname="Helvetica", fontsize=12];',
        '  edge [fontname="Helvetica", fontsize=11, color="#555555"];',
        f'  before [label="c before\\n{s.c_before:+.3f}"];',
        f'  c [label="c, the cell\\n{s.c:+.3f}", penwidth=2];',
        f'  h [label="h, the output\\n{s.h:+.3f}", penwidth=2];',
        "  " + gate("f", "forget gate f", s.f),
        "  " + gate("i", "input gate i", s.i),
        f'  g [label="candidate g\\n{s.g:+.3f}"];',
        "  " + gate("o", "output gate o", s.o),
        '  keep [label="×", shape=circle, fixedsize=true, width=0.45, fillcolor="white"];',
        '  let [label="×", shape=circle, fixedsize=true, width=0.45, fillcolor="white"];',
        '  sum [label="+", shape=circle, fixedsize=true, width=0.45, fillcolor="white"];',
        '  squash [label="tanh", shape=circle, fixedsize=true, width=0.6, fillcolor="white"];',
        '  show [label="×", shape=circle, fixedsize=true, width=0.45, fillcolor="white"];',
        "  before -> keep; f -> keep; i -> let; g -> let; o -> show;",
        f'  keep -> sum [label="kept  f·c before\\n{s.kept:+.3f}"];',
        f'  let -> sum [label="let in  i·g\\n{s.added:+.3f}"];',
        "  sum -> c; c -> squash;",
        f'  squash -> show [label="tanh c\\n{s.squashed:+.3f}"];',
        "  show -> h;",
        "}",
    ])


def gates_chart(text: str, values: dict[str, np.ndarray], at: int) -> alt.LayerChart:
    """The five rows (i, f, o from 0 to 1; c and h about 0) under each character of text, wrapped in bands as
    the Neuron explorer's text is (a line break ends a band); the character at `at` (from 0) outlined."""
    import altair as alt
    import pandas as pd

    cells = draw.grid_cells(text)
    band = np.array([r for r, _ in cells], dtype=np.int64)
    column = np.array([c for _, c in cells], dtype=np.int64)
    characters = [show_char(ch) for ch in text]
    rows = [(TEXT_ROW, np.full(len(text), np.nan))] + [(name, values[name]) for name in ROWS]
    data = pd.concat([pd.DataFrame({"slot": band * SLOTS + k, "col": column, "position": np.arange(1, len(text) + 1),
                                    "character": characters, "quantity": (ROWS | {TEXT_ROW: TEXT_ROW})[name],
                                    "kind": name, "value": value, "chosen": np.arange(len(text)) == at})
                      for k, (name, value) in enumerate(rows)], ignore_index=True)
    reach = max(1.0, float(np.abs(values["c"]).max()) if len(text) else 1.0)
    names = [TEXT_ROW] + list(ROWS.values()) + [""]          # a slot's label; the last slot is a gap
    slots = int(band.max() + 1) * SLOTS if len(text) else SLOTS
    base = alt.Chart(data).encode(
        x=alt.X("col:O", axis=None),
        y=alt.Y("slot:O", title=None, scale=alt.Scale(domain=list(range(slots))),
                axis=alt.Axis(labelExpr=f"{names}[datum.value % {SLOTS}]", labelFontSize=figures.font_px(11),
                              labelOverlap=False, ticks=False, domain=False)),
        tooltip=["character:N", "position:Q", "quantity:N", alt.Tooltip("value:Q", format="+.3f")])

    def rects(kinds: list[str], title: str, scale: alt.Scale) -> alt.Chart:
        legend = alt.Legend(orient="top", direction="horizontal", title=title, gradientLength=120)
        return base.mark_rect().encode(color=alt.Color("value:Q", scale=scale, legend=legend)).transform_filter(
            alt.FieldOneOfPredicate(field="kind", oneOf=kinds))

    gates = rects(["i", "f", "o"], "gates i f o", alt.Scale(range=["white", GATE_COLOUR], domain=[0, 1]))
    cell = rects(["c"], "cell c", alt.Scale(scheme="redblue", domain=[-reach, 0, reach], reverse=True))
    out = rects(["h"], "output h", alt.Scale(scheme="redblue", domain=[-1, 0, 1], reverse=True))
    letters = base.mark_text(font=FONT, fontSize=figures.font_px(12)).encode(text="character:N").transform_filter(
        alt.datum.kind == TEXT_ROW)
    chosen = base.mark_rect(filled=False, stroke="black", strokeWidth=2).transform_filter(alt.datum.chosen)
    return (alt.layer(gates, cell, out, letters, chosen).resolve_scale(color="independent")
            .properties(width=alt.Step(draw.cell_steps()[0]), height=alt.Step(figures.font_px(15)))
            .configure_view(strokeWidth=0))
