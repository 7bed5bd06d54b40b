"""Altair charts (character frequencies, loss curves, next-character candidates) and how characters are shown."""

from __future__ import annotations

import bisect
import math
from typing import TYPE_CHECKING

from app import plain
from charlm.learn import overfit
from charlm.units import LN2

if TYPE_CHECKING:
    import altair as alt

# altair and pandas are imported inside the chart functions: together they take most of a second to
# import, and the Generate page's first view draws no chart.

MAX_POINTS = 400   # a curve is thinned to about this many points: the browser redraws it every second

# Characters that would be invisible (or break a label) are shown by a visible stand-in.
_VISIBLE = {" ": "␣", "\n": "⏎", "\t": "⇥", "\r": "␍", "\x0b": "␋", "\x0c": "␌", "\ufffd": "�"}


def show_char(char: str) -> str:
    """A visible stand-in for whitespace and control characters; other characters as they are."""
    if char in _VISIBLE:
        return _VISIBLE[char]
    if not char.isprintable():
        return f"U+{ord(char):04X}"
    return char


# The one escape lives in app/plain.py; this name stays for the pages that still call it by it.
escape_markdown = plain.escape


def as_sentence(message: str) -> str:
    """A message from charlm or Python (they start in lower case: "the model does not know ...") as a
    sentence for the page: its first letter a capital, the rest as it was (str.capitalize lowers it)."""
    return message[:1].upper() + message[1:]


def frequency_chart(frequencies: list[tuple[str, int]], total: int) -> alt.Chart:
    """The most common characters as bars, most common first.

    The order is written into the spec. Streamlit keeps a chart whose spec has not changed and swaps new data
    into it, and Vega then keeps the old domain's order for an unsorted axis: a new text's bars came out in the
    previous text's order. A spec that names the order changes with the text, so the chart is drawn afresh.
    """
    import altair as alt
    import pandas as pd

    data = pd.DataFrame({
        "character": [show_char(c) for c, _ in frequencies],
        "count": [n for _, n in frequencies],
        "share": [n / max(1, total) for _, n in frequencies],
    })
    return alt.Chart(data).mark_bar().encode(
        x=alt.X("character:N", sort=list(data["character"]), title=None,
                axis=alt.Axis(labelAngle=0, labelFontSize=13)),
        y=alt.Y("share:Q", title="share of the text", axis=alt.Axis(format="%")),
        tooltip=[alt.Tooltip("character:N"), alt.Tooltip("count:Q", format=","),
                 alt.Tooltip("share:Q", format=".2%")],
    )


def _thin(rows: list, limit: int = MAX_POINTS) -> list:
    if len(rows) <= limit:
        return rows
    stride = math.ceil(len(rows) / limit)
    return rows[::stride] + ([rows[-1]] if (len(rows) - 1) % stride else [])


def loss_chart(losses: list[tuple[int, float | None, float | None]],
               references: list[tuple[str, float]] | None = None, marker: int | None = None,
               kept: int | None = None) -> alt.Chart | None:
    """Smoothed training loss at every kept step and validation loss at each evaluation, in bits/char, the gap
    between them shaded, and a labelled rule where validation turned (charlm.learn.overfit).

    references: (label, nats/char) drawn as labelled horizontal rules, e.g. what models without a network
    score on the same text; marker: a step marked by a vertical rule (the evaluation a page is showing);
    kept: the step whose weights the model holds, when its file names one (the overfit reading's `kept`).
    """
    import altair as alt
    import pandas as pd

    train = [(step, log_bits(loss / LN2)) for step, loss, _ in losses if loss is not None]
    val = [(step, log_bits(loss / LN2)) for step, _, loss in losses if loss is not None]
    if not train and not val:
        return None
    data = pd.DataFrame(
        [{"step": s, "bits per character": b, "curve": "training (smoothed)"} for s, b in _thin(train)]
        + [{"step": s, "bits per character": b, "curve": "validation"} for s, b in val])
    colors = alt.Scale(domain=["training (smoothed)", "validation"], range=["#9aa5b1", "#c0392b"])
    base = alt.Chart(data).encode(
        x=alt.X("step:Q", title="training step"),
        y=fitted_log_axis(LOSS_AXIS_TITLE),
        color=alt.Color("curve:N", scale=colors, legend=alt.Legend(orient="top", title=None)),
        tooltip=["curve:N", "step:Q", alt.Tooltip("bits per character:Q", format=".3f")],
    )
    # The band's training points: the curve's, and every evaluation's (thinning may have passed one over).
    drawn = sorted({*_thin(train), *((step, log_bits(t / LN2)) for step, t, v in losses
                                    if t is not None and v is not None)})
    band = _gap_band(drawn, val)
    layers = [band] if band is not None else []   # first, beneath the curves: above them it would tint them
    layers += [base.mark_line(strokeWidth=2),
               base.transform_filter(alt.datum.curve == "validation").mark_point(filled=True, size=70)]
    if references:
        layers.append(_reference_rules(references, "step", min(s for s, _ in train + val)))
    turn = overfit.read(losses, kept).turn
    if turn is not None:
        steps = [s for s, _ in train + val]
        layers.append(_turn_rule(turn, right_half=turn > (min(steps) + max(steps)) / 2))
    if marker is not None:
        layers.append(_marker_rule("step", marker))
    return alt.layer(*layers)   # at once: each `+` copies every layer so far, the data included


