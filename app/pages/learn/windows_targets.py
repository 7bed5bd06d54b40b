"""Learn, part 2: Windows and targets: the 2017 design (a window, one target each) beside today's (every position
a target), in examples and memory for the model's own text."""

from __future__ import annotations

import streamlit as st

from app import charts, plain
from app.learn import common
from charlm.learn import anatomy

TITLE = "Windows and targets"
INTRO = (
    "Training needs examples: some text in, the character that comes next as the answer (the **target**). "
    "The 2017 tutorial cut the text into 100-character **windows**, each with the one character after it as "
    "its target, and fed each index as a single number, index / vocabulary size. Today's models read the text "
    "as long streams: every position is a target for the characters before it, and each index picks a "
    "learned row of numbers (its **embedding**). Same text; very different numbers of examples and memory."
)
SHIFT_CHARS = 24   # characters of today's input/target shift shown


def size(n_bytes: int) -> str:
    """Bytes for people: 1.2 MB, 445 MB, 3.1 GB."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:,.1f} {unit}"
    return f"{n_bytes:,} bytes"


def corpus_size(model, at_hand, example: str) -> tuple[int, str]:
    """Characters of the model's text and where that number comes from."""
    if at_hand is not None:
        return len(at_hand.text), f"the model's training text, at hand ({at_hand.source})"
    recorded = model.info.get("corpus_chars")
    if isinstance(recorded, int) and recorded > 0:
        return recorded, f"the size of {model.info.get('corpus') or 'its text'} as recorded in the model file"
    return len(example), "the example passage below (the model file does not record its text's size)"


def show_designs(n_chars: int, vocab_size: int, window: int, embed_dim: int | None) -> None:
    old = anatomy.window_design(n_chars, vocab_size, window)
    new = anatomy.stream_design(n_chars, vocab_size)
    left, right = st.columns(2, gap="large")
    with left.container(border=True):
        st.markdown(f"**2017: a {window}-character window, one target each**")
        st.metric("Training examples", f"{old.examples:,}")
        st.metric("Memory for them", size(old.total_bytes))
        st.caption(f"Each window copied out as {window} float32 numbers ({window * 4:,} bytes) and its target as a "
                   f"one-hot row of {vocab_size} float32s ({vocab_size * 4:,} bytes), as Keras held them: "
                   f"{size(old.input_bytes)} of inputs and {size(old.target_bytes)} of targets.")
    with right.container(border=True):
        st.markdown("**Today: every position a target, the text read as streams**")
        st.metric("Training examples", f"{new.examples:,}")
        st.metric("Memory for them", size(new.total_bytes))
        per_id = anatomy.id_bytes(vocab_size)
        embed = (f" The embedding table adds {vocab_size} rows of {embed_dim} numbers "
                 f"({size(vocab_size * embed_dim * 4)}), learned, shared by every position."
                 if embed_dim else "")
        st.caption(f"The text is stored once as {per_id}-byte ids; the targets are the same array read one "
                   f"position later, so they cost nothing more.{embed}")
    if new.total_bytes and old.total_bytes:
        st.caption(f"Both make about one target per character of the text, but the 2017 design reads {window} "
                   f"characters for each target where today's reads one, and holds "
                   f"{old.total_bytes / new.total_bytes:,.0f} times the memory.")


def passage_source(model, at_hand, example: str) -> str:
    """Where the examples' text comes from, for people: common.passage's choice, said as it is."""
    if at_hand is not None:
        train, val = at_hand.split_text()
        return (f"The window moves through a passage of the held-out part of the text (characters "
                f"{len(train) + 1:,} to {len(at_hand.text):,}, which the model was validated on and never trained "
                "on), not through the start of the text.")
    if example == common.EXAMPLE_TEXT:
        return "The window moves through an example passage: the model's training text is not at hand."
    if any(row.get("sample") for row in common.history(model)[0]):
        return ("The window moves through a sample the model wrote while it trained: its training text is not at "
                "hand, and the example passage holds characters it does not know.")
    return ("The window moves through the first characters of the model's vocabulary, one after another: its "
            "training text is not at hand, the example passage holds characters it does not know, and its file "
            "keeps no sample.")


def show_window_example(text: str, chars: list[str], window: int, source: str) -> None:
    st.subheader("One 2017 example")
    st.caption(plain.escape(source))
    pairs = anatomy.as_indices(chars, text)
    ids = [idx for _, idx in pairs if idx is not None]
    known = "".join(ch for ch, idx in pairs if idx is not None)
    if len(ids) < window + 1:
        st.info(f"This text has {len(ids):,} characters the model knows; a window of {window} and its target "
                f"need {window + 1}. Choose a shorter window.")
        return
    last = len(ids) - window - 1
    st.session_state["windows_start"] = min(st.session_state.get("windows_start", 0), last)   # a longer window
    start = st.slider("Where the window starts", 0, last, key="windows_start",
                      help="Every start position gives one example; the next one along shares all but one character.")
    inputs, floats, target = anatomy.window_example(ids, len(chars), start, window)
    st.caption(f"The window: {window} characters in")
    plain.block(known[start:start + window])
    st.caption(f"…as indices, each read as one number, index / {len(chars)} (the first eight):")
    plain.block(f"[{', '.join(str(i) for i in inputs[:8])}, …]\n[{', '.join(f'{x:.3f}' for x in floats[:8])}, …]")
    st.caption(f"The target: the one character after it, index {target}, as a one-hot row of {len(chars)} numbers")
    one_hot = ["0"] * len(chars)
    one_hot[target] = "1"
    plain.block(f"{charts.show_char(chars[target])}  →  [{', '.join(one_hot)}]")


def show_shift(text: str) -> None:
    st.subheader("Today's input and target")
    st.caption("The same stretch of text, shifted by one: under each input character is the character it must "
               "predict. Every column is a training example.")
    stretch = text[:SHIFT_CHARS + 1]
    row = lambda s: " ".join(charts.show_char(ch) for ch in s)
    plain.block("input : " + row(stretch[:-1]) + "\ntarget: " + row(stretch[1:]))


model = common.page_start(TITLE, INTRO)
if model is not None:
    at_hand, where = common.training_text(model)
    example = common.passage(model, at_hand, 1200)
    n_chars, counted = corpus_size(model, at_hand, example)
    st.caption(f"{plain.escape(where)} Sizes below are for {n_chars:,} characters: {plain.escape(counted)}; {len(model.chars)} distinct.")
    common.start_values(model.key, windows_length=model.window or anatomy.KERAS_WINDOW)
    window = st.slider("Window length (characters)", 10, 200, step=5, key="windows_length",
                       help="The 2017 tutorial used 100.")
    embed_dim = model.config.get("embed_dim") if model.config.get("input_mode", "embedding") == "embedding" else None
    show_designs(n_chars, len(model.chars), window, embed_dim)
    show_window_example(example, model.chars, window, passage_source(model, at_hand, example))
    show_shift(example)
