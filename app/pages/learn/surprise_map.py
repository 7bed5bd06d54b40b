"""Learn, part 5: Surprise map: a text coloured by how surprised the model is at each character."""

from __future__ import annotations

import numpy as np
import streamlit as st

from app import charts, links, plain
from app.learn import common, draw
from charlm import workload
from charlm.engine import scoring
from charlm.units import LN2

TITLE = "Surprise map"
INTRO = (
    "Read a text with the model and, before each character, ask what probability p it gave that character. Its "
    "**surprise** is -log₂ p bits: 0 for a character it was sure of, 1 bit for a coin flip, 6 bits or more for "
    "one it gave under 2%. Dark cells are where the model was caught out; hover over a character to see what it "
    "expected instead. The mean surprise over a text is the cross-entropy training lowers, measured on this one "
    "text."
)
# What the mean here is, beside the validation loss in the model's summary: the same measure, read another way.
LOSS_NOTE = (
    "Not the same number as the validation loss in the model's summary: training scores its held-out text as 32 "
    "streams read side by side, each starting from an empty memory and carrying it along; this map reads one "
    "passage in one stream{how}. Means over different texts, read differently, differ."
)
WINDOW_LOSS_NOTE = (
    "Not the same number as the validation loss in the model's summary: that is the mean over its held-out text, "
    "each character predicted from the {window} before it, as here; this is the mean over this passage alone."
)
MAX_CHARS = 2_000          # characters of a visitor's text the map reads (a longer one: its start, and a line says so)
CONTEXT_CHARS = 500        # characters of the model's own text read before a passage from it, not scored
MAX_WINDOW_CHARS = 400     # a window model re-reads its whole window for every character: ~100 times the work
FEWEST = 20                # characters worth a map; under this the page reads nothing
SCALE_BITS = (0.0, 10.0)   # the colour scale: beyond 10 bits (p < 0.1%) all look equally dark
PICK = "clicked"           # the grid's click selection: the position a visitor asks about
LOOKED_BACK = "app/pages/learn/looked_back.py"


@st.cache_data(show_spinner="Reading the text…", max_entries=32, hash_funcs=common.ENGINE_HASH)
def scored(engine, chars: tuple[str, ...], text: str, context: str = "",
           _should_stop: workload.StopCheck | None = None) -> scoring.Scored:
    """The map's numbers for `text`, read after `context` (not scored); _should_stop (left out of the cache's
    key) ends it early by raising workload.Stopped, and then nothing is cached."""
    return scoring.score_text(engine, list(chars), context + text, start=max(1, len(context)), top=3,
                              should_stop=_should_stop)


def context_for(model, at_hand, text: str) -> str:
    """The model's own text before `text`, when `text` is a passage of it (its last occurrence) that does not
    start it: what a reader of the whole text would have read first. '' otherwise."""
    if at_hand is None or len(text) < FEWEST:
        return ""
    at = at_hand.text.rfind(text)   # a passage offered here is from the validation text, at the end
    return at_hand.text[max(0, at - (model.window or CONTEXT_CHARS)):at] if at > 0 else ""


def cap(model) -> int:
    return MAX_WINDOW_CHARS if model.window else MAX_CHARS


def read_text(model, at_hand) -> tuple[str | None, str]:
    """-> (the text the map reads, or None when the work bound allows too little; the context read before it)."""
    limit = cap(model)
    common.start_values(model.key, surprise_text=common.passage(model, at_hand, limit))
    # No max_chars on the box: a browser refuses a longer paste whole, leaving the box empty without a word.
    text = st.text_area("Text to read (type or paste your own)", height=150, key="surprise_text",
                        help=f"The map reads up to {limit:,} characters.")
    if len(text) > limit and not model.window:
        st.warning(f"This text has {len(text):,} characters; the map reads at most {limit:,} (to keep each click "
                   f"quick), so it reads the first {limit:,}. Paste a later part on its own to see it.")
    if model.window:
        st.caption(f"This model re-reads a {model.window}-character window for every character, about "
                   f"{model.window} times the work of a model that carries its memory: it reads the first "
                   f"{limit:,} characters here.")
    context = context_for(model, at_hand, text[:limit])
    return bounded(model, text[:limit], context), context