def verdict_line(reading: overfit.Reading) -> str:
    """The overfitting verdict as the line under a loss chart (markdown: charlm's own words and numbers only)."""
    return f"**Verdict:** {reading.verdict}"


LOSS_AXIS_TITLE = "bits per character (log scale)"
TURN_COLOUR = "#1e8449"   # the green of the rule marking the evaluation whose weights a model holds


def _gap_band(train: list[tuple[int, float]], val: list[tuple[int, float]]) -> alt.Chart | None:
    """The gap between the validation and training curves shaded, from (step, bits) as drawn (None if they do
    not overlap). The training curve has a point at every kept step, validation one per evaluation: the band's
    upper edge is the validation line where each training point lies, interpolated as Vega draws a line on a log
    axis (straight in log bits), so the band hugs both curves instead of cutting across the training curve."""
    import altair as alt
    import pandas as pd

    val = sorted(val)
    if not train or not val:
        return None
    lo, hi = max(train[0][0], val[0][0]), min(train[-1][0], val[-1][0])
    rows = []
    for step, train_bits in train:
        if lo <= step <= hi:
            val_bits = _log_interpolated(val, step)
            rows.append({"step": step, "bits per character": val_bits, "training": train_bits,
                         "gap (val - train)": val_bits - train_bits})
    if not rows:
        return None
    # The same field and title as the curves' axis, and no scale of its own: the layers share the fitted one.
    return alt.Chart(pd.DataFrame(rows)).mark_area(color="#c0392b", opacity=0.13).encode(
        x=alt.X("step:Q"), y=alt.Y("bits per character:Q", title=LOSS_AXIS_TITLE), y2=alt.Y2("training:Q"),
        tooltip=["step:Q", alt.Tooltip("gap (val - train):Q", format=".3f")])


def _log_interpolated(points: list[tuple[int, float]], step: int) -> float:
    """The value at step of the line through points (step-sorted, positive), straight in log value."""
    at = bisect.bisect_left(points, step, key=lambda point: point[0])
    if points[at][0] == step or at == 0:
        return points[at][1]
    (s0, v0), (s1, v1) = points[at - 1], points[at]
    return math.exp(math.log(v0) + (math.log(v1) - math.log(v0)) * (step - s0) / (s1 - s0))


def _turn_rule(step: int, right_half: bool) -> alt.LayerChart:
    """A dashed rule at the step where validation turned, labelled at the top (on its left in the right half)."""
    import altair as alt
    import pandas as pd

    base = alt.Chart(pd.DataFrame([{"step": step, "label": "validation turned"}])).encode(x=alt.X("step:Q"))
    rule = base.mark_rule(color=TURN_COLOUR, strokeDash=[4, 3], strokeWidth=2).encode(
        tooltip=["label:N", "step:Q"])
    label = base.mark_text(align="right" if right_half else "left", baseline="top", dx=-5 if right_half else 5,
                           dy=4, color=TURN_COLOUR, fontSize=12, fontWeight="bold").encode(
        y=alt.value(0), text="label:N")
    return rule + label


