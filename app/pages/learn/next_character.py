"""Learn, part 4: Next-character distribution: what the model expects after a prime, and how decoding reshapes it."""

from __future__ import annotations

import math

import numpy as np
import streamlit as st

from app import charts, plain
from app.learn import common, draw, figures
from charlm.engine import scoring
from charlm.engine.decoding import encode_prime, start_ids

TITLE = "Next-character distribution"
INTRO = (
    "After reading some text the model does not pick a character: it gives **every** character of its vocabulary "
    "a probability. Writing then draws from that distribution, and the decoding settings reshape it first. "
    "**Temperature** below 1 sharpens it (the favourite gains), above 1 flattens it; **top-k** keeps only the k "
    "likeliest; **top-p** keeps the fewest likeliest that together hold probability p; **min-p** keeps those at "
    "least min-p times as likely as the favourite. Each panel below starts from the tempered distribution."
)
PRIME_CHARS = 60   # the most characters of the passage the default prime takes
CONTEXT_CHARS = 20   # the fewest: the model has read a phrase before the character it predicts


@st.cache_data(show_spinner=False, max_entries=64, hash_funcs=common.ENGINE_HASH)
def next_logits(engine, ids: tuple[int, ...]) -> np.ndarray:
    """(vocab,) logits for the character after ids."""
    logits, _ = engine.read(list(ids))
    return logits[0]


@st.cache_data(show_spinner=False, max_entries=64, hash_funcs=common.ENGINE_HASH)
def uncertain_end(engine, chars: list[str], text: str) -> int:
    """Where a prime cut from text should end so the model is unsure what comes next: of the cuts from
    CONTEXT_CHARS characters on, the one after which its likeliest next character is least likely."""
    if len(text) <= CONTEXT_CHARS:
        return len(text)
    scored = scoring.score_text(engine, chars, text, start=CONTEXT_CHARS, top=1)
    likeliest = [top[0][1] if top else math.inf for top in scored.top]   # unscored: never chosen
    return CONTEXT_CHARS + int(np.argmin(likeliest))


def default_prime(model, at_hand) -> str:
    """The start of the model's passage, cut where the model is least sure of the next character: a prime
    whose next character is all but certain would show one tall bar and nothing for the settings to reshape."""
    text = common.passage(model, at_hand, 200)[:PRIME_CHARS]
    return text[:uncertain_end(model.engine, model.chars, text)]


def stage_table(chars: list[str], stages: list[tuple[str, np.ndarray]]):
    import pandas as pd

    best = [int(np.argmax(p)) for _, p in stages]
    return pd.DataFrame({
        "distribution": [name for name, _ in stages],
        "characters left": [int(np.count_nonzero(p > 0)) for _, p in stages],
        "entropy (bits)": [round(draw.entropy_bits(p), 3) + 0.0 for _, p in stages],   # + 0.0: never -0.0
        "likeliest": [charts.show_char(chars[i]) for i in best],
        "its probability": [float(p[i]) for (_, p), i in zip(stages, best)],
    })


def settings(vocab_size: int) -> dict:
    c1, c2 = st.columns(2)
    knobs = {
        "temperature": c1.slider("Temperature", 0.0, 2.0, 0.8, 0.05, key="next_temperature",
                                 help="0 keeps only the likeliest character (greedy)."),
        "top_k": c2.slider("top-k", 1, vocab_size, key="next_top_k"),
    }
    c1, c2 = st.columns(2)
    knobs["top_p"] = c1.slider("top-p", 0.05, 1.0, 0.9, 0.05, key="next_top_p")
    knobs["min_p"] = c2.slider("min-p", 0.0, 1.0, 0.05, 0.01, key="next_min_p")
    return knobs


model = common.page_start(TITLE, INTRO)
if model is not None:
    at_hand, _ = common.training_text(model)
    most = min(40, len(model.chars))   # characters the chart may show
    common.start_values(model.key, next_prime=default_prime(model, at_hand), next_top_k=min(20, len(model.chars)),
                      next_shown=min(15, most))
    # A text area: a prime may hold line breaks (what follows a new line is a question worth asking).
    prime = st.text_area("Prime: the text the model has read", max_chars=500, key="next_prime", height=90,
                         help="The model predicts the character that comes after it; Enter adds a line break, "
                              "Ctrl+Enter (⌘+Enter) applies the prime.")
    prime_ids, missing = encode_prime(model.vocab, prime)
    if missing:
        st.warning("The model never saw these characters of the prime; they are left out or read as unknown:")
        st.text("  ".join(charts.show_char(ch) for ch in missing))
    if not prime_ids:
        st.caption("With no prime, the model reads a line break and predicts the first character of a line.")
    logits = next_logits(model.engine, tuple(start_ids(model.vocab, prime_ids)))
    knobs = settings(len(model.chars))
    shown = st.slider("Characters shown", 5, most, key="next_shown") if most > 5 else most
    stages = scoring.distributions(logits, **knobs)
    st.caption("The prime as the model reads it (▮ marks where the next character goes):")
    plain.block(model.vocab.decode(prime_ids)[-300:] + "▮")
    st.dataframe(stage_table(model.chars, stages), hide_index=True, key="next_table",
                 column_config={"its probability": st.column_config.NumberColumn(format="percent")})
    st.caption("Entropy is how many yes/no questions the distribution leaves open: 0 bits when one character is "
               "certain, log2 of the count when all left are equally likely. On the Generate page each strategy "
               "draws from its own panel here.")
    figures.show(draw.distribution_chart(model.chars, stages, shown), key="next_chart", name="next-character",
                 width="stretch")
