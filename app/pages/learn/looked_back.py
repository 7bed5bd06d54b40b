"""Learn, part 7: What it looked back at: how much each earlier character mattered to one prediction."""

from __future__ import annotations

import numpy as np
import streamlit as st

from app import charts, links, plain
from app.learn import common, draw, figures
from charlm import workload
from charlm.errors import UserError
from charlm.learn import influence as occlusion

TITLE = "What it looked back at"
INTRO = (
    "Pick a position in a text: the model gave the character there some probability p, from everything before "
    "it. Which of those earlier characters did that prediction rest on? Leave each one out in turn, read the "
    "text again, and see how ln p changes: the drop is that character's **influence**, in nats. It is the "
    "model's own change, computed exactly by the engine that writes (no approximation of what the model does). "
    "**Red**: the character helped, the model was surer of the right answer with it; **blue**: it misled, the "
    "right answer was likelier without it."
)
LENGTH = 600                    # characters of the passage a model starts with
MAX_CHARS = links.TEXT_CAP      # the text the part reads: what a share link (and the Surprise map's) can carry
BACK_RANGE = (10, 400)          # how far back a visitor may ask for (links.FIELDS holds the same)
TOP = 10                        # characters in the table of the largest influences
LEGEND = "influence (nats)"
LINE_BREAK, OTHER = "#e8871e", "#2c6fbb"   # the curve's bars: a line break stands out, as the lesson asks


@st.cache_data(show_spinner="Leaving out each earlier character in turn…", max_entries=32,
               hash_funcs=common.ENGINE_HASH)
def looked_back(engine, chars: tuple[str, ...], text: str, at: int, back: int,
                _should_stop: workload.StopCheck | None = None) -> occlusion.Influence:
    """The influence of the `back` characters before text[at] (only text[:at + 1] matters: pass that, and an
    edit after the position keeps the cache); _should_stop, left out of the key, raises workload.Stopped."""
    return occlusion.influence(engine, list(chars), text, at, back=back, should_stop=_should_stop)


