"""Baselines: what models without a network score on the same text, and whether the LSTM writes or recites."""

from __future__ import annotations

import math

import numpy as np
import streamlit as st

from app import charts, models, plain
from app.learn import common, figures, lab
from charlm import workload
from charlm.engine import sampling
from charlm.learn.baselines import Baseline, NGram, baseline_name
from charlm.engine.decoding import encode_prime, start_ids
from charlm.engine.sampling import DecodeConfig
from charlm.units import LN2, format_duration

TITLE = "Baselines"
INTRO = (
    "How good is a loss of 1.9 bits per character? Compare it with models that only count. **Uniform** "
    "guesses every character equally often. **Letter frequencies** knows that *e* is common and *q* rare. "
    "A **character n-gram** predicts from the n − 1 characters before, by counting what followed them in "
    "the training text. The LSTM should beat them all; by how much says what its memory is worth. And a "
    "model that scores well might just be quoting its training text: the second part finds the longest "
    "span a text copies from it, word for word."
)
SAMPLE_CHARS = 160   # each model's sample in the table's companion


def training_time(history: list[dict]) -> str:
    """The LSTM's fit, in the table's words: the training time to its best evaluation (the weights measured),
    or a dash when its file does not record one."""
    rows = [row for row in history if isinstance(row.get("val_loss"), (int, float))]
    best = min(rows, key=lambda row: row["val_loss"], default={})
    seconds = next((best[name] for name in ("train_s", "elapsed_s") if isinstance(best.get(name), (int, float))),
                   None)
    return "–" if seconds is None else f"{format_duration(seconds)} of training"


def table_rows(model: models.LoadedModel, fitted: list) -> list[dict]:
    """One row per model measured: name, bits/char, nats/char, and how long it took to fit, as text for people
    (an empty cell would read "None" on the page)."""
    rows = [{"model": b.name, "bits/char": b.val_nats / LN2, "nats/char": b.val_nats, "fit": f"{b.fit_s:.2f} s"}
            for b in fitted]
    lstm = lab.best_val_loss(model.history)
    if lstm is not None:
        rows.append({"model": "LSTM (this model)", "bits/char": lstm / LN2, "nats/char": lstm,
                     "fit": training_time(model.history)})
    return rows


def samples(model: models.LoadedModel, fitted: list, vocab_chars: list[str], seed: int) -> list[tuple[str, str]]:
    """(name, text) each baseline writes, then the LSTM's, all at temperature 1 from a new line."""
    out = []
    prime = [vocab_chars.index("\n")] if "\n" in vocab_chars else []
    for b in fitted:
        ids = b.model.write(prime, SAMPLE_CHARS, np.random.default_rng(seed))
        out.append((b.name, "".join(vocab_chars[i] for i in ids)))
    lstm_prime = start_ids(model.vocab, [])
    shape = workload.Shape.of(model.engine)    # a window model at the caps: seconds a character
    length = workload.largest_within(lambda n: workload.write_s(shape, 1, n), SAMPLE_CHARS)
    try:
        ids = sampling.write(model.engine, lstm_prime, length, DecodeConfig("sample", temperature=1.0),
                             np.random.default_rng(seed), should_stop=common.should_stop())[0]
    except workload.Stopped:   # the visitor left or changed something: this run is over
        st.stop()
    out.append(("LSTM (this model)", model.vocab.decode(ids)))
    return out