def bounded(model, text: str, context: str = "") -> str | None:
    """The text, or its start that the model reads within the work bound after `context` (a line says so); None
    when not even FEWEST characters fit (a line says why)."""
    shape = workload.Shape.of(model.engine)
    most = workload.largest_within(lambda n: workload.score_s(shape, len(context) + n, n), len(text))
    if most >= len(text):
        return text
    if most < FEWEST:
        st.warning(common.over_budget(shape, f"the map cannot read {FEWEST} characters", "try a smaller model"))
        return None
    st.info(common.over_budget(shape, f"the map reads only the first {most:,} characters of this text",
                               "paste a later part on its own to see it"))
    return text[:most]


def guessed(top: list[tuple[str, float]]) -> str:
    """The model's likeliest characters at one position: 'e 45% · a 12% · ␣ 8%'."""
    return " · ".join(f"{charts.show_char(c)} {p:.0%}" for c, p in top)


def details(result: scoring.Scored, lead: int) -> dict[str, list[str]]:
    """Tooltip lines per character of the passage (the first `lead` of them not scored): its surprise in bits
    and nats, and the model's three likeliest guesses."""
    guesses = [""] * lead + [guessed(top) for top in result.top]
    nats = [""] * lead + ["not scored" if np.isnan(s) else f"{s:.2f}" for s in result.surprise]
    return {"expected": guesses, "nats": nats}


def not_scored(model, text: str, context: str) -> str:
    unknown = model.vocab.missing(text)
    line = ("Not scored: nothing; the model first read the {:,} characters before this passage in its own text, "
            "so it meets the first one with context".format(len(context)) if context
            else "Not scored: the first character (nothing comes before it)")
    if unknown:
        line += "; characters outside the model's vocabulary: " + " ".join(
            plain.escape(charts.show_char(c)) for c in unknown)   # the visitor's characters, in a caption
    return line + "."


def most_surprising(result: scoring.Scored, count: int = 8, skip: int = 0):
    """The `count` characters the model was most surprised at, leaving out the first `skip` scored positions."""
    import pandas as pd

    surprise = result.surprise.copy()
    surprise[:skip] = np.nan
    order = np.argsort(-np.nan_to_num(surprise, nan=-1.0), kind="stable")[:count]
    rows = []
    for i in order:
        if np.isnan(surprise[i]):
            break
        at = result.start + int(i)
        before = result.text[max(0, at - 20):at]
        rows.append({"after": "".join(charts.show_char(c) for c in before),
                     "came": charts.show_char(result.text[at]),
                     "bits": round(float(result.surprise[i]) / LN2, 2),
                     "the model expected": guessed(result.top[i])})
    return pd.DataFrame(rows)


def clickable(chart):
    """The grid with a click that selects a character's position (its cell or its letter)."""
    import altair as alt

    chart.layer[0] = chart.layer[0].add_params(alt.selection_point(name=PICK, fields=["position"], on="click"))
    return chart


def picked(event) -> int | None:
    """The position of the character clicked on the grid, if one is."""
    chosen = (event or {}).get("selection", {}).get(PICK) or []
    position = chosen[0].get("position") if chosen else None
    return int(position) if isinstance(position, (int, float)) else None