def first_at(text: str) -> int:
    """Where the part starts: the line break ending the text's second line (the line before it ended within
    reach, the line-length lesson), else its first line break, else the middle of the text."""
    breaks = [i for i, char in enumerate(text) if char == "\n" and i >= 1]
    if len(breaks) >= 2:
        return breaks[1]
    return breaks[0] if breaks else max(1, len(text) // 2)


def _limit(text: str) -> int:
    return max(1, min(len(text), MAX_CHARS) - 1)


def _step(by: int) -> None:
    """Previous/Next: move the position one character (a callback, so it runs before the position is drawn)."""
    at = int(st.session_state.get("lb_at", 1)) + by
    st.session_state["lb_at"] = min(max(1, at), _limit(st.session_state.get("lb_text", "")))


def choose(model, at_hand) -> tuple[str, int, int] | None:
    """The text, the position and how far back, as the visitor set them; None when the text is too short."""
    start = common.passage(model, at_hand, LENGTH)
    common.start_values(model.key, lb_text=start, lb_at=first_at(start), lb_back=occlusion.BACK)
    text = st.text_area("Text (type or paste your own)", height=130, key="lb_text",
                        help=f"The part reads up to {MAX_CHARS:,} characters.")
    if len(text) > MAX_CHARS:
        st.warning(f"This text has {len(text):,} characters; the part reads at most {MAX_CHARS:,}, so it reads "
                   f"the first {MAX_CHARS:,}. Paste a later part on its own to see it.")
        text = text[:MAX_CHARS]
    if len(text) < 2:
        st.info("Type at least two characters: a prediction needs a character before it.")
        return None
    # A shorter text (or a link's position) may leave the position past its end: bring it back before drawing.
    st.session_state["lb_at"] = min(max(1, int(st.session_state.get("lb_at", 1))), _limit(text))
    # Buttons wide enough for "Previous" whole in large type.
    left, prev, nxt, right = st.columns([2, 1.5, 1.5, 3], vertical_alignment="bottom")
    at = int(left.number_input("Position to predict", min_value=1, max_value=_limit(text), step=1, key="lb_at",
                               help="Counted from 0, as the command line counts it: the first character has "
                                    "nothing before it."))
    prev.button("Previous", key="lb_prev", on_click=_step, args=(-1,), disabled=at <= 1,
                icon=":material/chevron_left:", width="stretch")
    nxt.button("Next", key="lb_next", on_click=_step, args=(1,), disabled=at >= _limit(text),
               icon=":material/chevron_right:", width="stretch")
    back = right.slider("How far back (characters)", *BACK_RANGE, key="lb_back",
                        help="Each character measured is one more reading of the text, all read together.")
    return text, at, back


def bounded_back(model, at: int, back: int) -> int:
    """How far back the work bound allows (a line says so when it is less than asked); 0 when none."""
    shape = workload.Shape.of(model.engine)
    most = workload.largest_within(lambda n: workload.influence_s(shape, at, n), back)
    if most < 1:
        st.warning(common.over_budget(shape, "not one earlier character can be measured", "try a smaller model"))
    elif most < back:
        st.info(common.over_budget(shape, f"only the nearest {most} characters are measured",
                                   "lower how far back, or move the position nearer the text's start"))
    return most


def grid(text: str, found: occlusion.Influence, back: int):
    """The text up to the position, each measured character coloured by its influence; the position framed."""
    import altair as alt
    import pandas as pd

    # A character the model skips is not measured, so the furthest measured may lie more than `back` back.
    first = max(0, found.at - max([back, *found.distances.tolist()]))
    shown = text[first:found.at + 1]
    values = np.full(len(shown), np.nan)
    values[found.at - found.distances - first] = found.influence
    distance = [str(found.at - first - i) for i in range(len(shown))]
    note = ["measured" if np.isfinite(v) else "not in the vocabulary: not measured" for v in values]
    note[-1] = f"predicted here: p = {np.exp(found.logprob):.1%}"
    distance[-1] = ""
    chart = draw.char_grid(shown, values, LEGEND, diverging=True, value_format=".4f",
                           details={"distance back": distance, "note": note}, first=first)
    row, col = draw.grid_cells(shown)[-1]
    frame = alt.Chart(pd.DataFrame({"row": [row], "col": [col]})).mark_rect(
        filled=False, stroke="#111", strokeWidth=2.5).encode(x="col:O", y="row:O").properties(
        width=alt.Step(draw.cell_steps()[0]), height=alt.Step(draw.cell_steps()[1]))   # the grid's, or it widens them
    return alt.LayerChart(layer=[*chart.layer, frame], data=chart.data, config=chart.config)


def table(found: occlusion.Influence, order=None):
    """distance, character, influence: every measured character nearest first, or those of `order`."""
    import pandas as pd

    rows = order if order is not None else range(len(found.distances))
    return pd.DataFrame({"distance": [int(found.distances[i]) for i in rows],
                         "character": [charts.show_char(found.chars[i]) for i in rows],
                         LEGEND: [float(found.influence[i]) for i in rows]})


def curve(found: occlusion.Influence, back: int):
    """Influence against distance back: one bar per measured character, line breaks in their own colour."""
    import altair as alt

    data = table(found)
    data["line break"] = [char == "\n" for char in found.chars]
    return alt.Chart(data).mark_bar(size=max(1, 600 // max(back, 1))).encode(
        x=alt.X("distance:Q", title="characters back from the position", scale=alt.Scale(domain=[0, back])),
        y=alt.Y(f"{LEGEND}:Q", title=LEGEND),
        color=alt.condition(alt.datum["line break"], alt.value(LINE_BREAK), alt.value(OTHER)),
        tooltip=["distance:Q", "character:N", alt.Tooltip(f"{LEGEND}:Q", format=".4f")],
    ).properties(width=700, height=220)


def line_before(found: occlusion.Influence) -> None:
    """At a line's end, a line saying what the line break before it meant to the prediction."""
    earlier = [i for i, char in enumerate(found.chars) if char == "\n"]
    if found.char != "\n" or not earlier:
        return
    i = earlier[0]
    rank = int(np.flatnonzero(found.ranked() == i)[0]) + 1
    why = ("without it the model expects this line break more: the two lines would read as one long line, and a "
           "break looks overdue" if found.influence[i] < 0 else
           "with it the model expects this line break more: it marks where this line began")
    st.caption(f"Predicting a line break: the line break before it, {found.distances[i]} characters back, has "
               f"influence {found.influence[i]:+.3f} nats, {_ordinal(rank)} largest of the {len(found.chars)} "
               f"measured (either way): {why}.")


def _ordinal(n: int) -> str:
    """'the' for 1 (the largest), else 'the 2nd', 'the 3rd', 'the 11th'..."""
    if n == 1:
        return "the"
    return f"the {n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def show(model, text: str, at: int, back: int) -> None:
    found = looked_back(model.engine, tuple(model.chars), text[:at + 1], at, back, common.should_stop())
    c1, c2, c3 = st.columns(3)
    c1.metric(f"Character at position {at}", charts.show_char(found.char))
    c2.metric("The model's probability of it", f"{np.exp(found.logprob):.2%}")
    c3.metric("ln p", f"{found.logprob:.4f} nats")
    figures.show(grid(text, found, back), key="lb_grid", name="looked-back")
    st.caption(f"The text up to position {at} (framed). Hover over a character for its distance back and its "
               "influence. Grey: not measured (a character the model does not read).")
    if model.window:
        st.caption(f"This model reads only the last {model.window} characters before each prediction: a "
                   f"character further back cannot change it, so its influence is exactly 0.")
    st.markdown("**Influence against distance** (orange bars: line breaks)")
    st.altair_chart(curve(found, back), key="lb_curve", width="content")
    line_before(found)
    st.markdown(f"**The {TOP} characters that mattered most** (either way)")
    st.dataframe(table(found, found.ranked()[:TOP]), hide_index=True, key="lb_top",
                 column_config={LEGEND: st.column_config.NumberColumn(format="%.4f")})
    st.caption("The text is read from its first character, from an empty memory, as the command line reads a "
               "file of it; this prints the same numbers (ln p, then distance, character and influence per line):")
    st.code(f"python -m charlm explain MODEL.safetensors TEXT.txt --at {at} --back {back}", language="bash")

model = common.page_start(TITLE, INTRO)
if model is not None:
    at_hand, where = common.training_text(model)
    st.caption(plain.escape(where) + (" The passage is from its validation text, which it never trained on."
                                      if at_hand else ""))
    chosen = choose(model, at_hand)
    if chosen is not None:
        text, at, back = chosen
        back = bounded_back(model, at, back)
        try:
            if back:
                show(model, text, at, back)
        except UserError as err:   # the character there, or every one before it, is outside the vocabulary
            st.warning(plain.escape(str(err)) + ". Move the position, or use characters this model knows.")
        except workload.Stopped:   # the visitor left or changed something: the next run draws the page
            pass