def measure(model: models.LoadedModel, at_hand: common.TextAtHand | None) -> None:
    st.subheader("Bits per character on held-out text")
    if at_hand is not None:
        fitted = lab.baselines(at_hand.corpus, model.info.get("corpus_sha256"))
        vocab_chars = list(at_hand.corpus.vocab.chars)
        st.caption("Each baseline counted the part of the text the model trained on and is measured on the "
                   "held-out part the model was validated on (the LSTM's figure is its best validation loss "
                   "from training).")
    else:
        # Without the text only uniform can be measured: it needs nothing but the vocabulary's size.
        vocab_chars = model.chars
        uniform = NGram.fit(np.zeros(0, dtype=np.int64), len(vocab_chars), 0)
        fitted = [Baseline(baseline_name(0), 0, uniform, math.log(len(vocab_chars)), 0.0)]
        st.caption("Only the uniform model can be measured without the training text: over "
                   f"{len(vocab_chars)} characters it is log2({len(vocab_chars)}) = "
                   f"{math.log2(len(vocab_chars)):.3f} bits/char on any text.")
    rows = table_rows(model, fitted)
    if not any(row["model"].startswith("LSTM") for row in rows):
        st.caption("This model's file records no validation loss, so it is not in the table.")
    left, right = st.columns([3, 2], gap="large")
    with left:
        figures.show(charts.bits_chart([(r["model"], r["nats/char"], r["model"].startswith("LSTM")) for r in rows]),
                     key="bl_chart", name="baselines", width="stretch", height=60 + 38 * len(rows))
    with right:
        st.dataframe(rows, hide_index=True, width="stretch",
                     column_config={"bits/char": st.column_config.NumberColumn(format="%.3f"),
                                    "nats/char": st.column_config.NumberColumn(format="%.3f"),
                                    "fit": st.column_config.TextColumn(
                                        help="Time to fit: counting the training part for a baseline, the "
                                             "training run (to its best evaluation) for the LSTM.")})
    with st.expander("What each one writes (temperature 1)"):
        seed = int(st.number_input("Seed", min_value=0, value=0, step=1, key="bl_sample_seed"))
        for name, text in samples(model, fitted, vocab_chars, seed):
            st.caption(name)
            plain.block(text)


def text_to_check(model: models.LoadedModel) -> str:
    """A text written by the model here, or pasted by the visitor; '' until there is one."""
    source = st.segmented_control("Text to check", ["Write one with this model", "Paste a text"],
                                  default="Write one with this model", required=True, key="bl_source")
    if source == "Paste a text":
        return st.text_area("Your text", key="bl_paste", max_chars=5000, height=150,
                            placeholder="Paste a text written by a model (or anything else)")
    c1, c2, c3, c4 = st.columns([2, 2, 1, 1], vertical_alignment="bottom")
    length = c1.slider("Length (characters)", 50, 1000, 400, 50, key="bl_length")
    temperature = c2.slider("Temperature", 0.0, 1.5, 0.8, 0.05, key="bl_temperature",
                            help="Lower sticks to what the model finds likeliest, which is where copies hide.")
    seed = int(c3.number_input("Seed", min_value=0, value=0, step=1, key="bl_seed"))
    written = st.session_state.get("bl_written")
    shape = workload.Shape.of(model.engine)
    most = workload.largest_within(lambda n: workload.write_s(shape, 1, n), length)
    if most < length:
        st.info(common.over_budget(shape, f"Write writes at most {most} characters", "a shorter length is written "
                                   "whole"))
    if c4.button("Write", type="primary", icon=":material/edit:", key="bl_write") and most:
        length = most
        try:
            ids = sampling.write(model.engine, start_ids(model.vocab, encode_prime(model.vocab, "")[0]), length,
                                 DecodeConfig("sample", temperature=temperature), np.random.default_rng(seed),
                                 should_stop=common.should_stop())[0]
        except workload.Stopped:   # the visitor left or changed something: this run is over
            st.stop()
        written = (model.key, model.vocab.decode(ids))
        st.session_state["bl_written"] = written
    if written is None or written[0] != model.key:
        st.caption("Press Write: the model writes from a new line, and its text is searched for in the training text.")
        return ""
    plain.block(written[1])
    return written[1]


def copies(model: models.LoadedModel, at_hand: common.TextAtHand | None) -> None:
    st.subheader("Writing or reciting?")
    if at_hand is None:
        st.info("Copied spans are looked for in the model's training text, which is not at hand (see above): "
                "load it on the Corpus page to use this part.")
        return
    st.caption("The longest stretch of the text below that occurs word for word in the training text. A few "
               "characters always match; a long span means the model learned that passage by heart.")
    text = text_to_check(model)
    if not text:
        return
    index = lab.copy_index(at_hand.text, model.info.get("corpus_sha256") or common.corpus_sha(at_hand.corpus))
    copy = index.longest(text)
    train_part, _ = at_hand.split_text()
    lab.show_copy(copy, text, index, len(train_part))
    if copy is not None:
        st.caption(lab.copy_verdict(copy.length))


model = common.page_start(TITLE, INTRO)
if model is not None:
    at_hand, line = common.training_text(model)
    st.caption(plain.escape(line))
    measure(model, at_hand)
    st.divider()
    copies(model, at_hand)