def explain_link(model, text: str, bits: np.ndarray, clicked: int | None) -> None:
    """A position to explain (the most surprising one, or the one clicked) and the button that opens "What it
    looked back at" on this text there."""
    text = text[:links.TEXT_CAP]   # what that part (and a link to it) reads
    if clicked is not None and clicked != st.session_state.get("surprise_clicked") and 1 <= clicked < len(text):
        st.session_state["surprise_at"] = clicked   # a new click moves the position; typing one still works
    st.session_state["surprise_clicked"] = clicked
    at = st.session_state.get("surprise_at", 0)
    if st.session_state.get("surprise_at_for") != text or not 1 <= at < len(text):
        st.session_state["surprise_at"] = darkest(bits, len(text))   # a new text starts at its darkest cell
        st.session_state["surprise_at_for"] = text
    left, right = st.columns([1, 2], vertical_alignment="bottom")
    at = int(left.number_input("Position to explain", 1, len(text) - 1, step=1, key="surprise_at",
                               help="Click a character on the map to choose it, or type its position."))
    if right.button("What did it look back at?", key="surprise_explain", icon=":material/manage_search:"):
        st.session_state["lb_text"], st.session_state["lb_at"] = text, at
        started = st.session_state.setdefault(common._STARTED_FOR, {})
        started["lb_text"] = started["lb_at"] = model.key   # so that part keeps them rather than its own start
        st.switch_page(LOOKED_BACK)
    st.caption(f"Which earlier characters did the prediction of position {at} "
               f"({plain.escape(charts.show_char(text[at]))}) rest on? The button opens 'What it looked back at' "
               "on this text, which that part reads from an empty memory.")


def darkest(bits: np.ndarray, length: int) -> int:
    """The most surprising position among the first `length` characters of the map (past the second, which
    is guessed from one character alone), else 1."""
    surprise = np.nan_to_num(bits[:length], nan=-1.0)
    return int(np.argmax(surprise[2:]) + 2) if len(surprise) > 2 else 1


def show(model, text: str, context: str) -> None:
    result = scored(model.engine, tuple(model.chars), text, context, common.should_stop())
    lead = len(text) - len(result.surprise)   # the passage's characters before the first scored one: 0 or 1
    if result.scored_count == 0:
        st.info("Nothing here could be scored: the model needs a character before each one it scores, and "
                "characters from its vocabulary.")
        return
    c1, c2, c3 = st.columns(3)
    c1.metric("Mean surprise", f"{result.mean_bits:.3f} bits/char")
    c2.metric("In nats", f"{result.mean_nats:.3f} nats/char")
    c3.metric("Characters scored", f"{result.scored_count:,} of {len(text):,}")
    st.caption(WINDOW_LOSS_NOTE.format(window=model.window) if model.window else LOSS_NOTE.format(
        how=f", after first reading the {len(context):,} characters before it" if context else ", from an empty memory"))
    bits = np.concatenate([np.full(lead, np.nan), result.surprise / LN2])
    grid = clickable(draw.char_grid(text, bits, "bits", domain=SCALE_BITS, details=details(result, lead)))
    event = st.altair_chart(grid, key="surprise_grid", width="content", on_select="rerun", selection_mode=PICK)
    st.caption(not_scored(model, text, context) + " Grey cells were not scored. Beyond 10 bits every cell is the "
                                                  "darkest red.")
    explain_link(model, text, bits, picked(event))
    st.markdown("**Where the model was most surprised**")
    # From an empty memory the first scored character is guessed from one character alone: it would top the list
    # for that reason only (a passage cut from mid-text), so it is left out.
    skip = 0 if context else 1
    st.dataframe(most_surprising(result, skip=skip), hide_index=True, key="surprise_top")
    if skip:
        st.caption("Left out of this list: the second character, which the model guesses from the first alone.")


model = common.page_start(TITLE, INTRO)
if model is not None:
    at_hand, where = common.training_text(model)
    st.caption(plain.escape(where) + (" The passage is from its validation text, which it never trained on." if at_hand else ""))
    text, context = read_text(model, at_hand)
    if text is None:
        pass                       # refused by the work bound: its warning says why
    elif len(text) < 2:
        st.info("Type at least two characters: the model scores each one from those before it.")
    else:
        try:
            show(model, text, context)
        except workload.Stopped:   # the visitor left or changed the text: nothing to show, nothing cached
            pass