LOG_FLOOR_BITS = 0.001   # a loss curve's values are drawn no lower: a log axis cannot reach 0


def log_bits(bits: float) -> float:
    """A loss in bits/char as a log axis can draw it (an all but perfect prediction at the floor)."""
    return max(bits, LOG_FLOOR_BITS)


def fitted_log_axis(title: str) -> alt.Y:
    """The y encoding of a loss chart: a log scale spanning the values drawn, and a few pixels beyond.

    A linear axis rounded out to whole bits (0 to 5) squeezed a late rise of the validation loss (0.49 to
    0.63 bits, overfitting) into a few pixels under a training curve that starts near 5 bits. On a log axis
    from the lowest value drawn to the highest, the same rise takes about a tenth of the chart's height.
    The span is left to Vega, from the data: a domain written into the spec would change at every poll,
    and Streamlit draws a chart whose spec changed afresh instead of swapping its data in.
    """
    import altair as alt

    return alt.Y("bits per character:Q", title=title, axis=alt.Axis(format=".2~f"),
                 scale=alt.Scale(type="log", nice=False, padding=8))   # padding: pixels above and below


def _reference_rules(references: list[tuple[str, float]], x_field: str, x_at: float) -> alt.LayerChart:
    """Dashed horizontal rules at each (label, nats/char), labelled at the left end in bits/char."""
    import altair as alt
    import pandas as pd

    data = pd.DataFrame([{"reference": label, "bits per character": nats / LN2, x_field: x_at,
                          "label": f"{label}: {nats / LN2:.2f} bits/char"} for label, nats in references])
    base = alt.Chart(data).encode(y=alt.Y("bits per character:Q"))
    rules = base.mark_rule(strokeDash=[6, 4], color="#5d6d7e", strokeWidth=1.5).encode(
        tooltip=["reference:N", alt.Tooltip("bits per character:Q", format=".3f")])
    labels = base.mark_text(align="left", baseline="bottom", dx=4, dy=-3, color="#5d6d7e", fontSize=12).encode(
        x=alt.X(f"{x_field}:Q"), text="label:N")
    return rules + labels


def _marker_rule(x_field: str, at: float) -> alt.Chart:
    """A vertical rule at x = at: the point in training a page is showing."""
    import altair as alt
    import pandas as pd

    return alt.Chart(pd.DataFrame([{x_field: at}])).mark_rule(color="#d35400", strokeWidth=2).encode(
        x=alt.X(f"{x_field}:Q"))


def runs_chart(runs: list[tuple[str, list[tuple[float, float]]]],
               references: list[tuple[str, float]] | None = None) -> alt.Chart | None:
    """Validation loss of several runs on one chart: x minutes of training, y bits/char, one colour per run.

    runs: (label, [(minutes, val nats/char), ...]) each; references as in loss_chart.
    """
    import altair as alt
    import pandas as pd

    rows = [{"minutes": minutes, "bits per character": log_bits(nats / LN2), "run": label}
            for label, points in runs for minutes, nats in points if nats is not None]
    if not rows:
        return None
    data = pd.DataFrame(rows)
    labels = [label for label, _ in runs]
    base = alt.Chart(data).encode(
        x=alt.X("minutes:Q", title="minutes of training", scale=alt.Scale(zero=True)),
        y=fitted_log_axis("validation bits per character (log scale)"),
        color=alt.Color("run:N", sort=labels, scale=alt.Scale(domain=labels, range=_RUN_COLOURS[:len(labels)]),
                        legend=alt.Legend(orient="top", title=None)),
        tooltip=["run:N", alt.Tooltip("minutes:Q", format=".2f"), alt.Tooltip("bits per character:Q", format=".3f")],
    )
    chart = base.mark_line(strokeWidth=2) + base.mark_point(filled=True, size=60)
    if references:
        chart += _reference_rules(references, "minutes", min(row["minutes"] for row in rows))
    return chart


_RUN_COLOURS = ["#8e44ad", "#c0392b", "#2c6fbb", "#27ae60", "#d35400", "#7f8c8d"]


