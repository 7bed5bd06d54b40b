"""What the Learn pages on training and writing share: baselines and copy indexes cached per text, a copied
span shown in place."""

from __future__ import annotations

import math

import numpy as np
import streamlit as st

from app.learn import common
from charlm.learn.baselines import Baseline, fit_baselines
from charlm.learn.copying import Copy, CopyIndex
from charlm.text.corpus import Corpus
from charlm.units import LN2

BASELINE_ORDERS = (0, 1, 2, 3, 5)   # uniform, letter frequencies, 2-, 3- and 5-grams
CONTEXT_CHARS = 80                  # characters shown either side of a copied span in the training text


@st.cache_resource(show_spinner="Counting characters for the baselines…", max_entries=4)
def _baselines(sha: str, _corpus: Corpus) -> list[Baseline]:
    train_ids, val_ids = _corpus.split()
    if len(val_ids) < 2:   # nothing to measure on (a text of a few characters)
        return []
    return fit_baselines(train_ids, val_ids, len(_corpus.vocab), BASELINE_ORDERS)


def baselines(corpus: Corpus, sha: str | None = None) -> list[Baseline]:
    """Uniform, letter-frequency and n-gram models fitted on the corpus's training part, measured on its
    validation part; fitted once per text on this server (sha: the text's, when already known). Empty when
    the validation part is too short to measure anything on."""
    return _baselines(sha or common.corpus_sha(corpus), corpus)


def reference_lines(fitted: list[Baseline]) -> list[tuple[str, float]]:
    """(label, nats/char) for a loss chart: letter frequencies and the best n-gram."""
    lines = [(b.name, b.val_nats) for b in fitted if b.order == 1]
    ngrams = [b for b in fitted if b.order >= 2]
    if ngrams:
        best = min(ngrams, key=lambda b: b.val_nats)
        lines.append((f"best n-gram ({best.name})", best.val_nats))
    return lines


@st.cache_resource(show_spinner="Indexing the training text…", max_entries=3)
def _copy_index(sha: str, _text: str) -> CopyIndex:
    return CopyIndex(_text)


def copy_index(text: str, sha: str) -> CopyIndex:
    """The training text's copy index, built once per text on this server."""
    return _copy_index(sha, text)


def show_copy(copy: Copy | None, text: str, index: CopyIndex, train_chars: int) -> None:
    """The longest span of `text` found word for word in the training text: the span, its length, and where.

    train_chars: where the validation part begins (the model never trained on what lies beyond).
    """
    if copy is None:
        st.info("No character of this text occurs in the training text.")
        return
    source = index.train_text
    line = source.count("\n", 0, copy.source_start) + 1
    part = ("in the part the model trained on" if copy.source_start + copy.length <= train_chars
            else "in the held-out validation part, which the model never trained on")
    st.markdown(f"**Longest copied span: {copy.length:,} characters**, at characters "
                f"{copy.start + 1:,}–{copy.end:,} of the text; in the training text it occurs at character "
                f"{copy.source_start + 1:,} of {len(source):,} (line {line:,}), {part}.")
    st.caption("The span:")
    st.code(text[copy.start:copy.end], language=None, wrap_lines=True)
    before = source[max(0, copy.source_start - CONTEXT_CHARS):copy.source_start]
    after = source[copy.source_start + copy.length:copy.source_start + copy.length + CONTEXT_CHARS]
    st.caption("Where it stands in the training text (the span between ⟦ and ⟧):")
    st.code(f"…{before}⟦{source[copy.source_start:copy.source_start + copy.length]}⟧{after}…", language=None,
            wrap_lines=True)


def copy_verdict(length: int) -> str:
    """A line for people on what a copied span of this length suggests."""
    if length >= 40:
        return "That is a whole passage, word for word: here the model is reciting what it read."
    if length >= 20:
        return ("A phrase or two, word for word: common phrases recur in any text, but spans this long "
                "are often remembered.")
    return "Only short stretches match, the kind any text shares with a long book: the model is composing."


def bits(nats: float | None) -> str:
    """nats/char as bits/char for people, a dash when there is no figure."""
    return "–" if nats is None or not np.isfinite(nats) else f"{nats / LN2:.3f}"


def best_val_loss(history: list[dict]) -> float | None:
    """The best validation loss (nats/char) in a model's evaluation rows, None when none was recorded."""
    losses = [row["val_loss"] for row in history if isinstance(row.get("val_loss"), (int, float))]
    return min(losses) if losses else None


def _ends(named: list[tuple[str, float]], shown) -> tuple[tuple[list[str], str], tuple[list[str], str]]:
    """(names, value as shown) at the top and at the bottom of `named`, comparing values as `shown` writes them
    (so a tie on the page is a tie here); names keep their order."""
    as_shown = [(name, value, shown(value)) for name, value in named]
    high = max(as_shown, key=lambda row: row[1])[2]
    low = min(as_shown, key=lambda row: row[1])[2]
    return (([name for name, _, text in as_shown if text == high], high),
            ([name for name, _, text in as_shown if text == low], low))


def _names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def decoding_findings(rows: list[tuple[str, float, float, float]]) -> list[str]:
    """What one Decoding lab run measured, in words, for any model: for each measure the strategies at either
    end, as the table shows them. rows: (strategy, log-probability in bits/char, share of repeated 4-grams,
    share of distinct 2-grams); a NaN (no text written) leaves that row out of the measure. [] with fewer than
    two strategies to compare."""
    three = lambda value: f"{value:.3f}"
    percent = lambda value: f"{value:.0%}"
    measures = [("log-probability", 1, three, "The most probable text under the model: {top} ({high} bits/char); "
                                              "the least: {bottom} ({low})."),
                ("repeated 4-grams", 2, percent, "The most repetition: {top} ({high} of 4-grams seen before in "
                                                 "the text); the least: {bottom} ({low})."),
                ("distinct 2-grams", 3, percent, "The most distinct 2-grams: {top} ({high}); the fewest: {bottom} "
                                                 "({low}).")]
    lines, ends = [], {}
    for label, column, shown, sentence in measures:
        named = [(row[0], row[column]) for row in rows if not math.isnan(row[column])]
        if len(named) < 2:
            continue
        (top, high), (bottom, low) = ends[label] = _ends(named, shown)
        lines.append(f"Every strategy had the same {label} ({high})." if high == low else
                     sentence.format(top=_names(top), high=high, bottom=_names(bottom), low=low))
    if "log-probability" in ends and "repeated 4-grams" in ends and ends["repeated 4-grams"][0][1] != \
            ends["repeated 4-grams"][1][1]:
        likeliest, loopiest = ends["log-probability"][0][0], ends["repeated 4-grams"][0][0]
        both = [name for name in likeliest if name in loopiest]
        lines.append(f"Here the likeliest text was also the most repetitive ({_names(both)}): the likeliest text "
                     "is not the best one." if both else
                     "Here the likeliest text was not the most repetitive one.")
    return lines
