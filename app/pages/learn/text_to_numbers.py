"""Learn, part 1: Text to numbers: the model's vocabulary (each character's index and count) and a sentence as ids."""

from __future__ import annotations

import streamlit as st

from app import charts, plain, state
from app.learn import common, draw, figures
from charlm.learn import anatomy
from charlm.text.corpus import UNKNOWN

TITLE = "Text to numbers"
INTRO = (
    "A network only does arithmetic, so text must become numbers first. The model keeps a **vocabulary**: "
    "every distinct character of its training text, each given a whole number, its **index**. Reading a "
    "sentence means looking up each character's index; writing means turning indices back into characters. "
    "A character the model never saw has no index at all."
)
MAX_SENTENCE = 300   # characters of the editable sentence


@st.cache_data(show_spinner=False, max_entries=8)
def vocabulary(chars: tuple[str, ...], text: str | None) -> tuple[list[anatomy.VocabEntry], dict[str, int]]:
    """The vocabulary table with counts in text, and the text's characters outside it (counting 600k takes ~50 ms)."""
    outside = {} if text is None else anatomy.outside_vocabulary(list(chars), text)
    return anatomy.vocabulary_table(list(chars), text), outside


def counted_text(model, at_hand) -> tuple[str | None, str]:
    """The text the counts come from and a line saying which; (None, why) when there is none."""
    if at_hand is not None:
        return at_hand.text, f"Counts are over the model's whole training text ({at_hand.source})."
    chosen = state.corpus()
    if chosen is not None:
        return chosen.corpus.text, ("Counts are over this session's text, which is not the one this model learned "
                                    "from, so some of its characters may be rare or missing there.")
    return None, "Counts need the text: choose one on the Corpus page, or the model's own text, to see them."


def first_sentence(text: str) -> str:
    """The first sentence of text (up to a full stop, a question or a line break), at most ~120 characters."""
    text = text.lstrip()
    ends = [i for i in (text.find(". "), text.find("? "), text.find("! "), text.find("\n")) if i >= 0]
    end = min(ends) + 1 if ends else len(text)
    return text[:min(end, 120)].strip() or text[:120]


def show_vocabulary(model, at_hand) -> None:
    import pandas as pd

    text, where = counted_text(model, at_hand)
    table, outside = vocabulary(tuple(model.chars), text)
    st.subheader(f"The vocabulary: {len(table):,} characters")
    st.caption(plain.escape(where))
    rows = {"index": [e.index for e in table], "character": [charts.show_char(e.char) for e in table]}
    if text is not None:
        total = max(1, len(text))
        rows["count"] = [e.count for e in table]
        rows["share of the text"] = [e.count / total * 100 for e in table]
    left, right = st.columns([2, 3], gap="large")
    left.dataframe(pd.DataFrame(rows), hide_index=True, height=360, key="numbers_vocab",
                   column_config={"share of the text": st.column_config.NumberColumn(format="%.2f%%")})
    if text is not None:
        frequencies = sorted(((e.char, e.count) for e in table), key=lambda x: -x[1])[:40]
        right.markdown("**The 40 most common characters**")
        right.altair_chart(charts.frequency_chart(frequencies, len(text)))
        if outside:
            shown = ", ".join(f"{charts.show_char(c)} ×{n:,}" for c, n in list(outside.items())[:12])
            right.caption("In this text but not in the model's vocabulary:")
            right.text(shown)
    else:
        right.info("Whitespace is shown as a visible sign: ␣ a space, ⏎ a line break, ⇥ a tab.")


def sentence_box() -> str:
    """The sentence box, showing the sentence the indices below are made from, in every browser.

    The sentence lives in session state (numbers_text: set for each model, by a share link, or typed). The box
    is created with it as its value, not given it through session state: a browser that mounts the box again
    (a page opened by a link, a session taken over by another browser) falls back to the value the box was
    created with, so a box given its value through session state could show empty while the indices below
    spelled the sentence. When the sentence is set from outside the box, a new box (a new key) takes it."""
    sentence = st.session_state["numbers_text"]
    if st.session_state.get("numbers_shown") != sentence:
        st.session_state["numbers_box"] = st.session_state.get("numbers_box", -1) + 1
    number = st.session_state["numbers_box"]
    key = "numbers_sentence" if number == 0 else f"numbers_sentence_{number}"
    st.session_state["numbers_shown"] = sentence
    # Kept at once (a callback runs before the page), so the page's Copy link, drawn above, has what was typed.
    return st.text_input("Type or edit a sentence", value=sentence, max_chars=MAX_SENTENCE, key=key,
                         on_change=_typed, args=(key,))


def _typed(key: str) -> None:
    st.session_state["numbers_text"] = st.session_state["numbers_shown"] = st.session_state[key]


def show_sentence(model, at_hand) -> None:
    st.subheader("A sentence as indices")
    common.start_values(model.key, numbers_text=first_sentence(common.passage(model, at_hand, 600)))
    sentence = sentence_box()
    if not sentence:
        st.info("Type a sentence to see it as numbers.")
        return
    pairs = anatomy.as_indices(model.chars, sentence)
    figures.show(draw.ids_strip(pairs), key="numbers_strip", name="text-to-numbers")
    st.caption("What the model reads: the indices, in order.")
    plain.block(str([idx for _, idx in pairs if idx is not None]))
    unknown = sorted({ch for ch, idx in pairs if idx is None})
    if unknown:
        what = (f"reads each as the unknown symbol {UNKNOWN} (index {model.chars.index(UNKNOWN)})"
                if UNKNOWN in model.chars else "skips them: they never reach it")
        st.warning(f"Not in this model's vocabulary (marked ?): the model {what}.")
        st.text("  ".join(charts.show_char(ch) for ch in unknown))
    back = "".join(model.chars[idx] for _, idx in pairs if idx is not None)
    st.caption("And back: the indices turned into characters again.")
    plain.block(back)


model = common.page_start(TITLE, INTRO)
if model is not None:
    at_hand, where = common.training_text(model)
    st.caption(plain.escape(where))
    show_vocabulary(model, at_hand)
    show_sentence(model, at_hand)