def bits_chart(rows: list[tuple[str, float, bool]]) -> alt.Chart:
    """Bits/char per model as horizontal bars, best at the bottom; rows: (name, nats/char, highlighted)."""
    import altair as alt
    import pandas as pd

    data = pd.DataFrame([{"model": name, "bits per character": nats / LN2, "kind": "LSTM" if mark else "baseline"}
                         for name, nats, mark in rows])
    order = [name for name, _, _ in sorted(rows, key=lambda row: -row[1])]
    bars = alt.Chart(data).mark_bar().encode(
        y=alt.Y("model:N", sort=order, title=None, axis=alt.Axis(labelFontSize=13, labelLimit=260)),
        x=alt.X("bits per character:Q", title="validation bits per character (lower is better)"),
        color=alt.Color("kind:N", scale=alt.Scale(domain=["baseline", "LSTM"], range=["#9aa5b1", "#c0392b"]),
                        legend=None),
        tooltip=["model:N", alt.Tooltip("bits per character:Q", format=".3f")],
    )
    text = bars.mark_text(align="left", dx=4).encode(text=alt.Text("bits per character:Q", format=".2f"),
                                                     color=alt.value("#333"))
    return bars + text


def top_chars_chart(top: list[tuple[str, float]], answer: str | None = None) -> alt.Chart:
    """The likeliest next characters as bars, best first; the answer, when given, stands out."""
    import altair as alt
    import pandas as pd

    data = pd.DataFrame([{"rank": rank, "character": show_char(char), "probability": p,
                          "answer": "answer" if char == answer else "other"}
                         for rank, (char, p) in enumerate(top, start=1)])
    return alt.Chart(data).mark_bar().encode(
        x=alt.X("character:N", sort=[show_char(c) for c, _ in top], title=None,
                axis=alt.Axis(labelAngle=0, labelFontSize=15)),
        y=alt.Y("probability:Q", axis=alt.Axis(format="%")),
        color=alt.Color("answer:N", scale=alt.Scale(domain=["answer", "other"], range=["#d35400", "#9aa5b1"]),
                        legend=None),
        tooltip=["rank:Q", "character:N", alt.Tooltip("probability:Q", format=".1%")],
    )


def candidates_chart(candidates: list[tuple[str, float, float]], chosen: str | None = None,
                     title: str | None = None) -> alt.Chart:
    """Probabilities of the top candidates before and after the strategy; the chosen one stands out."""
    import altair as alt
    import pandas as pd

    rows = []
    for rank, (char, before, after) in enumerate(candidates):
        label = show_char(char)
        picked = chosen is not None and char == chosen
        for stage, p in (("model", before), ("after strategy", after)):
            rows.append({"rank": rank, "character": label, "stage": stage, "probability": p,
                         "picked": "chosen" if picked else "other"})
    data = pd.DataFrame(rows)
    order = [show_char(c) for c, _, _ in candidates]
    bars = alt.Chart(data, title=title or alt.Undefined).mark_bar().encode(
        x=alt.X("character:N", sort=order, title=None, axis=alt.Axis(labelAngle=0, labelFontSize=15)),
        xOffset=alt.XOffset("stage:N", sort=["model", "after strategy"]),
        y=alt.Y("probability:Q", scale=alt.Scale(domain=[0, 1.12]),   # headroom for the "chosen" marker
                axis=alt.Axis(format="%", values=[0, 0.25, 0.5, 0.75, 1])),
        color=alt.Color("stage:N", sort=["model", "after strategy"],
                        scale=alt.Scale(range=["#9aa5b1", "#2c6fbb"]),
                        legend=alt.Legend(orient="top", title=None)),
        opacity=alt.condition(alt.datum.picked == "chosen", alt.value(1.0),
                              alt.value(0.35 if chosen is not None else 1.0)),
        tooltip=["character:N", "stage:N", alt.Tooltip("probability:Q", format=".1%")],
    )
    if chosen is None:
        return bars
    top = max(p for c, before, after in candidates if c == chosen for p in (before, after))
    marker = alt.Chart(pd.DataFrame([{"character": show_char(chosen), "probability": top}])).mark_text(
        text="▼ chosen", dy=-10, align="center", color="#d35400", fontWeight="bold", fontSize=13,
    ).encode(x=alt.X("character:N", sort=order), y="probability:Q")
    return bars + marker
